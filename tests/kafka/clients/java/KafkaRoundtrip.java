// The Java client (Apache kafka-clients) in kstretch's real-Kafka suite:
// produce, consume in a group, transactions, and the AdminClient, each a
// sub-command given nothing but a bootstrap address (kstretch's, or the
// brokers' for a direct run). tests/kafka/javaclients.py compiles and runs it.
//
//   KafkaRoundtrip produce BOOTSTRAP TOPIC INPUT [--acks all|1|0] [--idempotent true|false]
//                  [--client-id ID] [--timeout S] [--interval-ms MS]
//   KafkaRoundtrip consume BOOTSTRAP TOPIC GROUP EXPECTED TIMEOUT_S [--group-protocol classic|consumer]
//                  [--isolation read_committed|read_uncommitted] [--client-id ID] [--rack RACK] [--settle S]
//                  (GROUP "-": no group; every partition assigned by hand from its beginning)
//   KafkaRoundtrip member BOOTSTRAP TOPIC GROUP TIMEOUT_S [--group-protocol classic|consumer] [--client-id ID]
//                  (one member of a group until told to stop on stdin: see GroupMember.java)
//   KafkaRoundtrip wordcount BOOTSTRAP INPUT_TOPIC OUTPUT_TOPIC APP_ID STATE_DIR TIMEOUT_S
//                  (a Kafka Streams word count, exactly_once_v2: see WordCount.java)
//   KafkaRoundtrip txn BOOTSTRAP TOPIC INPUT TXN_ID BATCH [--client-id ID] [--timeout S]
//   KafkaRoundtrip admin BOOTSTRAP NEWTOPIC PARTITIONS RF [--client-id ID] [--timeout S]
//
// Every sub-command also takes --config FILE: a Java properties file whose
// entries are added to the client's configuration last (security.protocol,
// sasl.mechanism, sasl.jaas.config, ssl.truststore.location, ...).
// produce --interval-ms MS waits MS ms after each record (a producer that
// runs for a while, e.g. past the brokers' connections.max.reauth.ms).
// produce and consume end with a "metrics:" line on stderr: the client's
// authentication counters (successful-authentication-total,
// successful-reauthentication-total, failed-authentication-total, ...).
//
// INPUT is a file of KEY<TAB>VALUE lines ("-": standard input), produced in
// order with the default partitioner (a key always goes to one partition).
// consume writes what it read as PARTITION<TAB>OFFSET<TAB>KEY<TAB>VALUE lines
// in consumption order; txn writes the records of its committed transactions
// as KEY<TAB>VALUE lines; admin writes one JSON object. Nothing else goes to
// stdout: the client's log (log4j2, see log4j2.properties) and the summary
// lines go to stderr, the first of them "client-version: kafka-clients X.Y.Z".
//
// Each sub-command is bounded: TIMEOUT_S (consume) or --timeout (default
// 60 s) for the work, up to 15 s more to commit and close; past that a
// watchdog ends the process with the exit code of the stage it was in.
//
// Exit codes: 0 ok, 2 usage, 3 produce failed, 4 fewer records than expected
// in time, 5 any other failure.

import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import org.apache.kafka.common.utils.internals.AppInfoParser;

public final class KafkaRoundtrip {
    static final int OK = 0, USAGE = 2, PRODUCE_FAILED = 3, TOO_FEW = 4, FAILED = 5;

    static final String USAGE_TEXT = String.join("\n",
        "usage: KafkaRoundtrip produce BOOTSTRAP TOPIC INPUT [--acks all|1|0] [--idempotent true|false]",
        "                      [--client-id ID] [--timeout S] [--interval-ms MS]",
        "       KafkaRoundtrip consume BOOTSTRAP TOPIC GROUP EXPECTED TIMEOUT_S",
        "                      [--group-protocol classic|consumer] [--isolation read_committed|read_uncommitted]",
        "                      [--client-id ID] [--rack RACK] [--settle S]",
        "       KafkaRoundtrip member BOOTSTRAP TOPIC GROUP TIMEOUT_S [--group-protocol classic|consumer]",
        "                      [--client-id ID]",
        "       KafkaRoundtrip wordcount BOOTSTRAP INPUT_TOPIC OUTPUT_TOPIC APP_ID STATE_DIR TIMEOUT_S",
        "       KafkaRoundtrip txn BOOTSTRAP TOPIC INPUT TXN_ID BATCH [--client-id ID] [--timeout S]",
        "       KafkaRoundtrip admin BOOTSTRAP NEWTOPIC PARTITIONS RF [--client-id ID] [--timeout S]",
        "       KafkaRoundtrip groups BOOTSTRAP TOPIC PARTITIONS GROUP,GROUP,... TXN,TXN,...|-",
        "                      [--delete GROUP,GROUP,...] [--client-id ID] [--timeout S]",
        "       every sub-command: [--config PROPERTIES_FILE]");

