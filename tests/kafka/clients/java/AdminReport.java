// KafkaRoundtrip's `admin`: the AdminClient's describeCluster, createTopics,
// describeTopics, listOffsets and describeConfigs, answered as one JSON object.
// With --broker-config NAME=VALUE also: incrementalAlterConfigs of the topic
// (retention.ms) and of the first node as a broker (NAME set to VALUE), read
// back with describeConfigs, NAME deleted again; listTopics; and
// describeProducers (every partition) and describeLogDirs, each reported as
// "ok" or the exception's class name.

import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.ListOffsetsResult;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.KafkaFuture;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;

final class AdminReport {
    static final Duration CLOSE_TIMEOUT = Duration.ofSeconds(5);
    /** Pause between two looks at a topic being created. */
    static final long VISIBLE_POLL_MS = 200;

    static int admin(KafkaRoundtrip.Args a) throws Exception {
        String bootstrap = a.pos(0);
        String topic = a.pos(1);
        int partitions = (int) a.positiveLong("PARTITIONS", a.pos(2), 1);
        long rfArg = a.positiveLong("RF", a.pos(3), 1);
        if (rfArg > Short.MAX_VALUE) {
            throw new KafkaRoundtrip.UsageException("RF is too large: " + rfArg);
        }
        short rf = (short) rfArg;
        String clientId = a.opt("--client-id", "kstretch-java-admin");
        long timeoutS = a.timeoutS();
        long deadline = KafkaRoundtrip.deadlineNanos(timeoutS);
        KafkaRoundtrip.timeoutCode.set(KafkaRoundtrip.FAILED);
        KafkaRoundtrip.startWatchdog(deadline + TimeUnit.MILLISECONDS.toNanos(KafkaRoundtrip.CLOSE_GRACE_MS),
                                     "admin");

        long timeoutMs = TimeUnit.SECONDS.toMillis(timeoutS);
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(AdminClientConfig.CLIENT_ID_CONFIG, clientId);
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, Long.toString(Math.max(1000, Math.min(30_000, timeoutMs))));
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, Long.toString(timeoutMs));
        KafkaRoundtrip.addConfig(p, a);

        Map<String, Object> out = new LinkedHashMap<>();
        String stage = "describeCluster";
        Admin admin = Admin.create(p);
        try {
            DescribeClusterResult dc = admin.describeCluster();
            out.put("cluster_id", get(dc.clusterId(), deadline));
            Node controller = get(dc.controller(), deadline);
            out.put("controller", controller == null || controller.isEmpty() ? null : node(controller));
            List<Node> nodes = new ArrayList<>(get(dc.nodes(), deadline));
            nodes.sort(Comparator.comparingInt(Node::id));
            List<Object> nodeList = new ArrayList<>();
            for (Node n : nodes) {
                KafkaRoundtrip.log("node: " + n.host() + ":" + n.port() + " id " + n.id() + " rack " + n.rack());
                nodeList.add(node(n));
            }
            out.put("nodes", nodeList);
            if (nodes.isEmpty()) {
                KafkaRoundtrip.log("admin: describeCluster named no node");
                return KafkaRoundtrip.FAILED;
            }

            stage = "createTopics";
            get(admin.createTopics(List.of(new NewTopic(topic, partitions, rf))).all(), deadline);
            out.put("created", topic);

            stage = "describeTopics (waiting for every partition to have a leader)";
            TopicDescription desc = waitVisible(admin, topic, partitions, deadline);
            List<Object> parts = new ArrayList<>();
            for (TopicPartitionInfo tpi : desc.partitions()) {
                Map<String, Object> m = new LinkedHashMap<>();
                m.put("partition", tpi.partition());
                m.put("leader", tpi.leader() == null ? null : tpi.leader().id());
                m.put("replicas", ids(tpi.replicas()));
                m.put("isr", ids(tpi.isr()));
                parts.add(m);
            }
            out.put("topic_id", desc.topicId().toString());
            out.put("partitions", parts);

            stage = "listOffsets";
            Map<TopicPartition, OffsetSpec> earliest = new LinkedHashMap<>();
            Map<TopicPartition, OffsetSpec> latest = new LinkedHashMap<>();
            for (int i = 0; i < partitions; i++) {
                earliest.put(new TopicPartition(topic, i), OffsetSpec.earliest());
                latest.put(new TopicPartition(topic, i), OffsetSpec.latest());
            }
            Map<TopicPartition, ListOffsetsResult.ListOffsetsResultInfo> first =
                get(admin.listOffsets(earliest).all(), deadline);
            Map<TopicPartition, ListOffsetsResult.ListOffsetsResultInfo> last =
                get(admin.listOffsets(latest).all(), deadline);
            Map<String, Object> offsets = new LinkedHashMap<>();
            for (int i = 0; i < partitions; i++) {
                TopicPartition tp = new TopicPartition(topic, i);
                offsets.put(Integer.toString(i), List.of(first.get(tp).offset(), last.get(tp).offset()));
            }
            out.put("offsets", offsets);

            stage = "describeConfigs";
            ConfigResource topicRes = new ConfigResource(ConfigResource.Type.TOPIC, topic);
            // The first node; with --broker-config the last (in regional mode, a node whose id is no real
            // broker's that stands for one).
            int brokerId = nodes.get(a.opt("--broker-config", null) == null ? 0 : nodes.size() - 1).id();
            ConfigResource brokerRes = new ConfigResource(ConfigResource.Type.BROKER, Integer.toString(brokerId));
            Map<ConfigResource, Config> configs = get(admin.describeConfigs(List.of(topicRes, brokerRes)).all(),
                                                      deadline);
            Map<String, Object> topicConfigs = new TreeMap<>();
            for (ConfigEntry e : configs.get(topicRes).entries()) {
                topicConfigs.put(e.name(), e.value());
            }
            out.put("topic_configs", topicConfigs);
            out.put("broker_id", brokerId);
            Config brokerConfig = configs.get(brokerRes);
            out.put("broker_configs_count", brokerConfig.entries().size());
            ConfigEntry rack = brokerConfig.get("broker.rack");
            out.put("broker_rack", rack == null ? null : rack.value());
            ConfigEntry nodeId = brokerConfig.get("node.id");
            out.put("broker_node_id", nodeId == null ? null : nodeId.value());
            ConfigEntry listeners = brokerConfig.get("advertised.listeners");
            out.put("broker_advertised_listeners", listeners == null ? null : listeners.value());

            String brokerConfigArg = a.opt("--broker-config", null);
            if (brokerConfigArg != null) {
                stage = "incrementalAlterConfigs";
                String[] kv = brokerConfigArg.split("=", 2);
                if (kv.length != 2) {
                    throw new KafkaRoundtrip.UsageException("--broker-config wants NAME=VALUE: " + brokerConfigArg);
                }
                alter(admin, topicRes, "retention.ms", "3600000", AlterConfigOp.OpType.SET, deadline);
                alter(admin, brokerRes, kv[0], kv[1], AlterConfigOp.OpType.SET, deadline);
                // The broker applies its new config from the controller's metadata a moment later.
                Map<ConfigResource, Config> after;
                ConfigEntry set;
                int looks = 0;
                while (true) {
                    after = get(admin.describeConfigs(List.of(topicRes, brokerRes)).all(), deadline);
                    set = after.get(brokerRes).get(kv[0]);
                    if ((set != null && kv[1].equals(set.value())) || ++looks >= 50
                        || KafkaRoundtrip.remainingMs(deadline) <= VISIBLE_POLL_MS) {
                        break;
                    }
                    Thread.sleep(VISIBLE_POLL_MS);
                }
                out.put("broker_config_looks", looks + 1);
                out.put("topic_retention_after", after.get(topicRes).get("retention.ms").value());
                out.put("broker_config_after", set == null ? null : set.value());
                out.put("broker_config_source", set == null ? null : set.source().toString());
                alter(admin, brokerRes, kv[0], null, AlterConfigOp.OpType.DELETE, deadline);
                ConfigEntry deleted;
                looks = 0;
                while (true) { // as above: applied a moment later
                    deleted = get(admin.describeConfigs(List.of(brokerRes)).all(), deadline).get(brokerRes)
                                  .get(kv[0]);
                    if (deleted == null || deleted.source() != ConfigEntry.ConfigSource.DYNAMIC_BROKER_CONFIG
                        || ++looks >= 50 || KafkaRoundtrip.remainingMs(deadline) <= VISIBLE_POLL_MS) {
                        break;
                    }
                    Thread.sleep(VISIBLE_POLL_MS);
                }
                out.put("broker_config_deleted_source", deleted == null ? null : deleted.source().toString());

                stage = "listTopics";
                out.put("listed", new TreeMap<>(get(admin.listTopics().namesToListings(), deadline)).keySet());

                stage = "describeProducers / describeLogDirs";
                List<TopicPartition> all = new ArrayList<>();
                for (int i = 0; i < partitions; i++) {
                    all.add(new TopicPartition(topic, i));
                }
                out.put("describe_producers", outcome(admin.describeProducers(all).all(), deadline));
                out.put("describe_log_dirs", outcome(admin.describeLogDirs(List.of(brokerId)).allDescriptions(),
                                                      deadline));
            }
        } catch (ExecutionException | java.util.concurrent.TimeoutException e) {
            Throwable cause = e instanceof ExecutionException && e.getCause() != null ? e.getCause() : e;
            KafkaRoundtrip.log("admin: " + stage + " failed: " + KafkaRoundtrip.describe(cause));
            return KafkaRoundtrip.FAILED;
        } finally {
            admin.close(CLOSE_TIMEOUT);
        }
        KafkaRoundtrip.OUT.println(Json.write(out));
        KafkaRoundtrip.OUT.flush();
        return KafkaRoundtrip.OK;
    }

    /** The topic's description once it has `partitions` partitions, each with
     *  a leader: creation is done on the controller, and the brokers learn of
     *  it a moment later. */
    private static TopicDescription waitVisible(Admin admin, String topic, int partitions, long deadline)
            throws ExecutionException, InterruptedException, java.util.concurrent.TimeoutException {
        String last = "not described yet";
        while (true) {
            try {
                TopicDescription d = get(admin.describeTopics(List.of(topic)).allTopicNames(), deadline).get(topic);
                if (d == null) {
                    last = "no description of " + topic;
                } else if (d.partitions().size() != partitions) {
                    last = d.partitions().size() + " partitions";
                } else if (d.partitions().stream().anyMatch(t -> t.leader() == null || t.leader().isEmpty())) {
                    last = "a partition has no leader";
                } else {
                    return d;
                }
            } catch (ExecutionException e) {
                if (!(e.getCause() instanceof UnknownTopicOrPartitionException)) {
                    throw e;
                }
                last = "unknown topic";
            }
            if (KafkaRoundtrip.remainingMs(deadline) <= VISIBLE_POLL_MS) {
                throw new java.util.concurrent.TimeoutException(topic + " not visible in time: " + last);
            }
            Thread.sleep(VISIBLE_POLL_MS);
        }
    }

    private static void alter(Admin admin, ConfigResource res, String name, String value, AlterConfigOp.OpType op,
                              long deadline)
            throws ExecutionException, InterruptedException, java.util.concurrent.TimeoutException {
        AlterConfigOp o = new AlterConfigOp(new ConfigEntry(name, value), op);
        get(admin.incrementalAlterConfigs(Map.of(res, List.of(o))).all(), deadline);
    }

    /** "ok", or the simple class name of what the call failed with. */
    private static String outcome(KafkaFuture<?> f, long deadline) throws InterruptedException {
        try {
            get(f, deadline);
            return "ok";
        } catch (ExecutionException e) {
            Throwable c = e.getCause() != null ? e.getCause() : e;
            KafkaRoundtrip.log("admin: " + KafkaRoundtrip.describe(c));
            return c.getClass().getSimpleName();
        } catch (java.util.concurrent.TimeoutException e) {
            return "TimeoutException";
        }
    }

    private static <T> T get(KafkaFuture<T> f, long deadline)
            throws ExecutionException, InterruptedException, java.util.concurrent.TimeoutException {
        return f.get(Math.max(1, KafkaRoundtrip.remainingMs(deadline)), TimeUnit.MILLISECONDS);
    }

    private static Map<String, Object> node(Node n) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("id", n.id());
        m.put("host", n.host());
        m.put("port", n.port());
        m.put("rack", n.rack());
        return m;
    }

    private static List<Object> ids(List<Node> nodes) {
        List<Object> out = new ArrayList<>();
        for (Node n : nodes) {
            out.add(n.id());
        }
        return out;
    }

    private AdminReport() {
    }
}
