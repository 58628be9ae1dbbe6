// KafkaRoundtrip's `groups`: what an operator does with consumer groups and
// transactions through the AdminClient, answered as one JSON object. It
// commits offsets for each group (alterConsumerGroupOffsets), commits one
// transaction per transactional id, then lists and describes groups and
// transactions, reads every group's offsets in one call (the batched
// OffsetFetch), deletes the groups given with --delete and lists again.

import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.GroupListing;
import org.apache.kafka.clients.admin.ListConsumerGroupOffsetsSpec;
import org.apache.kafka.clients.admin.TransactionDescription;
import org.apache.kafka.clients.admin.TransactionListing;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.KafkaFuture;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringSerializer;

final class GroupsAdmin {
    static final Duration CLOSE_TIMEOUT = Duration.ofSeconds(5);

    static int groups(KafkaRoundtrip.Args a) throws Exception {
        String bootstrap = a.pos(0);
        String topic = a.pos(1);
        int partitions = (int) a.positiveLong("PARTITIONS", a.pos(2), 1);
        List<String> groups = list(a.pos(3));
        List<String> txns = list(a.pos(4));
        List<String> delete = list(a.opt("--delete", "-"));
        String clientId = a.opt("--client-id", "kstretch-java-groups");
        long timeoutS = a.timeoutS();
        long deadline = KafkaRoundtrip.deadlineNanos(timeoutS);
        KafkaRoundtrip.timeoutCode.set(KafkaRoundtrip.FAILED);
        KafkaRoundtrip.startWatchdog(deadline + TimeUnit.MILLISECONDS.toNanos(KafkaRoundtrip.CLOSE_GRACE_MS),
                                     "groups");
        long timeoutMs = TimeUnit.SECONDS.toMillis(timeoutS);
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(AdminClientConfig.CLIENT_ID_CONFIG, clientId);
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, Long.toString(Math.max(1000, Math.min(30_000, timeoutMs))));
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, Long.toString(timeoutMs));
        KafkaRoundtrip.addConfig(p, a);

        Map<String, Object> out = new LinkedHashMap<>();
        String stage = "alterConsumerGroupOffsets";
        Admin admin = Admin.create(p);
        try {
            // Group i commits offset 10 * i + partition on every partition.
            for (int i = 0; i < groups.size(); i++) {
                Map<TopicPartition, OffsetAndMetadata> offsets = new LinkedHashMap<>();
                for (int q = 0; q < partitions; q++) {
                    offsets.put(new TopicPartition(topic, q), new OffsetAndMetadata(10L * i + q));
                }
                get(admin.alterConsumerGroupOffsets(groups.get(i), offsets).all(), deadline);
            }

            stage = "transactions";
            for (String txn : txns) {
                commitOne(bootstrap, clientId, topic, txn, timeoutMs);
            }

            stage = "listGroups";
            out.put("listed", listed(admin, deadline));

            stage = "describeConsumerGroups";
            Map<String, Object> described = new TreeMap<>();
            for (Map.Entry<String, ConsumerGroupDescription> e :
                     get(admin.describeConsumerGroups(groups).all(), deadline).entrySet()) {
                Map<String, Object> d = new LinkedHashMap<>();
                d.put("state", e.getValue().groupState().toString());
                d.put("coordinator", e.getValue().coordinator() == null ? null : e.getValue().coordinator().id());
                d.put("members", e.getValue().members().size());
                described.put(e.getKey(), d);
            }
            out.put("described", described);

            stage = "listConsumerGroupOffsets (every group in one call)";
            Map<String, ListConsumerGroupOffsetsSpec> specs = new LinkedHashMap<>();
            for (String g : groups) {
                specs.put(g, new ListConsumerGroupOffsetsSpec());
            }
            Map<String, Object> offsets = new TreeMap<>();
            for (Map.Entry<String, Map<TopicPartition, OffsetAndMetadata>> e :
                     get(admin.listConsumerGroupOffsets(specs).all(), deadline).entrySet()) {
                Map<String, Object> o = new TreeMap<>();
                for (Map.Entry<TopicPartition, OffsetAndMetadata> x : e.getValue().entrySet()) {
                    o.put(x.getKey().topic() + ":" + x.getKey().partition(),
                          x.getValue() == null ? null : x.getValue().offset());
                }
                offsets.put(e.getKey(), o);
            }
            out.put("offsets", offsets);

            if (!txns.isEmpty()) {
                stage = "listTransactions";
                Map<String, Object> listedTxns = new TreeMap<>();
                for (TransactionListing t : get(admin.listTransactions().all(), deadline)) {
                    listedTxns.put(t.transactionalId(), t.state().toString());
                }
                out.put("transactions", listedTxns);
                stage = "describeTransactions";
                Map<String, Object> describedTxns = new TreeMap<>();
                for (Map.Entry<String, TransactionDescription> e :
                         get(admin.describeTransactions(txns).all(), deadline).entrySet()) {
                    Map<String, Object> d = new LinkedHashMap<>();
                    d.put("state", e.getValue().state().toString());
                    d.put("coordinator", e.getValue().coordinatorId());
                    describedTxns.put(e.getKey(), d);
                }
                out.put("described_transactions", describedTxns);
            }

            if (!delete.isEmpty()) {
                stage = "deleteConsumerGroups";
                get(admin.deleteConsumerGroups(delete).all(), deadline);
                out.put("deleted", delete);
                stage = "listGroups after deleting";
                out.put("listed_after", listed(admin, deadline));
            }
        } catch (ExecutionException | java.util.concurrent.TimeoutException e) {
            Throwable cause = e instanceof ExecutionException && e.getCause() != null ? e.getCause() : e;
            KafkaRoundtrip.log("groups: " + stage + " failed: " + KafkaRoundtrip.describe(cause));
            return KafkaRoundtrip.FAILED;
        } finally {
            admin.close(CLOSE_TIMEOUT);
        }
        KafkaRoundtrip.OUT.println(Json.write(out));
        KafkaRoundtrip.OUT.flush();
        return KafkaRoundtrip.OK;
    }

    /** Every group id listed, sorted, each as often as the listing named it. */
    private static List<Object> listed(Admin admin, long deadline) throws Exception {
        List<String> ids = new ArrayList<>();
        for (GroupListing g : get(admin.listGroups().all(), deadline)) {
            ids.add(g.groupId());
        }
        ids.sort(null);
        return new ArrayList<>(ids);
    }

    /** One committed transaction of one record under transactional id txn. */
    private static void commitOne(String bootstrap, String clientId, String topic, String txn, long timeoutMs) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.CLIENT_ID_CONFIG, clientId + "-" + txn);
        p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, txn);
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, Long.toString(timeoutMs));
        try (KafkaProducer<String, String> producer =
                 new KafkaProducer<>(p, new StringSerializer(), new StringSerializer())) {
            producer.initTransactions();
            producer.beginTransaction();
            producer.send(new ProducerRecord<>(topic, txn, "committed by " + txn));
            producer.commitTransaction();
        }
    }

    private static List<String> list(String csv) {
        return csv.equals("-") ? List.of() : Arrays.asList(csv.split(","));
    }

    private static <T> T get(KafkaFuture<T> f, long deadline)
            throws ExecutionException, InterruptedException, java.util.concurrent.TimeoutException {
        return f.get(Math.max(1, KafkaRoundtrip.remainingMs(deadline)), TimeUnit.MILLISECONDS);
    }

    private GroupsAdmin() {
    }
}