    /** Time given, after the deadline of the work, to commit, abort and close. */
    static final long CLOSE_GRACE_MS = 15_000;
    static final long DEFAULT_TIMEOUT_S = 60;

    /** The real standard output: records and JSON only. System.out is pointed
     *  at stderr, so that nothing else (a logger's console appender) can
     *  write there. */
    static final PrintStream OUT =
        new PrintStream(new FileOutputStream(FileDescriptor.out), false, StandardCharsets.UTF_8);

    /** The exit code the watchdog uses if the process is still running at the
     *  hard deadline: that of the stage it is in. */
    static final AtomicInteger timeoutCode = new AtomicInteger(FAILED);

    static final class UsageException extends Exception {
        private static final long serialVersionUID = 1L;

        UsageException(String msg) {
            super(msg);
        }
    }

    public static void main(String[] argv) {
        System.setOut(System.err);
        log("client-version: kafka-clients " + AppInfoParser.getVersion());
        int code;
        try {
            code = run(argv);
        } catch (UsageException e) {
            log("usage error: " + e.getMessage());
            log(USAGE_TEXT);
            code = USAGE;
        } catch (Throwable e) {
            log("failed: " + describe(e));
            e.printStackTrace();
            code = FAILED;
        }
        OUT.flush();
        System.err.flush();
        System.exit(code);
    }

    static int run(String[] argv) throws Exception {
        if (argv.length < 1) {
            throw new UsageException("no sub-command");
        }
        String cmd = argv[0];
        List<String> rest = Arrays.asList(argv).subList(1, argv.length);
        switch (cmd) {
            case "produce": {
                Args a = Args.parse(rest, 3, Set.of("--acks", "--idempotent", "--client-id", "--timeout",
                                                    "--interval-ms", "--config"));
                return Producers.produce(a);
            }
            case "consume": {
                Args a = Args.parse(rest, 5, Set.of("--group-protocol", "--isolation", "--client-id", "--rack",
                                                    "--settle", "--config"));
                return Consume.consume(a);
            }
            case "member": {
                Args a = Args.parse(rest, 4, Set.of("--group-protocol", "--client-id", "--config"));
                return GroupMember.member(a);
            }
            case "wordcount": {
                Args a = Args.parse(rest, 6, Set.of("--config"));
                return WordCount.wordcount(a);
            }
            case "txn": {
                Args a = Args.parse(rest, 5, Set.of("--client-id", "--timeout", "--config"));
                return Producers.txn(a);
            }
            case "admin": {
                Args a = Args.parse(rest, 4, Set.of("--client-id", "--timeout", "--config", "--broker-config"));
                return AdminReport.admin(a);
            }
            case "groups": {
                Args a = Args.parse(rest, 5, Set.of("--delete", "--client-id", "--timeout", "--config"));
                return GroupsAdmin.groups(a);
            }
            default:
                throw new UsageException("unknown sub-command " + cmd);
        }
    }

    /** Positional arguments, then --name value options (each at most once). */
    static final class Args {
        final List<String> positional;
        final Map<String, String> options;

        private Args(List<String> positional, Map<String, String> options) {
            this.positional = positional;
            this.options = options;
        }

        static Args parse(List<String> argv, int positionals, Set<String> known) throws UsageException {
            if (argv.size() < positionals) {
                throw new UsageException("expected " + positionals + " arguments before the options, got "
                                         + argv.size());
            }
            List<String> pos = new ArrayList<>(argv.subList(0, positionals));
            Map<String, String> opts = new HashMap<>();
            for (int i = positionals; i < argv.size(); i += 2) {
                String name = argv.get(i);
                if (!known.contains(name)) {
                    throw new UsageException("unknown option " + name);
                }
                if (i + 1 >= argv.size()) {
                    throw new UsageException(name + " needs a value");
                }
                if (opts.put(name, argv.get(i + 1)) != null) {
                    throw new UsageException(name + " given twice");
                }
            }
            return new Args(pos, opts);
        }

        String pos(int i) {
            return positional.get(i);
        }

        String opt(String name, String dflt) {
            return options.getOrDefault(name, dflt);
        }

        String choice(String name, String dflt, String... allowed) throws UsageException {
            String v = opt(name, dflt);
            if (!Arrays.asList(allowed).contains(v)) {
                throw new UsageException(name + " must be one of " + String.join(", ", allowed) + ", not " + v);
            }
            return v;
        }

        long positiveLong(String what, String text, long min) throws UsageException {
            long v;
            try {
                v = Long.parseLong(text);
            } catch (NumberFormatException e) {
                throw new UsageException(what + " is not a number: " + text);
            }
            if (v < min) {
                throw new UsageException(what + " must be at least " + min + ", not " + v);
            }
            return v;
        }

        /** --timeout in seconds (default 60). */
        long timeoutS() throws UsageException {
            return positiveLong("--timeout", opt("--timeout", Long.toString(DEFAULT_TIMEOUT_S)), 1);
        }
    }

