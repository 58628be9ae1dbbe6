// KafkaRoundtrip's `consume`: a member of a consumer group, with the classic
// protocol (JoinGroup/SyncGroup/Heartbeat) or KIP-848's (ConsumerGroupHeartbeat);
// or, with GROUP "-", no group at all: every partition of the topic assigned
// by hand (assign) from its beginning, nothing committed.

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Properties;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.consumer.CloseOptions;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;

final class Consume {
    static final Duration COMMIT_TIMEOUT = Duration.ofSeconds(10);
    static final Duration CLOSE_TIMEOUT = Duration.ofSeconds(5);

    static int consume(KafkaRoundtrip.Args a) throws Exception {
        String bootstrap = a.pos(0);
        String topic = a.pos(1);
        String group = a.pos(2);
        long expected = a.positiveLong("EXPECTED", a.pos(3), 0);
        long timeoutS = a.positiveLong("TIMEOUT_S", a.pos(4), 1);
        String protocol = a.choice("--group-protocol", "classic", "classic", "consumer");
        String isolation = a.choice("--isolation", "read_uncommitted", "read_uncommitted", "read_committed");
        String clientId = a.opt("--client-id", "kstretch-java-consumer");
        String rack = a.opt("--rack", "");
        long settleS = a.positiveLong("--settle", a.opt("--settle", "0"), 0);
        long deadline = KafkaRoundtrip.deadlineNanos(timeoutS);
        long[] count = {0};
        // Past the hard deadline: too few records if that is what it has.
        KafkaRoundtrip.timeoutCode.set(KafkaRoundtrip.TOO_FEW);
        KafkaRoundtrip.startWatchdog(deadline + TimeUnit.SECONDS.toNanos(settleS)
                                     + TimeUnit.MILLISECONDS.toNanos(KafkaRoundtrip.CLOSE_GRACE_MS), "consume");

        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.CLIENT_ID_CONFIG, clientId);
        boolean manual = group.equals("-");
        if (!manual) {
            p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
            p.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, protocol);
        }
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation);
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        if (!rack.isEmpty()) {
            p.put(ConsumerConfig.CLIENT_RACK_CONFIG, rack);
        }
        long timeoutMs = TimeUnit.SECONDS.toMillis(timeoutS);
        p.put(ConsumerConfig.REQUEST_TIMEOUT_MS_CONFIG, Long.toString(Math.max(1000, Math.min(30_000, timeoutMs))));
        p.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, Long.toString(Math.max(1000, Math.min(60_000, timeoutMs))));
        KafkaRoundtrip.addConfig(p, a);

        long start = System.nanoTime();
        TreeSet<String> assigned = new TreeSet<>();
        KafkaConsumer<String, String> consumer = new KafkaConsumer<>(p);
        try {
            if (manual) {
                assignAll(consumer, topic, assigned);
            } else {
                subscribe(consumer, topic, assigned);
            }
            poll(consumer, count, expected, deadline);
            if (count[0] >= expected) {
                // Stuck committing or closing after reading them all: not "too few".
                KafkaRoundtrip.timeoutCode.set(KafkaRoundtrip.FAILED);
            }
            if (settleS > 0) {
                // Anything after EXPECTED records is shown too (a duplicate, a
                // record that should not be there): read on a while.
                poll(consumer, count, Long.MAX_VALUE, KafkaRoundtrip.deadlineNanos(settleS));
            }
            KafkaRoundtrip.OUT.flush();
            try {
                if (!manual) {
                    consumer.commitSync(COMMIT_TIMEOUT);
                }
            } catch (KafkaException e) {
                KafkaRoundtrip.log("consume: commit failed: " + KafkaRoundtrip.describe(e));
                KafkaRoundtrip.timeoutCode.set(KafkaRoundtrip.FAILED);
                return KafkaRoundtrip.FAILED;
            }
        } finally {
            KafkaRoundtrip.OUT.flush();
            KafkaRoundtrip.logAuthMetrics(consumer.metrics());
            consumer.close(CloseOptions.timeout(CLOSE_TIMEOUT));
            KafkaRoundtrip.log(String.format(
                "consumed: %d of %d records in %.2f s, group %s, group.protocol=%s, isolation.level=%s, partitions %s",
                count[0], expected, (System.nanoTime() - start) / 1e9, manual ? "none (assign)" : group, protocol,
                isolation, assigned));
        }
        return count[0] >= expected ? KafkaRoundtrip.OK : KafkaRoundtrip.TOO_FEW;
    }

    /** Every partition of `topic` (as the cluster's metadata lists them), assigned by hand from the beginning. */
    private static void assignAll(KafkaConsumer<String, String> consumer, String topic, TreeSet<String> assigned) {
        List<TopicPartition> parts = new ArrayList<>();
        for (PartitionInfo info : consumer.partitionsFor(topic)) {
            parts.add(new TopicPartition(topic, info.partition()));
            assigned.add(topic + "-" + info.partition());
        }
        consumer.assign(parts);
        consumer.seekToBeginning(parts);
        KafkaRoundtrip.log("consume: assigned by hand " + parts);
    }

    private static void subscribe(KafkaConsumer<String, String> consumer, String topic, TreeSet<String> assigned) {
        consumer.subscribe(List.of(topic), new ConsumerRebalanceListener() {
            @Override
            public void onPartitionsRevoked(Collection<TopicPartition> parts) {
                KafkaRoundtrip.log("consume: revoked " + parts);
            }

            @Override
            public void onPartitionsAssigned(Collection<TopicPartition> parts) {
                for (TopicPartition tp : parts) {
                    assigned.add(tp.toString());
                }
                KafkaRoundtrip.log("consume: assigned " + parts);
            }
        });
    }

    /** Polls until `count` reaches `until` or the deadline passes, writing
     *  every record read. */
    private static void poll(KafkaConsumer<String, String> consumer, long[] count, long until, long deadline) {
        StringBuilder sb = new StringBuilder();
        while (count[0] < until) {
            long left = KafkaRoundtrip.remainingMs(deadline);
            if (left <= 0) {
                break;
            }
            ConsumerRecords<String, String> batch = consumer.poll(Duration.ofMillis(Math.min(500, left)));
            if (batch.isEmpty()) {
                continue;
            }
            sb.setLength(0);
            for (ConsumerRecord<String, String> r : batch) {
                sb.append(r.partition()).append('\t').append(r.offset()).append('\t')
                  .append(KafkaRoundtrip.field(r.key())).append('\t').append(KafkaRoundtrip.field(r.value()))
                  .append('\n');
                count[0]++;
            }
            KafkaRoundtrip.OUT.print(sb);
        }
    }

    private Consume() {
    }
}
