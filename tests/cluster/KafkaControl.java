/*
 * KafkaControl: the Admin-API side of tests/cluster/kafkacluster.py.
 *
 * One JVM for the launcher's whole life, so that each control command costs an
 * Admin call, not a JVM start. It reads one command per line on stdin and
 * answers each with one JSON line on stdout:
 *
 *   format CLUSTER_ID CONFIG [OPTION...]      kafka-storage format, in process; OPTIONs are
 *                                              its own (--standalone, --add-scram M=[name=U,password=P])
 *   connect BOOTSTRAP                          the Admin client every later command uses
 *   wait-brokers N TIMEOUT_MS                  until N brokers are registered and unfenced
 *   create NAME PARTS RF ASSIGNMENT            a topic, replicas per partition as
 *                                              "1,2,3;2,3,1" ("-": the controller's choice)
 *   describe [NAME...]                         leaders, replicas, ISR (no names: every topic)
 *   leader TOPIC PART ID TIMEOUT_MS            reassign so ID is first, then a preferred
 *                                              election, until ID leads
 *   scram USER MECHANISM PASSWORD              sets USER's SCRAM credential for MECHANISM
 *                                              (SCRAM-SHA-256 or -512) to PASSWORD, 4096 iterations
 *   groups                                     every group the brokers know: id, type
 *                                              (classic, consumer, ...), protocol, state
 *   quit
 *
 * Answers: {"ok":true,...} or {"ok":false,"error":"..."}. Every wait is bounded.
 */

import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewPartitionReassignment;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.PartitionReassignment;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.ElectionType;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;

public final class KafkaControl {
	private static final long CALL_TIMEOUT_MS = 15_000;
	private static Admin admin;

	public static void main(String[] args) throws Exception {
		/* Answers only on stdout: whatever Kafka's code prints goes to stderr. */
		PrintStream answers = new PrintStream(new java.io.FileOutputStream(java.io.FileDescriptor.out), true, StandardCharsets.UTF_8);
		System.setOut(System.err);
		BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
		String line;
		while ((line = in.readLine()) != null) {
			line = line.trim();
			if (line.isEmpty())
				continue;
			String[] w = line.split("\\s+");
			if (w[0].equals("quit"))
				break;
			String answer;
			try {
				answer = "{\"ok\":true" + run(w) + "}";
			} catch (Exception e) {
				Throwable t = e.getCause() != null && e instanceof java.util.concurrent.ExecutionException ? e.getCause() : e;
				answer = "{\"ok\":false,\"error\":" + str(t.getClass().getSimpleName() + ": " + t.getMessage()) + "}";
			}
			answers.println(answer);
		}
		if (admin != null)
			admin.close(java.time.Duration.ofSeconds(5));
		System.exit(0);
	}

	private static String run(String[] w) throws Exception {
		switch (w[0]) {
		case "format": return format(w);
		case "connect": return connect(w);
		case "wait-brokers": return waitBrokers(Integer.parseInt(w[1]), Long.parseLong(w[2]));
		case "create": return create(w[1], Integer.parseInt(w[2]), Short.parseShort(w[3]), w[4]);
		case "describe": return ",\"topics\":" + describe(Arrays.asList(w).subList(1, w.length));
		case "leader": return leader(w[1], Integer.parseInt(w[2]), Integer.parseInt(w[3]), Long.parseLong(w[4]));
		case "groups": return groups();
		case "offsets": return offsets(w[1]);
		case "scram": return scram(w[1], w[2], w[3]);
		default: throw new IllegalArgumentException("unknown command " + w[0]);
		}
	}

	private static String format(String[] w) throws Exception {
		List<String> a = new ArrayList<>(List.of("format", "-t", w[1], "-c", w[2]));
		a.addAll(Arrays.asList(w).subList(3, w.length));
		ByteArrayOutputStream buf = new ByteArrayOutputStream();
		int rc = kafka.tools.StorageTool.execute(a.toArray(new String[0]), new PrintStream(buf, true, StandardCharsets.UTF_8));
		if (rc != 0)
			throw new IllegalStateException("kafka-storage format exited " + rc + ": " + buf.toString(StandardCharsets.UTF_8));
		return "";
	}