    /** Adds the entries of --config FILE (if given) to a client's properties. */
    static void addConfig(java.util.Properties p, Args a) throws UsageException, IOException {
        String path = a.opt("--config", null);
        if (path == null) {
            return;
        }
        java.util.Properties extra = new java.util.Properties();
        try (java.io.Reader r = Files.newBufferedReader(Paths.get(path), StandardCharsets.UTF_8)) {
            extra.load(r);
        } catch (java.nio.file.NoSuchFileException e) {
            throw new UsageException("no such --config file: " + path);
        }
        p.putAll(extra);
    }

    /** The client's authentication counters, one line on stderr:
     *  "metrics: NAME=VALUE ..." (summed over the client's connections' selector). */
    static void logAuthMetrics(Map<org.apache.kafka.common.MetricName, ? extends org.apache.kafka.common.Metric> m) {
        java.util.TreeMap<String, Double> sums = new java.util.TreeMap<>();
        for (Map.Entry<org.apache.kafka.common.MetricName, ? extends org.apache.kafka.common.Metric> e : m.entrySet()) {
            String name = e.getKey().name();
            if (name.endsWith("authentication-total") && e.getValue().metricValue() instanceof Double) {
                sums.merge(name, (Double) e.getValue().metricValue(), Double::sum);
            }
        }
        StringBuilder sb = new StringBuilder("metrics:");
        for (Map.Entry<String, Double> e : sums.entrySet()) {
            sb.append(' ').append(e.getKey()).append('=').append(Math.round(e.getValue()));
        }
        log(sb.toString());
    }

    /** A KEY<TAB>VALUE record of the input. */
    static final class Rec {
        final String key;
        final String value;

        Rec(String key, String value) {
            this.key = key;
            this.value = value;
        }
    }

    static List<Rec> readInput(String path) throws UsageException, IOException {
        List<String> lines;
        if (path.equals("-")) {
            lines = Arrays.asList(new String(System.in.readAllBytes(), StandardCharsets.UTF_8).split("\n", -1));
        } else {
            try {
                lines = Files.readAllLines(Paths.get(path), StandardCharsets.UTF_8);
            } catch (java.nio.file.NoSuchFileException e) {
                throw new UsageException("no such input file: " + path);
            }
        }
        List<Rec> out = new ArrayList<>(lines.size());
        int n = 0;
        for (String line : lines) {
            n++;
            if (line.endsWith("\r")) {
                line = line.substring(0, line.length() - 1);
            }
            if (line.isEmpty()) {
                continue;
            }
            int tab = line.indexOf('\t');
            if (tab < 0) {
                throw new UsageException(path + " line " + n + " is not KEY<TAB>VALUE");
            }
            out.add(new Rec(line.substring(0, tab), line.substring(tab + 1)));
        }
        return out;
    }

    /** Ends the process with `timeoutCode` if it is still running at
     *  `hardDeadlineNanos` (System.nanoTime()): whatever a client call does,
     *  the sub-command is bounded. */
    static void startWatchdog(long hardDeadlineNanos, String what) {
        Thread t = new Thread(() -> {
            while (true) {
                long left = hardDeadlineNanos - System.nanoTime();
                if (left <= 0) {
                    break;
                }
                try {
                    TimeUnit.NANOSECONDS.sleep(left);
                } catch (InterruptedException e) {
                    return;
                }
            }
            int code = timeoutCode.get();
            OUT.flush();
            log("timed out: " + what + " still running at its hard deadline; exiting " + code);
            System.err.flush();
            Runtime.getRuntime().halt(code);
        }, "kstretch-watchdog");
        t.setDaemon(true);
        t.start();
    }

    static long deadlineNanos(long timeoutS) {
        return System.nanoTime() + TimeUnit.SECONDS.toNanos(timeoutS);
    }

    static long remainingMs(long deadlineNanos) {
        return Math.max(0, TimeUnit.NANOSECONDS.toMillis(deadlineNanos - System.nanoTime()));
    }

    static void log(String msg) {
        System.err.println(msg);
        System.err.flush();
    }

    /** An exception and its causes, one line. */
    static String describe(Throwable e) {
        StringBuilder sb = new StringBuilder();
        Set<Throwable> seen = new HashSet<>();
        for (Throwable t = e; t != null && seen.add(t); t = t.getCause()) {
            if (sb.length() > 0) {
                sb.append(" <- ");
            }
            sb.append(t.getClass().getName());
            if (t.getMessage() != null) {
                sb.append(": ").append(t.getMessage());
            }
        }
        return sb.toString();
    }

    /** A record field as written on stdout. A tab or line break would break
     *  the line format, so they are written as \t, \n and \r (the inputs have
     *  none: a record that comes back with one is a wrong record, and shows). */
    static String field(String s) {
        if (s == null) {
            return "";
        }
        return s.replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r");
    }

    private KafkaRoundtrip() {
    }
}
