// KafkaRoundtrip's `wordcount`: a Kafka Streams application (kafka-streams,
// processing.guarantee=exactly_once_v2). Lines of INPUT_TOPIC (values) are
// split into words (on spaces), grouped by word (a repartition topic) and
// counted (a state store with its changelog topic); every new count goes to
// OUTPUT_TOPIC as WORD -> count (a long, 8 bytes big-endian). The record cache
// is off, so each word read makes exactly one output record: the counts of a
// word on the output are 1, 2, ..., n in order if every input record counted
// once.
//
// Each count produced is also written to stdout as "WORD<TAB>COUNT" (before its
// transaction commits: a progress report, not the result, which is the output
// topic's committed records). A line on stdin, or its end, stops the
// application (KafkaStreams.close, which commits; then "#closed" on stdout);
// TIMEOUT_S bounds the run.
// Exit codes: 0 closed cleanly, 4 not told to stop in time, 5 the application
// went to ERROR (its exception on stderr).

import java.io.IOException;
import java.time.Duration;
import java.util.Arrays;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.Produced;

final class WordCount {
    static int wordcount(KafkaRoundtrip.Args a) throws Exception {
        String bootstrap = a.pos(0);
        String input = a.pos(1);
        String output = a.pos(2);
        String appId = a.pos(3);
        String stateDir = a.pos(4);
        long timeoutS = a.positiveLong("TIMEOUT_S", a.pos(5), 1);
        long deadline = KafkaRoundtrip.deadlineNanos(timeoutS);
        KafkaRoundtrip.timeoutCode.set(KafkaRoundtrip.TOO_FEW);
        KafkaRoundtrip.startWatchdog(deadline + TimeUnit.MILLISECONDS.toNanos(KafkaRoundtrip.CLOSE_GRACE_MS) * 2,
                                     "wordcount");

        Properties p = new Properties();
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, appId);
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
        p.put(StreamsConfig.STATE_DIR_CONFIG, stateDir);
        p.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0);
        p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 200);
        p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, 1);
        p.put(StreamsConfig.REPLICATION_FACTOR_CONFIG, 3);
        p.put(StreamsConfig.consumerPrefix("auto.offset.reset"), "earliest");
        KafkaRoundtrip.addConfig(p, a);

        StreamsBuilder b = new StreamsBuilder();
        b.stream(input, Consumed.with(Serdes.String(), Serdes.String()))
         .flatMapValues(line -> Arrays.asList(line.split(" ")))
         .filter((k, w) -> !w.isEmpty())
         .groupBy((k, w) -> w, Grouped.with("words", Serdes.String(), Serdes.String()))
         .count()
         .toStream()
         .peek((w, n) -> {
             KafkaRoundtrip.OUT.print(w + "\t" + n + "\n");
             KafkaRoundtrip.OUT.flush();
         })
         .to(output, Produced.with(Serdes.String(), Serdes.Long()));

        AtomicReference<Throwable> failure = new AtomicReference<>();
        CountDownLatch stop = new CountDownLatch(1);
        Thread stdin = new Thread(() -> {
            try {
                System.in.read();
            } catch (IOException e) {
                // the end of stdin: stop as well
            }
            stop.countDown();
        }, "kstretch-wordcount-stdin");
        stdin.setDaemon(true);
        stdin.start();

        KafkaStreams streams = new KafkaStreams(b.build(), p);
        streams.setUncaughtExceptionHandler(e -> {
            failure.set(e);
            KafkaRoundtrip.log("wordcount: uncaught " + KafkaRoundtrip.describe(e));
            stop.countDown();
            return org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse
                .SHUTDOWN_CLIENT;
        });
        streams.setStateListener((now, before) -> KafkaRoundtrip.log("wordcount: state " + before + " -> " + now));
        long start = System.nanoTime();
        streams.start();
        boolean told = stop.await(KafkaRoundtrip.remainingMs(deadline), TimeUnit.MILLISECONDS);
        KafkaRoundtrip.timeoutCode.set(KafkaRoundtrip.FAILED);
        boolean closed = streams.close(Duration.ofMillis(KafkaRoundtrip.CLOSE_GRACE_MS));
        KafkaRoundtrip.log(String.format("wordcount: ran %.2f s, closed %s, state %s", (System.nanoTime() - start) / 1e9,
                                         closed, streams.state()));
        if (failure.get() != null || !closed) {
            return KafkaRoundtrip.FAILED;
        }
        KafkaRoundtrip.OUT.print("#closed\n");
        KafkaRoundtrip.OUT.flush();
        return told ? KafkaRoundtrip.OK : KafkaRoundtrip.TOO_FEW;
    }

    private WordCount() {
    }
}