	private static String connect(String[] w) {
		Properties p = new Properties();
		p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, w[1]);
		p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "10000");
		p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, String.valueOf(CALL_TIMEOUT_MS));
		p.put(AdminClientConfig.CLIENT_ID_CONFIG, "kstretch-kafkacluster");
		admin = Admin.create(p);
		return "";
	}

	private static String waitBrokers(int n, long timeoutMs) throws Exception {
		long deadline = System.currentTimeMillis() + timeoutMs;
		String last = "no answer";
		while (System.currentTimeMillis() < deadline) {
			try {
				Collection<Node> nodes = admin.describeCluster().nodes().get(CALL_TIMEOUT_MS, TimeUnit.MILLISECONDS);
				if (nodes.size() >= n) {
					StringBuilder b = new StringBuilder(",\"nodes\":[");
					for (Node node : nodes)
						b.append(b.charAt(b.length() - 1) == '[' ? "" : ",").append(node.id());
					return b.append("]").toString();
				}
				last = nodes.size() + " of " + n + " brokers";
			} catch (Exception e) {
				last = e.toString();
			}
			Thread.sleep(200);
		}
		throw new IllegalStateException("brokers not ready within " + timeoutMs + " ms: " + last);
	}

	private static String create(String name, int parts, short rf, String assignment) throws Exception {
		NewTopic t;
		if (assignment.equals("-")) {
			t = new NewTopic(name, parts, rf);
		} else {
			Map<Integer, List<Integer>> m = new HashMap<>();
			String[] ps = assignment.split(";");
			for (int i = 0; i < ps.length; i++) {
				List<Integer> r = new ArrayList<>();
				for (String id : ps[i].split(","))
					r.add(Integer.parseInt(id));
				m.put(i, r);
			}
			t = new NewTopic(name, m);
		}
		admin.createTopics(List.of(t)).all().get(CALL_TIMEOUT_MS, TimeUnit.MILLISECONDS);
		long deadline = System.currentTimeMillis() + CALL_TIMEOUT_MS;
		while (true) {
			try {
				TopicDescription d = admin.describeTopics(List.of(name)).allTopicNames()
					.get(CALL_TIMEOUT_MS, TimeUnit.MILLISECONDS).get(name);
				if (d.partitions().size() == parts && d.partitions().stream().allMatch(p -> p.leader() != null && p.leader().id() >= 0))
					return "";
			} catch (Exception e) {
				if (System.currentTimeMillis() > deadline)
					throw e;
			}
			if (System.currentTimeMillis() > deadline)
				throw new IllegalStateException("topic " + name + " has no leader for every partition");
			Thread.sleep(100);
		}
	}

	private static String describe(List<String> names) throws Exception {
		Collection<String> want = names;
		if (want.isEmpty()) {
			Set<String> all = admin.listTopics().names().get(CALL_TIMEOUT_MS, TimeUnit.MILLISECONDS);
			want = new ArrayList<>(all);
		}
		Map<String, TopicDescription> d = new TreeMap<>(admin.describeTopics(want).allTopicNames()
			.get(CALL_TIMEOUT_MS, TimeUnit.MILLISECONDS));
		StringBuilder b = new StringBuilder("[");
		for (TopicDescription t : d.values()) {
			if (b.length() > 1)
				b.append(",");
			b.append("{\"name\":").append(str(t.name())).append(",\"rf\":")
				.append(t.partitions().isEmpty() ? 0 : t.partitions().get(0).replicas().size())
				.append(",\"partitions\":[");
			boolean first = true;
			for (TopicPartitionInfo p : t.partitions()) {
				b.append(first ? "" : ",").append("{\"partition\":").append(p.partition())
					.append(",\"leader\":").append(p.leader() == null ? -1 : p.leader().id())
					.append(",\"replicas\":").append(ids(p.replicas()))
					.append(",\"isr\":").append(ids(p.isr())).append("}");
				first = false;
			}
			b.append("]}");
		}
		return b.append("]").toString();
	}

	private static String leader(String topic, int part, int id, long timeoutMs) throws Exception {
		TopicPartition tp = new TopicPartition(topic, part);
		long deadline = System.currentTimeMillis() + timeoutMs;
		TopicPartitionInfo p = partition(tp);
		List<Integer> replicas = new ArrayList<>();
		for (Node n : p.replicas())
			replicas.add(n.id());
		if (!replicas.isEmpty() && replicas.get(0) != id) {
			List<Integer> target = new ArrayList<>();
			target.add(id);
			for (Integer r : replicas)
				if (r != id && target.size() < replicas.size())
					target.add(r);
			admin.alterPartitionReassignments(Map.of(tp, Optional.of(new NewPartitionReassignment(target))))
				.all().get(CALL_TIMEOUT_MS, TimeUnit.MILLISECONDS);
			while (true) {
				Map<TopicPartition, PartitionReassignment> ongoing = admin.listPartitionReassignments(Set.of(tp))
					.reassignments().get(CALL_TIMEOUT_MS, TimeUnit.MILLISECONDS);
				if (!ongoing.containsKey(tp) && partition(tp).replicas().get(0).id() == id)
					break;
				if (System.currentTimeMillis() > deadline)
					throw new IllegalStateException("reassignment of " + tp + " to " + target + " not done in time");
				Thread.sleep(100);
			}
		}
		while (partition(tp).leader() == null || partition(tp).leader().id() != id) {
			try {
				admin.electLeaders(ElectionType.PREFERRED, Set.of(tp)).all().get(CALL_TIMEOUT_MS, TimeUnit.MILLISECONDS);
			} catch (Exception e) {
				/* ElectionNotNeeded when it already leads, or not yet in the ISR: look again. */
			}
			if (System.currentTimeMillis() > deadline)
				throw new IllegalStateException(id + " does not lead " + tp + " in time (replicas " + partition(tp).replicas() + ")");
			Thread.sleep(100);
		}
		return ",\"topics\":" + describe(List.of(topic));
	}

	private static String groups() throws Exception {
		StringBuilder b = new StringBuilder(",\"groups\":[");
		boolean first = true;
		for (org.apache.kafka.clients.admin.GroupListing g : admin.listGroups().all().get(CALL_TIMEOUT_MS, TimeUnit.MILLISECONDS)) {
			b.append(first ? "" : ",").append("{\"id\":").append(str(g.groupId()))
				.append(",\"type\":").append(str(g.type().map(t -> t.toString().toLowerCase(java.util.Locale.ROOT)).orElse(null)))
				.append(",\"protocol\":").append(str(g.protocol()))
				.append(",\"state\":").append(str(g.groupState().map(Object::toString).orElse(null))).append("}");
			first = false;
		}
		return b.append("]").toString();
	}

	/** A group's committed offsets, as "topic:partition": offset (read with the Admin API, from the brokers). */
	private static String offsets(String group) throws Exception {
		StringBuilder b = new StringBuilder(",\"offsets\":{");
		boolean first = true;
		for (Map.Entry<TopicPartition, org.apache.kafka.clients.consumer.OffsetAndMetadata> e :
		     admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata()
		         .get(CALL_TIMEOUT_MS, TimeUnit.MILLISECONDS).entrySet()) {
			if (e.getValue() == null)
				continue;
			b.append(first ? "" : ",").append(str(e.getKey().topic() + ":" + e.getKey().partition())).append(":")
				.append(e.getValue().offset());
			first = false;
		}
		return b.append("}").toString();
	}

	private static String scram(String user, String mechanism, String password) throws Exception {
		org.apache.kafka.clients.admin.ScramMechanism m = org.apache.kafka.clients.admin.ScramMechanism.fromMechanismName(mechanism);
		if (m == org.apache.kafka.clients.admin.ScramMechanism.UNKNOWN)
			throw new IllegalArgumentException("not a SCRAM mechanism: " + mechanism);
		admin.alterUserScramCredentials(List.of(new org.apache.kafka.clients.admin.UserScramCredentialUpsertion(
			user, new org.apache.kafka.clients.admin.ScramCredentialInfo(m, 4096), password)))
			.all().get(CALL_TIMEOUT_MS, TimeUnit.MILLISECONDS);
		return "";
	}

	private static TopicPartitionInfo partition(TopicPartition tp) throws Exception {
		TopicDescription d = admin.describeTopics(List.of(tp.topic())).allTopicNames()
			.get(CALL_TIMEOUT_MS, TimeUnit.MILLISECONDS).get(tp.topic());
		for (TopicPartitionInfo p : d.partitions())
			if (p.partition() == tp.partition())
				return p;
		throw new IllegalArgumentException("no partition " + tp);
	}

	private static String ids(List<Node> nodes) {
		StringBuilder b = new StringBuilder("[");
		for (Node n : nodes)
			b.append(b.length() > 1 ? "," : "").append(n.id());
		return b.append("]").toString();
	}

	private static String str(String s) {
		if (s == null)
			return "null";
		StringBuilder b = new StringBuilder("\"");
		for (char c : s.toCharArray()) {
			if (c == '"' || c == '\\')
				b.append('\\').append(c);
			else if (c < 0x20)
				b.append(String.format("\\u%04x", (int) c));
			else
				b.append(c);
		}
		return b.append('"').toString();
	}
}
