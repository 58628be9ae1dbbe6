// KafkaRoundtrip's producers: `produce` (plain or idempotent) and `txn`
// (a transactional producer that commits every other transaction).

import java.time.Duration;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import org.apache.kafka.clients.producer.Callback;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.serialization.StringSerializer;

final class Producers {
    /** How long close() may take once everything was flushed (or has failed). */
    static final Duration CLOSE_TIMEOUT = Duration.ofSeconds(5);

    static Properties props(String bootstrap, String clientId, long timeoutS) {
        long timeoutMs = TimeUnit.SECONDS.toMillis(timeoutS);
        long linger = 5;
        long request = Math.max(1000, Math.min(30_000, timeoutMs / 2));
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.CLIENT_ID_CONFIG, clientId);
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.LINGER_MS_CONFIG, Long.toString(linger));
        // Every wait of the producer ends within the sub-command's timeout:
        // a record is acknowledged or failed by delivery.timeout.ms, send()
        // and the transaction calls block at most max.block.ms.
        p.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, Long.toString(request));
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, Long.toString(Math.max(timeoutMs, request + linger)));
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, Long.toString(timeoutMs));
        return p;
    }

    /** Counts acknowledgements and failures; keeps the first few errors. */
    static final class Acks implements Callback {
        final AtomicInteger acked = new AtomicInteger();
        final AtomicInteger failed = new AtomicInteger();

        @Override
        public void onCompletion(org.apache.kafka.clients.producer.RecordMetadata md, Exception e) {
            if (e == null) {
                acked.incrementAndGet();
            } else if (failed.incrementAndGet() <= 5) {
                KafkaRoundtrip.log("delivery failed: " + KafkaRoundtrip.describe(e));
            }
        }
    }

    static int produce(KafkaRoundtrip.Args a) throws Exception {
        String bootstrap = a.pos(0);
        String topic = a.pos(1);
        List<KafkaRoundtrip.Rec> recs = KafkaRoundtrip.readInput(a.pos(2));
        String acks = a.choice("--acks", "all", "all", "-1", "1", "0");
        boolean idempotent = Boolean.parseBoolean(a.choice("--idempotent", "true", "true", "false"));
        if (idempotent && !(acks.equals("all") || acks.equals("-1"))) {
            throw new KafkaRoundtrip.UsageException("--idempotent true needs --acks all");
        }
        String clientId = a.opt("--client-id", "kstretch-java-producer");
        long timeoutS = a.timeoutS();
        long deadline = KafkaRoundtrip.deadlineNanos(timeoutS);
        KafkaRoundtrip.timeoutCode.set(KafkaRoundtrip.PRODUCE_FAILED);
        KafkaRoundtrip.startWatchdog(deadline + TimeUnit.MILLISECONDS.toNanos(KafkaRoundtrip.CLOSE_GRACE_MS),
                                     "produce");

        long intervalMs = a.positiveLong("--interval-ms", a.opt("--interval-ms", "0"), 0);
        Properties p = props(bootstrap, clientId, timeoutS);
        p.put(ProducerConfig.ACKS_CONFIG, acks);
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, Boolean.toString(idempotent));
        if (!idempotent) {
            // Without sequence numbers, a retried batch could overtake the
            // next one: one request in flight keeps the records in order.
            p.put(ProducerConfig.MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION, "1");
        }
        KafkaRoundtrip.addConfig(p, a);
        long start = System.nanoTime();
        Acks cb = new Acks();
        int sent = 0;
        KafkaProducer<String, String> producer = new KafkaProducer<>(p);
        try {
            for (KafkaRoundtrip.Rec r : recs) {
                if (System.nanoTime() > deadline) {
                    KafkaRoundtrip.log("produce: the deadline passed after sending " + sent + " records");
                    break;
                }
                try {
                    producer.send(new ProducerRecord<>(topic, r.key, r.value), cb);
                } catch (KafkaException e) {
                    KafkaRoundtrip.log("send failed: " + KafkaRoundtrip.describe(e));
                    break;
                }
                sent++;
                if (intervalMs > 0) {
                    Thread.sleep(intervalMs);
                }
            }
            producer.flush();
            KafkaRoundtrip.logAuthMetrics(producer.metrics());
        } finally {
            producer.close(CLOSE_TIMEOUT);
        }
        KafkaRoundtrip.log(String.format("acked: %d of %d records (%d sent, %d failed) in %.2f s, acks=%s idempotent=%s",
                                         cb.acked.get(), recs.size(), sent, cb.failed.get(),
                                         (System.nanoTime() - start) / 1e9, acks, idempotent));
        return cb.acked.get() == recs.size() ? KafkaRoundtrip.OK : KafkaRoundtrip.PRODUCE_FAILED;
    }

    static int txn(KafkaRoundtrip.Args a) throws Exception {
        String bootstrap = a.pos(0);
        String topic = a.pos(1);
        List<KafkaRoundtrip.Rec> recs = KafkaRoundtrip.readInput(a.pos(2));
        String txnId = a.pos(3);
        int batch = (int) a.positiveLong("BATCH", a.pos(4), 1);
        String clientId = a.opt("--client-id", "kstretch-java-txn");
        long timeoutS = a.timeoutS();
        long deadline = KafkaRoundtrip.deadlineNanos(timeoutS);
        KafkaRoundtrip.timeoutCode.set(KafkaRoundtrip.PRODUCE_FAILED);
        KafkaRoundtrip.startWatchdog(deadline + TimeUnit.MILLISECONDS.toNanos(KafkaRoundtrip.CLOSE_GRACE_MS),
                                     "txn");

        Properties p = props(bootstrap, clientId, timeoutS);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, txnId);
        KafkaRoundtrip.addConfig(p, a);
        long start = System.nanoTime();
        int committed = 0, aborted = 0, commits = 0, aborts = 0;
        KafkaProducer<String, String> producer = new KafkaProducer<>(p);
        try {
            producer.initTransactions();
            for (int b = 0, from = 0; from < recs.size(); b++, from += batch) {
                if (System.nanoTime() > deadline) {
                    KafkaRoundtrip.log("txn: the deadline passed before transaction " + b);
                    return KafkaRoundtrip.PRODUCE_FAILED;
                }
                List<KafkaRoundtrip.Rec> part = recs.subList(from, Math.min(recs.size(), from + batch));
                Acks cb = new Acks();
                producer.beginTransaction();
                for (KafkaRoundtrip.Rec r : part) {
                    producer.send(new ProducerRecord<>(topic, r.key, r.value), cb);
                }
                // Flushed first, also before an abort: the aborted records
                // are then written to the partitions, and a read_committed
                // consumer has to skip them.
                producer.flush();
                if (cb.acked.get() != part.size()) {
                    KafkaRoundtrip.log("txn: transaction " + b + ": " + cb.acked.get() + " of " + part.size()
                                       + " records acked (" + cb.failed.get() + " failed)");
                    return KafkaRoundtrip.PRODUCE_FAILED;
                }
                if (b % 2 == 0) {
                    producer.commitTransaction();
                    StringBuilder sb = new StringBuilder();
                    for (KafkaRoundtrip.Rec r : part) {
                        sb.append(KafkaRoundtrip.field(r.key)).append('\t').append(KafkaRoundtrip.field(r.value))
                          .append('\n');
                    }
                    KafkaRoundtrip.OUT.print(sb);
                    KafkaRoundtrip.OUT.flush();
                    committed += part.size();
                    commits++;
                } else {
                    producer.abortTransaction();
                    aborted += part.size();
                    aborts++;
                }
            }
        } catch (KafkaException e) {
            KafkaRoundtrip.log("txn failed: " + KafkaRoundtrip.describe(e));
            return KafkaRoundtrip.PRODUCE_FAILED;
        } finally {
            producer.close(CLOSE_TIMEOUT);
            KafkaRoundtrip.log(String.format(
                "txn: committed %d records in %d transactions, aborted %d records in %d transactions, in %.2f s",
                committed, commits, aborted, aborts, (System.nanoTime() - start) / 1e9));
        }
        return KafkaRoundtrip.OK;
    }

    private Producers() {
    }
}
