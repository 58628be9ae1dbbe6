// KafkaRoundtrip's `member`: one member of a consumer group in the member
// contract of tests/kafka/groupmembers.py (stdout: records, "#assigned P,..",
// "#revoked P,..", "#closed"; a line on stdin or its end: commit, leave, exit 0).
// After each poll it commits, synchronously, the offset after the last record
// it read of each partition; in onPartitionsRevoked it commits theirs first.

import java.io.IOException;
import java.time.Duration;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

import org.apache.kafka.clients.consumer.CloseOptions;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;

final class GroupMember {
    static final Duration COMMIT_TIMEOUT = Duration.ofSeconds(10);
    static final Duration CLOSE_TIMEOUT = Duration.ofSeconds(10);

    static int member(KafkaRoundtrip.Args a) throws Exception {
        String bootstrap = a.pos(0);
        String topic = a.pos(1);
        String group = a.pos(2);
        long timeoutS = a.positiveLong("TIMEOUT_S", a.pos(3), 1);
        String protocol = a.choice("--group-protocol", "classic", "classic", "consumer");
        long deadline = KafkaRoundtrip.deadlineNanos(timeoutS);
        KafkaRoundtrip.timeoutCode.set(KafkaRoundtrip.TOO_FEW);
        KafkaRoundtrip.startWatchdog(deadline + TimeUnit.MILLISECONDS.toNanos(KafkaRoundtrip.CLOSE_GRACE_MS),
                                     "member");
        AtomicBoolean stop = new AtomicBoolean();
        Thread stdin = new Thread(() -> {
            try {
                int first = System.in.read(); // the first byte of a line, or the end (-1): either says stop
                KafkaRoundtrip.log("member: told to stop (" + (first < 0 ? "end of stdin" : "a line") + ")");
            } catch (IOException e) {
                // the end of stdin: stop as well
            }
            stop.set(true);
        }, "kstretch-member-stdin");
        stdin.setDaemon(true);
        stdin.start();

        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.CLIENT_ID_CONFIG, a.opt("--client-id", "kstretch-java-member"));
        p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        p.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, protocol);
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        KafkaRoundtrip.addConfig(p, a);

        Map<TopicPartition, OffsetAndMetadata> done = new HashMap<>();
        KafkaConsumer<String, String> consumer = new KafkaConsumer<>(p);
        StringBuilder sb = new StringBuilder();
        try {
            consumer.subscribe(List.of(topic), new ConsumerRebalanceListener() {
                @Override
                public void onPartitionsRevoked(Collection<TopicPartition> parts) {
                    commit(consumer, done, parts);
                    emit("#revoked " + partitions(parts) + "\n");
                }

                @Override
                public void onPartitionsAssigned(Collection<TopicPartition> parts) {
                    emit("#assigned " + partitions(parts) + "\n");
                }
            });
            while (!stop.get()) {
                if (KafkaRoundtrip.remainingMs(deadline) <= 0) {
                    KafkaRoundtrip.log("member: not told to stop in time");
                    return KafkaRoundtrip.TOO_FEW;
                }
                sb.setLength(0);
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200))) {
                    sb.append(r.partition()).append('\t').append(r.offset()).append('\t')
                      .append(KafkaRoundtrip.field(r.key())).append('\t').append(KafkaRoundtrip.field(r.value()))
                      .append('\n');
                    done.put(new TopicPartition(r.topic(), r.partition()), new OffsetAndMetadata(r.offset() + 1));
                }
                emit(sb.toString());
                commit(consumer, done, null);
            }
            KafkaRoundtrip.timeoutCode.set(KafkaRoundtrip.FAILED);
            commit(consumer, done, null);
            if (!done.isEmpty()) {
                KafkaRoundtrip.log("member: offsets left uncommitted " + done);
                return KafkaRoundtrip.FAILED;
            }
        } finally {
            consumer.close(CloseOptions.timeout(CLOSE_TIMEOUT));
        }
        emit("#closed\n");
        return KafkaRoundtrip.OK;
    }

    /** Commits what was read of `parts` (all when null); what fails stays to be committed again. */
    static void commit(KafkaConsumer<String, String> consumer, Map<TopicPartition, OffsetAndMetadata> done,
                       Collection<TopicPartition> parts) {
        Map<TopicPartition, OffsetAndMetadata> offsets = new HashMap<>();
        for (Map.Entry<TopicPartition, OffsetAndMetadata> e : done.entrySet()) {
            if (parts == null || parts.contains(e.getKey())) {
                offsets.put(e.getKey(), e.getValue());
            }
        }
        if (offsets.isEmpty()) {
            return;
        }
        try {
            consumer.commitSync(offsets, COMMIT_TIMEOUT);
            done.keySet().removeAll(offsets.keySet());
        } catch (KafkaException e) {
            KafkaRoundtrip.log("member: commit failed: " + KafkaRoundtrip.describe(e));
        }
    }

    static String partitions(Collection<TopicPartition> parts) {
        TreeSet<Integer> ps = new TreeSet<>();
        for (TopicPartition tp : parts) {
            ps.add(tp.partition());
        }
        StringBuilder sb = new StringBuilder();
        for (int p : ps) {
            sb.append(sb.length() > 0 ? "," : "").append(p);
        }
        return sb.toString();
    }

    static void emit(String s) {
        if (!s.isEmpty()) {
            KafkaRoundtrip.OUT.print(s);
            KafkaRoundtrip.OUT.flush();
        }
    }

    private GroupMember() {
    }
}
