#!/usr/bin/python3
"""The real-Kafka benchmark: Apache Kafka's own perf tools through each proxy.

    bench/kafka_bench.py [--build build] [--runs 5] [--workers 1] [--out bench/results]
                         [--quick] [--contenders direct,kstretch,...] [--no-kroxylicious]
    bench/kafka_bench.py --report-only [--out DIR]   # kafka-latest.md and charts again from kafka-latest.json

One real Apache Kafka 4.4 broker (KRaft, broker and controller in one JVM,
-Xmx1g), and Apache Kafka's own kafka-producer-perf-test
(org.apache.kafka.tools.ProducerPerformance) and kafka-consumer-perf-test
(ConsumerPerformance), each run as its script runs it (the java command line
kafka-run-class.sh builds: see JavaTools), against:

  direct          the broker's DIRECT listener
  kstretch        mapped mode (build/proxy/kstretch), bootstrapping from DIRECT
                  and rewriting the broker's address itself
  kstretch, Fetch held
                  the same with fetch.cut.through=false (consumer runs only):
                  the Java consumer's Fetch v18 answers held whole to rewrite
                  their NodeEndpoints, as before that setting existed
  HAProxy         tcp mode, and HAProxy splice (option splice-request/-response)
  nginx stream    nginx's stream proxy
  Kroxylicious    the JVM L7 proxy, pass-through (a virtual cluster with
                  port-based broker mapping, no filters), when `make
                  deps-kroxylicious` resolved it from Maven Central

With --tls the clients speak TLS to the proxy, which speaks plaintext to the
broker (TLS terminated at the proxy, as at a region's edge):

  kstretch TLS    kstretch with tls.cert/tls.key
  HAProxy TLS     HAProxy tcp mode, `bind ... ssl crt`

both offering one TLS 1.3 suite only (TLS_CIPHER below, the Java client's
first choice), the Java tools trusting the test CA (certificates made by
tests/integration/certs.py at the start of the run); direct stays plaintext,
the reference for the ratios.

An L4 proxy cannot rewrite metadata, so the broker has one listener per L4
proxy, advertised with the address of the proxy in front of it
(advertised.listeners): a client given only that proxy's address is sent back
to it. Kroxylicious has a listener of its own too (advertised as itself; it
rewrites the addresses, as kstretch does).

Runs, for records of 1 KiB and 100 B: producer-perf unthrottled with acks=1
and acks=all, then consumer-perf from the beginning of a topic filled once
beforehand, in a new group each time. Within each repetition the contenders
run one after the other, their order rotated by one every repetition; every
figure is the median of --runs repetitions (5). Before the first repetition
each contender carries one short producer run and one short consumer run,
not counted (the JVM proxy's JIT, the connections' first use). Proxy CPU: the
proxy's utime+stime from /proc/PID/stat over the runs, per GB of record
values moved (the tool's own count of what it produced or consumed).

Writes OUT/kafka-latest.md (tables, machine, configurations),
OUT/kafka-latest.json (every run) and gnuplot charts OUT/kafka_*.png. --quick
is a smoke run (tiny counts, one repetition, about two minutes) that writes to
BUILD/bench-kafka-quick unless --out says otherwise: its figures mean
nothing. The processes, the waits and the proxies' configurations come from
bench/run (loaded as a module); every wait is bounded and every process this
script starts it also stops.
"""
import argparse
import base64
import datetime
import glob
import importlib.util
import json
import os
import re
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import types
from importlib.machinery import SourceFileLoader

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _load_bench_run():
    """bench/run (a script without .py) as a module: its processes, waits,
    proxy configurations, machine facts and chart helpers."""
    path = os.path.join(REPO, "bench", "run")
    loader = SourceFileLoader("kstretch_bench_run", path)
    spec = importlib.util.spec_from_loader(loader.name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


br = _load_bench_run()
HOST = br.HOST
BenchError = br.BenchError
median = br.median
fmt, fmt_int = br.fmt, br.fmt_int

CACHE = os.environ.get("KSTRETCH_CACHE") or os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "kstretch")
KAFKA_VERSION = "4.4.0"
KAFKA_LIBS = os.environ.get("KSTRETCH_KAFKA_LIBS") or os.path.join(CACHE, f"kafka-{KAFKA_VERSION}", "libs")
KROXYLICIOUS_DIR = os.environ.get("KSTRETCH_KROXYLICIOUS") or os.path.join(CACHE, "kroxylicious")

NODE_ID = 1
SIZES = (1024, 100)
ACKS = ("1", "all")
MB = 1024 * 1024  # the tools' MB

FULL = dict(
    runs=5,
    # About 5-10 s per run on a 2-core machine the broker, the client and
    # the proxy share (direct: ~100,000 records/s of 1 KiB and ~500,000 of
    # 100 B produced, ~400 MB/s and ~1.4M records/s consumed).
    producer_records={1024: 800_000, 100: 4_000_000},
    consumer_records={1024: 2_000_000, 100: 8_000_000},
    warmup_records={1024: 50_000, 100: 150_000},
    partitions=4,
    tool_timeout=600,
)
QUICK = dict(
    runs=1,
    producer_records={1024: 20_000, 100: 50_000},
    consumer_records={1024: 20_000, 100: 50_000},
    warmup_records=None,  # no warm-up runs: a smoke run proves the machinery only
    partitions=4,
    tool_timeout=120,
)


def log(msg):
    print(f"kafka-bench: {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- the tools' output

# kafka-producer-perf-test's lines (ProducerPerformance's printf formats): a
# window line every --reporting-interval, then the total line, and with
# --warmup-records a second total line for the steady state.
PRODUCER_WINDOW_RE = re.compile(
    r"^(?P<records>\d+) records sent, (?P<rps>\d+(?:\.\d+)?) records/sec \((?P<mbps>\d+(?:\.\d+)?) MB/sec\), "
    r"(?P<avg>\d+(?:\.\d+)?) ms avg latency, (?P<max>\d+(?:\.\d+)?) ms max latency\.$")
PRODUCER_TOTAL_RE = re.compile(
    r"^(?P<records>\d+)(?P<steady> steady state)? records sent, (?P<rps>\d+(?:\.\d+)?) records/sec "
    r"\((?P<mbps>\d+(?:\.\d+)?) MB/sec\), (?P<avg>\d+(?:\.\d+)?) ms avg latency, (?P<max>\d+(?:\.\d+)?) ms max "
    r"latency, (?P<p50>\d+) ms 50th, (?P<p95>\d+) ms 95th, (?P<p99>\d+) ms 99th, (?P<p999>\d+) ms 99\.9th\.$")
# kafka-consumer-perf-test's header; the summary line under it has one value per name.
CONSUMER_HEADER = ("start.time", "end.time", "data.consumed.in.MB", "MB.sec", "data.consumed.in.nMsg", "nMsg.sec",
                   "rebalance.time.ms", "fetch.time.ms", "fetch.MB.sec", "fetch.nMsg.sec")


def _producer_total(m):
    return {"records": int(m["records"]), "records_per_sec": float(m["rps"]), "mb_per_sec": float(m["mbps"]),
            "avg_ms": float(m["avg"]), "max_ms": float(m["max"]), "p50_ms": int(m["p50"]),
            "p95_ms": int(m["p95"]), "p99_ms": int(m["p99"]), "p999_ms": int(m["p999"])}


def parse_producer_output(text):
    """kafka-producer-perf-test's stdout -> the total line's figures, plus
    "windows" (the interval lines) and "steady_state" (the --warmup-records
    total, or None). Other lines (metrics, warnings) are left alone. Raises
    ValueError without exactly one total line."""
    result, steady, windows = None, None, []
    for line in text.splitlines():
        line = line.strip()
        m = PRODUCER_TOTAL_RE.match(line)
        if m:
            if m["steady"]:
                if steady is not None:
                    raise ValueError(f"two steady-state total lines: {line!r}")
                steady = _producer_total(m)
            else:
                if result is not None:
                    raise ValueError(f"two total lines: {line!r}")
                result = _producer_total(m)
            continue
        m = PRODUCER_WINDOW_RE.match(line)
        if m:
            windows.append({"records": int(m["records"]), "records_per_sec": float(m["rps"]),
                            "mb_per_sec": float(m["mbps"]), "avg_ms": float(m["avg"]), "max_ms": float(m["max"])})
    if result is None:
        raise ValueError(f"no total line in kafka-producer-perf-test's output: {text[-600:]!r}")
    result["windows"] = windows
    result["steady_state"] = steady
    return result


def parse_consumer_output(text):
    """kafka-consumer-perf-test's stdout -> the summary line's values by the
    header's names (mb, mb_per_sec, messages, messages_per_sec,
    rebalance_ms, fetch_ms, fetch_mb_per_sec, fetch_messages_per_sec, start,
    end) and "warnings" (lines starting with WARNING, such as a timeout before
    all records came). Raises ValueError without a header and summary line."""
    lines = [line.strip() for line in text.splitlines()]
    warnings = [line for line in lines if line.startswith("WARNING")]
    for i, line in enumerate(lines):
        names = tuple(n.strip() for n in line.split(","))
        if names != CONSUMER_HEADER:
            continue
        if i + 1 >= len(lines):
            break
        values = [v.strip() for v in lines[i + 1].split(",")]
        if len(values) != len(CONSUMER_HEADER):
            raise ValueError(f"summary line has {len(values)} fields, the header {len(CONSUMER_HEADER)}: "
                             f"{lines[i + 1]!r}")
        v = dict(zip(CONSUMER_HEADER, values))
        try:
            return {"start": v["start.time"], "end": v["end.time"], "mb": float(v["data.consumed.in.MB"]),
                    "mb_per_sec": float(v["MB.sec"]), "messages": int(v["data.consumed.in.nMsg"]),
                    "messages_per_sec": float(v["nMsg.sec"]), "rebalance_ms": int(v["rebalance.time.ms"]),
                    "fetch_ms": int(v["fetch.time.ms"]), "fetch_mb_per_sec": float(v["fetch.MB.sec"]),
                    "fetch_messages_per_sec": float(v["fetch.nMsg.sec"]), "warnings": warnings}
        except ValueError as e:
            raise ValueError(f"summary line does not parse ({e}): {lines[i + 1]!r}") from None
    raise ValueError(f"no header and summary line in kafka-consumer-perf-test's output: {text[-600:]!r}")


# ---------------------------------------------------------------- Apache Kafka's tools

class JavaTools:
    """ProducerPerformance and ConsumerPerformance as bin/kafka-producer-perf-test.sh
    and bin/kafka-consumer-perf-test.sh run them: those scripts set
    KAFKA_HEAP_OPTS to -Xmx512M unless it is set, then kafka-run-class.sh
    execs `java $KAFKA_HEAP_OPTS $KAFKA_JVM_PERFORMANCE_OPTS $KAFKA_JMX_OPTS
    $KAFKA_LOG4J_OPTS -cp CLASSPATH $KAFKA_OPTS CLASS ARGS` with its defaults
    for the unset ones. The classpath is every jar of the distribution's
    libs (here: the same jars, resolved from Maven Central), and the log
    configuration says what config/tools-log4j2.yaml says: WARN and above,
    to stderr."""

    PERFORMANCE_OPTS = ("-server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 "
                        "-XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true")
    JMX_OPTS = ("-Dcom.sun.management.jmxremote -Dcom.sun.management.jmxremote.authenticate=false "
                "-Dcom.sun.management.jmxremote.ssl=false")
    PRODUCER = "org.apache.kafka.tools.ProducerPerformance"
    CONSUMER = "org.apache.kafka.tools.ConsumerPerformance"

    def __init__(self, libs, tmp, timeout):
        if not os.path.exists(os.path.join(libs, f"kafka-tools-{KAFKA_VERSION}.jar")):
            raise BenchError(f"Apache Kafka {KAFKA_VERSION} is missing from {libs} (run `make deps-kafka`)")
        self.libs, self.timeout = libs, timeout
        log4j = os.path.join(tmp, "tools-log4j2.properties")
        with open(log4j, "w") as f:
            f.write("appender.stderr.type = Console\nappender.stderr.name = STDERR\n"
                    "appender.stderr.target = SYSTEM_ERR\nappender.stderr.layout.type = PatternLayout\n"
                    "appender.stderr.layout.pattern = [%d] %p %m (%c)%n\n"
                    "rootLogger.level = WARN\nrootLogger.appenderRef.stderr.ref = STDERR\n")
        env = os.environ
        self.jvm = (["java"] + shlex.split(env.get("KAFKA_HEAP_OPTS") or "-Xmx512M") +
                    shlex.split(env.get("KAFKA_JVM_PERFORMANCE_OPTS") or self.PERFORMANCE_OPTS) +
                    shlex.split(env.get("KAFKA_JMX_OPTS") or self.JMX_OPTS) +
                    shlex.split(env.get("KAFKA_LOG4J_OPTS") or
                                f"-Dkafka.logs.dir={tmp} -Dlog4j2.configurationFile={log4j}") +
                    ["-cp", os.path.join(libs, "*")] + shlex.split(env.get("KAFKA_OPTS") or ""))

    def command_line(self, cls, args):
        return self.jvm + [cls] + args

    def _run(self, argv, what):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.monotonic()
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=self.timeout)
        except subprocess.TimeoutExpired as e:
            err = e.stderr.decode("utf-8", "replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
            raise BenchError(f"{what} did not finish within {self.timeout}s: {err[-800:]}") from None
        wall = time.monotonic() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        if r.returncode != 0:
            raise BenchError(f"{what} exited with {r.returncode}: {r.stderr.strip()[-1200:]}\n"
                             f"  command: {' '.join(argv)}")
        return r, wall, cpu

    def producer_args(self, bootstrap, topic, records, size, acks, config=None):
        # 4.4's options: --bootstrap-server, and --command-property for the
        # producer's settings (--producer-props, which also took
        # bootstrap.servers, is deprecated there).
        return ["--topic", topic, "--num-records", str(records), "--record-size", str(size), "--throughput", "-1",
                "--bootstrap-server", bootstrap, "--command-property", f"acks={acks}"] + \
            (["--command-config", config] if config else [])

    def produce(self, bootstrap, topic, records, size, acks, config=None):
        argv = self.command_line(self.PRODUCER, self.producer_args(bootstrap, topic, records, size, acks, config))
        r, wall, cpu = self._run(argv, f"kafka-producer-perf-test via {bootstrap}")
        try:
            result = parse_producer_output(r.stdout)
        except ValueError as e:
            raise BenchError(f"kafka-producer-perf-test via {bootstrap}: {e}\n  stderr: {r.stderr[-800:]}") from None
        if result["records"] != records:
            # ProducerPerformance counts a record when its send succeeded; a
            # failed one is printed (stack trace) and not counted.
            raise BenchError(f"kafka-producer-perf-test via {bootstrap}: {result['records']} of {records} records "
                             f"acknowledged\n  stderr: {r.stderr[-1200:]}")
        result.update(wall_s=wall, client_cpu_s=cpu, bytes=records * size)
        return result

    def consumer_args(self, bootstrap, topic, records, group, config=None):
        return ["--bootstrap-server", bootstrap, "--topic", topic, "--num-records", str(records), "--group", group,
                "--timeout", "30000"] + (["--command-config", config] if config else [])

    def consume(self, bootstrap, topic, records, group, config=None):
        argv = self.command_line(self.CONSUMER, self.consumer_args(bootstrap, topic, records, group, config))
        r, wall, cpu = self._run(argv, f"kafka-consumer-perf-test via {bootstrap}")
        try:
            result = parse_consumer_output(r.stdout)
        except ValueError as e:
            raise BenchError(f"kafka-consumer-perf-test via {bootstrap}: {e}\n  stderr: {r.stderr[-800:]}") from None
        if result["messages"] < records:
            raise BenchError(f"kafka-consumer-perf-test via {bootstrap}: {result['messages']} of {records} records "
                             f"consumed; {' '.join(result['warnings'])}")
        result.update(wall_s=wall, client_cpu_s=cpu, bytes=int(result["mb"] * MB))
        return result


# ---------------------------------------------------------------- the broker

def cluster_id():
    """A KRaft cluster id: 16 random bytes, URL-safe base64 without padding
    (what `kafka-storage random-uuid` prints; it never starts with '-')."""
    for _ in range(100):
        s = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
        if not s.startswith("-"):
            return s
    raise BenchError("no cluster id")


class KafkaBroker(br.Daemon):
    """One KRaft broker+controller with a listener per contender.

    listeners: {NAME: advertised (host, port) or None for itself}. The
    broker's own port of each listener is in .ports[NAME]."""

    def __init__(self, libs, tmp, listeners, partitions, used_ports):
        self.work = os.path.join(tmp, "kafka")
        os.makedirs(self.work)
        controller = br.free_port(avoid=used_ports)
        used_ports.add(controller)
        self.ports = {}
        for name in listeners:
            self.ports[name] = br.free_port(avoid=used_ports)
            used_ports.add(self.ports[name])
        names = list(listeners)
        advertised = []
        for name, adv in listeners.items():
            host, port = adv or (HOST, self.ports[name])
            advertised.append(f"{name}://{host}:{port}")
        props = [
            "process.roles=broker,controller",
            f"node.id={NODE_ID}",
            f"controller.quorum.bootstrap.servers={HOST}:{controller}",
            "listeners=" + ",".join([f"CONTROLLER://{HOST}:{controller}"] +
                                    [f"{n}://{HOST}:{self.ports[n]}" for n in names]),
            "advertised.listeners=" + ",".join(advertised),
            "listener.security.protocol.map=" + ",".join(f"{n}:PLAINTEXT" for n in ["CONTROLLER"] + names),
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=DIRECT",
            f"log.dirs={os.path.join(self.work, 'data')}",
            f"num.partitions={partitions}",
            "auto.create.topics.enable=true",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=4",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "share.coordinator.state.topic.replication.factor=1",
            "group.initial.rebalance.delay.ms=0",
            # The producer runs write GBs: keep at most ~1 GiB per partition on disk.
            "log.retention.bytes=1073741824",
            "log.segment.bytes=134217728",
            "log.retention.check.interval.ms=5000",
            "file.delete.delay.ms=1000",
        ]
        self.config = "\n".join(props) + "\n"
        self.properties = os.path.join(self.work, "server.properties")
        with open(self.properties, "w") as f:
            f.write(self.config)
        log4j = os.path.join(self.work, "log4j2.properties")
        with open(log4j, "w") as f:
            f.write("appender.stderr.type = Console\nappender.stderr.name = STDERR\n"
                    "appender.stderr.target = SYSTEM_ERR\nappender.stderr.layout.type = PatternLayout\n"
                    "appender.stderr.layout.pattern = [%d] %p %m (%c)%n\n"
                    "rootLogger.level = WARN\nrootLogger.appenderRef.stderr.ref = STDERR\n")
        cp = ["-cp", os.path.join(libs, "*")]
        fmt_argv = ["java", "-Xmx256m"] + cp + ["kafka.tools.StorageTool", "format", "--standalone", "-t",
                                               cluster_id(), "-c", self.properties]
        try:
            r = subprocess.run(fmt_argv, capture_output=True, text=True, timeout=120)
        except subprocess.TimeoutExpired:
            raise BenchError("kafka-storage format did not finish within 120 s") from None
        if r.returncode != 0:
            raise BenchError(f"kafka-storage format exited with {r.returncode}: {(r.stderr or r.stdout)[-800:]}")
        # kafka-server-start.sh's defaults, with a smaller heap for a 2-core machine.
        self.argv = (["java", "-Xmx1g", "-Xms1g"] + shlex.split(JavaTools.PERFORMANCE_OPTS) +
                     [f"-Dkafka.logs.dir={self.work}", f"-Dlog4j2.configurationFile={log4j}"] + cp +
                     ["kafka.Kafka", self.properties])
        super().__init__("kafka-broker", self.argv, tmp)

    def address(self, listener):
        return f"{HOST}:{self.ports[listener]}"

    def wait_ready(self, timeout=120):
        br.wait_port(self.ports["DIRECT"], self.proc, "the Kafka broker", timeout=timeout)

    def stop(self, grace=40):
        super().stop(grace)  # SIGTERM: a controlled shutdown, then SIGKILL after grace


# ---------------------------------------------------------------- Kroxylicious

def kroxylicious_install():
    """(classpath, version, None) when `make deps-kroxylicious` resolved it,
    else (None, None, why not)."""
    launcher = os.path.join(KROXYLICIOUS_DIR, "classes", "KroxyliciousLauncher.class")
    status = ""
    try:
        with open(os.path.join(KROXYLICIOUS_DIR, "status")) as f:
            status = f.read().strip()
    except OSError:
        pass
    runtime = glob.glob(os.path.join(KROXYLICIOUS_DIR, "libs", "kroxylicious-runtime-*.jar"))
    if not os.path.exists(launcher) or not runtime:
        why = status or f"{KROXYLICIOUS_DIR} does not exist: `make deps-kroxylicious` has not run"
        return None, None, why
    version = re.search(r"kroxylicious-runtime-(.+)\.jar$", runtime[0]).group(1)
    cp = os.path.join(KROXYLICIOUS_DIR, "classes") + ":" + os.path.join(KROXYLICIOUS_DIR, "libs", "*")
    return cp, version, None


def kroxylicious_app_note():
    """What `make deps-kroxylicious` found out about io.kroxylicious:kroxylicious-app."""
    try:
        with open(os.path.join(KROXYLICIOUS_DIR, "kroxylicious-app.txt")) as f:
            return f.read().strip()
    except OSError:
        return "not checked (`make deps-kroxylicious` has not run)"


def kroxylicious_config(bootstrap_port, node_port, upstream):
    # 0.12's format: a virtual cluster in front of the target cluster, one
    # gateway that maps brokers to ports (bootstrap on one port, node N on
    # nodeStartPort + N - start). No filters: pass-through.
    return ("virtualClusters:\n"
            "  - name: bench\n"
            "    targetCluster:\n"
            f"      bootstrapServers: {upstream}\n"
            "    gateways:\n"
            "      - name: plain\n"
            "        portIdentifiesNode:\n"
            f"          bootstrapAddress: {HOST}:{bootstrap_port}\n"
            f"          nodeStartPort: {node_port}\n"
            "          nodeIdRanges:\n"
            "            - name: brokers\n"
            f"              start: {NODE_ID}\n"
            f"              end: {NODE_ID}\n")


def start_kroxylicious(cp, tmp, bootstrap_port, node_port, upstream, log4j):
    cfg = kroxylicious_config(bootstrap_port, node_port, upstream)
    path = os.path.join(tmp, "kroxylicious.yaml")
    with open(path, "w") as f:
        f.write(cfg)
    argv = ["java", "-Xmx512m", "-XX:+ExitOnOutOfMemoryError", f"-Dlog4j2.configurationFile={log4j}", "-cp", cp,
            "KroxyliciousLauncher", path]
    d = br.Daemon("kroxylicious", argv, tmp)
    br.wait_port(bootstrap_port, d.proc, "Kroxylicious", timeout=60)
    br.wait_port(node_port, d.proc, "Kroxylicious", timeout=30)
    d.argv = argv
    return d, cfg


# ---------------------------------------------------------------- contenders

class Contender:
    def __init__(self, name, label, address, daemon=None, optional=False, config=None):
        self.name, self.label, self.address, self.daemon = name, label, address, daemon
        self.config = config  # the client's --command-config file (TLS), or None
        self.consumer_only = name in CONSUMER_ONLY
        self.optional = optional  # a failure drops this contender (reported) instead of ending the run
        self.failed = None

    def cpu(self):
        return br.cpu_seconds(self.daemon.pids()) if self.daemon else 0.0


CONTENDER_NAMES = ("direct", "kstretch", "kstretch-held", "haproxy", "haproxy-splice", "nginx", "kroxylicious",
                   "kstretch-tls", "haproxy-tls")
TLS_CONTENDERS = ("kstretch-tls", "haproxy-tls")
LABELS = {"direct": "direct", "kstretch": "kstretch", "kstretch-held": "kstretch, Fetch held",
          "haproxy": "HAProxy", "haproxy-splice": "HAProxy splice", "nginx": "nginx stream",
          "kroxylicious": "Kroxylicious", "kstretch-tls": "kstretch TLS", "haproxy-tls": "HAProxy TLS"}
# The one TLS 1.3 suite both TLS contenders offer (so both do the same cryptography).
TLS_CIPHER = "TLS_AES_256_GCM_SHA384"
# Contenders of the consumer runs only (the producer's path is the same as kstretch's).
CONSUMER_ONLY = ("kstretch-held",)
# The broker listener in front of which each L4 proxy stands.
L4_LISTENERS = {"haproxy": "HAPROXY", "haproxy-splice": "HAPROXY_SPLICE", "nginx": "NGINX", "haproxy-tls": "HAPROXY_TLS"}


def make_tls(tmp):
    """The test CA and server certificate (tests/integration/certs.py), HAProxy's
    certificate+key file, and the Java tools' client properties (trusting the CA)."""
    loader = SourceFileLoader("kstretch_certs", os.path.join(REPO, "tests", "integration", "certs.py"))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    certs = importlib.util.module_from_spec(spec)
    loader.exec_module(certs)
    c = certs.make(os.path.join(tmp, "certs"))
    combined = os.path.join(tmp, "certs", "haproxy.pem")
    with open(combined, "w") as out:
        for part in (c.server_cert, c.server_key):
            with open(part) as f:
                out.write(f.read())
    client = os.path.join(tmp, "certs", "client-ssl.properties")
    with open(client, "w") as f:
        f.write(f"security.protocol=SSL\nssl.truststore.location={c.truststore_p12}\n"
                f"ssl.truststore.password={certs.PASSWORD}\nssl.truststore.type=PKCS12\n")
    return types.SimpleNamespace(certs=c, haproxy_pem=combined, client_config=client)


def haproxy_tls_config(port, upstream, workers, pem):
    return "\n".join(["global", f"  nbthread {workers}", "  maxconn 4000",
                      f"  ssl-default-bind-ciphersuites {TLS_CIPHER}", "  ssl-default-bind-options ssl-min-ver TLSv1.3",
                      "defaults", "  mode tcp", "  timeout connect 5s", "  timeout client 120s",
                      "  timeout server 120s", "listen kafka", f"  bind {HOST}:{port} ssl crt {pem}",
                      f"  server broker {upstream}"]) + "\n"


def start_everything(args, build, tmp, p, meta, daemons, wanted):
    """The broker, then each proxy; returns (broker, [Contender])."""
    used = set()
    proxy_ports = {}
    listeners = {"DIRECT": None}
    for name, listener in L4_LISTENERS.items():
        if name in wanted:
            proxy_ports[name] = br.free_port(avoid=used)
            used.add(proxy_ports[name])
            listeners[listener] = (HOST, proxy_ports[name])
    kroxy_cp = None
    if "kroxylicious" in wanted:
        kroxy_cp, version, why = kroxylicious_install()
        if kroxy_cp:
            listeners["KROXY"] = None  # advertised as itself: Kroxylicious rewrites the addresses
            meta["kroxylicious"] = {"status": "run", "version": version, "app": kroxylicious_app_note()}
        else:
            meta["kroxylicious"] = {"status": "not run", "why": why, "app": kroxylicious_app_note()}
            log(f"Kroxylicious is not run: {why}")
    broker = KafkaBroker(KAFKA_LIBS, tmp, listeners, p["partitions"], used)
    daemons.append(broker)
    meta["configs"].append(("Kafka broker (server.properties)", broker.config))
    meta["configs"].append(("Kafka broker (command)", " ".join(broker.argv)))

    contenders = [Contender("direct", LABELS["direct"], broker.address("DIRECT"))]
    tls = make_tls(tmp) if wanted & set(TLS_CONTENDERS) else None
    upstream = types.SimpleNamespace(address=broker.address("DIRECT"), info={"brokers": [{"id": NODE_ID}]})
    if "kstretch" in wanted:
        kst = br.start_kstretch(build, tmp, upstream, args.workers)
        daemons.append(kst)
        contenders.append(Contender("kstretch", LABELS["kstretch"], f"{HOST}:{kst.listen}", kst))
        meta["configs"].append(("kstretch", " ".join(kst.argv)))
    if "kstretch-held" in wanted:
        kst = br.start_kstretch(build, tmp, upstream, args.workers, name="kstretch-held",
                                extra=("--fetch-cut-through", "false"))
        daemons.append(kst)
        contenders.append(Contender("kstretch-held", LABELS["kstretch-held"], f"{HOST}:{kst.listen}", kst))
        meta["configs"].append((LABELS["kstretch-held"], " ".join(kst.argv)))
    if "kstretch-tls" in wanted:
        kst = br.start_kstretch(build, tmp, upstream, args.workers, name="kstretch-tls",
                                extra=("--tls-cert", tls.certs.server_cert, "--tls-key", tls.certs.server_key,
                                       "--tls-protocols", "TLSv1.3", "--tls-ciphers", TLS_CIPHER))
        daemons.append(kst)
        contenders.append(Contender("kstretch-tls", LABELS["kstretch-tls"], f"{HOST}:{kst.listen}", kst,
                                    config=tls.client_config))
        meta["configs"].append((LABELS["kstretch-tls"], " ".join(kst.argv)))
    if "haproxy-tls" in wanted:
        port = proxy_ports["haproxy-tls"]
        cfg = haproxy_tls_config(port, broker.address(L4_LISTENERS["haproxy-tls"]), args.workers, tls.haproxy_pem)
        path = os.path.join(tmp, "haproxy-tls.cfg")
        with open(path, "w") as f:
            f.write(cfg)
        d = br.Daemon("haproxy-tls", ["haproxy", "-f", path, "-db"], tmp)
        daemons.append(d)
        br.wait_port(port, d.proc, "haproxy-tls")
        contenders.append(Contender("haproxy-tls", LABELS["haproxy-tls"], f"{HOST}:{port}", d, config=tls.client_config))
        meta["configs"].append((f"{LABELS['haproxy-tls']} (haproxy -f haproxy-tls.cfg -db)", cfg))
    if tls:
        meta["configs"].append(("Java tools over TLS (--command-config)", open(tls.client_config).read()))
    for splice, name in ((False, "haproxy"), (True, "haproxy-splice")):
        if name not in wanted:
            continue
        port = proxy_ports[name]
        cfg = br.haproxy_config(port, broker.address(L4_LISTENERS[name]), args.workers, splice)
        path = os.path.join(tmp, f"{name}.cfg")
        with open(path, "w") as f:
            f.write(cfg)
        d = br.Daemon(name, ["haproxy", "-f", path, "-db"], tmp)
        daemons.append(d)
        br.wait_port(port, d.proc, name)
        contenders.append(Contender(name, LABELS[name], f"{HOST}:{port}", d))
        meta["configs"].append((f"{LABELS[name]} (haproxy -f {name}.cfg -db)", cfg))
    if "nginx" in wanted:
        port = proxy_ports["nginx"]
        prefix = os.path.join(tmp, "nginx")
        os.makedirs(prefix, exist_ok=True)
        cfg = br.nginx_config(prefix, port, broker.address("NGINX"), args.workers)
        path = os.path.join(prefix, "nginx.conf")
        with open(path, "w") as f:
            f.write(cfg)
        d = br.Daemon("nginx", ["nginx", "-p", prefix, "-c", path, "-e", os.path.join(prefix, "nginx-error.log")],
                      tmp)
        daemons.append(d)
        br.wait_port(port, d.proc, "nginx")
        contenders.append(Contender("nginx", LABELS["nginx"], f"{HOST}:{port}", d))
        meta["configs"].append(("nginx stream (nginx -p PREFIX -c nginx.conf)", cfg))
    if kroxy_cp:
        bport = br.free_port(avoid=used)
        used.add(bport)
        nport = br.free_port(avoid=used)
        used.add(nport)
        try:
            kx, cfg = start_kroxylicious(kroxy_cp, tmp, bport, nport, broker.address("KROXY"),
                                         os.path.join(broker.work, "log4j2.properties"))
        except BenchError as e:
            meta["kroxylicious"].update(status="failed", why=f"did not start: {e}")
            log(f"Kroxylicious did not start: {e}")
        else:
            daemons.append(kx)
            contenders.append(Contender("kroxylicious", LABELS["kroxylicious"], f"{HOST}:{bport}", kx,
                                        optional=True))
            meta["configs"].append((f"Kroxylicious {meta['kroxylicious']['version']} (kroxylicious.yaml)", cfg))
            meta["configs"].append(("Kroxylicious (command)", " ".join(kx.argv)))
    broker.wait_ready()
    return broker, contenders


# ---------------------------------------------------------------- runs

def rotated(contenders, rep):
    live = [c for c in contenders if not c.failed]
    if not live:
        return []
    k = rep % len(live)
    return live[k:] + live[:k]


def attempt(c, what, fn):
    """fn(); a failure of an optional contender drops it (the report says why)."""
    try:
        return fn()
    except BenchError as e:
        if not c.optional:
            raise
        c.failed = f"{what}: {e}"
        log(f"{c.label} dropped after a failure ({what}): {e}")
        return None


def topic_name(size, acks):
    return f"perf-{size}-acks-{acks}"


def fill_consumer_topics(tools, broker, p):
    for size in SIZES:
        n = p["consumer_records"][size]
        r = tools.produce(broker.address("DIRECT"), f"consume-{size}", n, size, "1")
        log(f"filled consume-{size} with {r['records']:,} records of {size} B ({r['records_per_sec']:,.0f} records/s)")


def warm_up(tools, broker, contenders, p, consumer_only=False):
    """One short producer run and one short consumer run per contender, not counted."""
    if not p["warmup_records"]:
        # Still create the topics (auto-creation) before any timed run.
        for size in SIZES:
            for acks in ACKS:
                tools.produce(broker.address("DIRECT"), topic_name(size, acks), 100, size, acks)
        return
    for c in contenders:
        n = p["warmup_records"][1024]
        for acks in ACKS if not (c.consumer_only or consumer_only) else ():
            attempt(c, "warm-up", lambda: tools.produce(c.address, topic_name(1024, acks), n, 1024, acks, c.config))
        if c.failed:
            continue
        attempt(c, "warm-up", lambda: tools.consume(c.address, "consume-1024", n, f"warmup-{c.name}-{os.getpid()}",
                                                    c.config))
        for acks in ACKS if not (c.consumer_only or consumer_only) else ():
            if not c.failed:
                attempt(c, "warm-up", lambda: tools.produce(c.address, topic_name(100, acks),
                                                            p["warmup_records"][100], 100, acks, c.config))
        log(f"warmed up {c.label}" + (f" (dropped: {c.failed})" if c.failed else ""))


def run_producer(tools, broker, contenders, p, rep, data):
    for size in SIZES:
        for acks in ACKS:
            key = f"{size}/{acks}"
            n = p["producer_records"][size]
            for c in rotated(contenders, rep):
                if c.consumer_only:
                    continue
                before, broker_before = c.cpu(), br.cpu_seconds([broker.pid])
                r = attempt(c, f"producer {key} run {rep + 1}",
                            lambda: tools.produce(c.address, topic_name(size, acks), n, size, acks, c.config))
                if r is None:
                    continue
                r["proxy_cpu_s"] = c.cpu() - before if c.daemon else None
                r["broker_cpu_s"] = br.cpu_seconds([broker.pid]) - broker_before
                data["producer"][key].setdefault(c.name, []).append(r)
                log(f"producer {key:8} run {rep + 1} {c.name:14} {r['records_per_sec']:>10,.0f} records/s "
                    f"{r['mb_per_sec']:>7.2f} MB/s  p99 {r['p99_ms']} ms" +
                    (f"  proxy {r['proxy_cpu_s']:.2f} CPU s" if c.daemon else ""))


def run_consumer(tools, broker, contenders, p, rep, data):
    for size in SIZES:
        key = str(size)
        n = p["consumer_records"][size]
        for c in rotated(contenders, rep):
            group = f"bench-{c.name}-{size}-{rep}-{os.getpid()}"
            before, broker_before = c.cpu(), br.cpu_seconds([broker.pid])
            r = attempt(c, f"consumer {size} B run {rep + 1}",
                        lambda: tools.consume(c.address, f"consume-{size}", n, group, c.config))
            if r is None:
                continue
            r["proxy_cpu_s"] = c.cpu() - before if c.daemon else None
            r["broker_cpu_s"] = br.cpu_seconds([broker.pid]) - broker_before
            data["consumer"][key].setdefault(c.name, []).append(r)
            log(f"consumer {size:>4} B run {rep + 1} {c.name:14} {r['fetch_mb_per_sec']:>8.1f} MB/s while fetching "
                f"({r['mb_per_sec']:.1f} overall, rebalance {r['rebalance_ms']} ms)" +
                (f"  proxy {r['proxy_cpu_s']:.2f} CPU s" if c.daemon else ""))


# ---------------------------------------------------------------- summaries

def cpu_per_gb(runs):
    """Proxy CPU seconds per GB (1e9 B) of record values, CPU and bytes summed
    over the runs (/proc counts in 10 ms ticks: too coarse run by run)."""
    if not runs or runs[0]["proxy_cpu_s"] is None:
        return None
    gb = sum(r["bytes"] for r in runs) / 1e9
    return sum(r["proxy_cpu_s"] for r in runs) / gb if gb else None


def spread(values):
    """(max - min) / median, in percent."""
    m = median(values)
    return (max(values) - min(values)) / m * 100 if m else None


def summarize(data, names):
    s = {"producer": {}, "consumer": {}}
    for key, per in data["producer"].items():
        if not per:  # --consumer-only
            continue
        base = median([r["records_per_sec"] for r in per.get("direct", [])])
        s["producer"][key] = {}
        for n in names:
            rs = per.get(n)
            if not rs:
                continue
            rps = median([r["records_per_sec"] for r in rs])
            s["producer"][key][n] = {
                "runs": len(rs), "records_per_sec": rps, "ratio": rps / base if base else None,
                "mb_per_sec": median([r["mb_per_sec"] for r in rs]), "avg_ms": median([r["avg_ms"] for r in rs]),
                "p50_ms": median([r["p50_ms"] for r in rs]), "p99_ms": median([r["p99_ms"] for r in rs]),
                "p999_ms": median([r["p999_ms"] for r in rs]), "max_ms": median([r["max_ms"] for r in rs]),
                "spread_pct": spread([r["records_per_sec"] for r in rs]), "proxy_cpu_s_per_gb": cpu_per_gb(rs),
                "broker_cpu_s_per_gb": sum(r["broker_cpu_s"] for r in rs) / (sum(r["bytes"] for r in rs) / 1e9)}
    for key, per in data["consumer"].items():
        base = median([r["fetch_mb_per_sec"] for r in per.get("direct", [])])
        s["consumer"][key] = {}
        for n in names:
            rs = per.get(n)
            if not rs:
                continue
            m = median([r["fetch_mb_per_sec"] for r in rs])
            s["consumer"][key][n] = {
                "runs": len(rs), "fetch_mb_per_sec": m, "ratio": m / base if base else None,
                "fetch_messages_per_sec": median([r["fetch_messages_per_sec"] for r in rs]),
                "mb_per_sec": median([r["mb_per_sec"] for r in rs]),
                "messages_per_sec": median([r["messages_per_sec"] for r in rs]),
                "rebalance_ms": median([r["rebalance_ms"] for r in rs]),
                "spread_pct": spread([r["fetch_mb_per_sec"] for r in rs]), "proxy_cpu_s_per_gb": cpu_per_gb(rs),
                "broker_cpu_s_per_gb": sum(r["broker_cpu_s"] for r in rs) / (sum(r["bytes"] for r in rs) / 1e9)}
    return s


# ---------------------------------------------------------------- report

def producer_matrix(s, names):
    lines = ["| records | acks | " + " | ".join(f"{LABELS[n]} records/s (ratio)" for n in names) + " |",
             "|---|---|" + "---:|" * len(names)]
    for key, per in s["producer"].items():
        size, acks = key.split("/")
        cells = []
        for n in names:
            v = per.get(n)
            cells.append(f"{fmt_int(v['records_per_sec'])} ({v['ratio']:.2f})" if v else "-")
        lines.append(f"| {size} B | {acks} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def producer_cpu_matrix(s, names):
    proxies = [n for n in names if n != "direct"]
    lines = ["| records | acks | " + " | ".join(LABELS[n] for n in proxies) + " |",
             "|---|---|" + "---:|" * len(proxies)]
    for key, per in s["producer"].items():
        size, acks = key.split("/")
        lines.append(f"| {size} B | {acks} | " +
                     " | ".join(fmt(per[n]["proxy_cpu_s_per_gb"]) if n in per else "-" for n in proxies) + " |")
    return "\n".join(lines)


def producer_detail(s, names):
    lines = ["| records | acks | contender | records/s | MB/s | ratio of direct | spread of runs | avg ms | p50 ms | "
             "p99 ms | p99.9 ms | max ms | proxy CPU s/GB | broker CPU s/GB |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for key, per in s["producer"].items():
        size, acks = key.split("/")
        for n in names:
            v = per.get(n)
            if not v:
                continue
            lines.append(f"| {size} B | {acks} | {LABELS[n]} | {fmt_int(v['records_per_sec'])} | "
                         f"{v['mb_per_sec']:.2f} | {v['ratio']:.2f} | {v['spread_pct']:.0f}% | {v['avg_ms']:.1f} | "
                         f"{v['p50_ms']:.0f} | {v['p99_ms']:.0f} | {v['p999_ms']:.0f} | {v['max_ms']:.0f} | "
                         f"{fmt(v['proxy_cpu_s_per_gb'])} | {fmt(v['broker_cpu_s_per_gb'])} |")
    return "\n".join(lines)


def consumer_table(s, names):
    lines = ["| records | contender | MB/s while fetching | ratio of direct | records/s while fetching | "
             "MB/s overall | rebalance ms | spread of runs | proxy CPU s/GB | broker CPU s/GB |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for key, per in s["consumer"].items():
        for n in names:
            v = per.get(n)
            if not v:
                continue
            lines.append(f"| {key} B | {LABELS[n]} | {v['fetch_mb_per_sec']:.1f} | {v['ratio']:.2f} | "
                         f"{fmt_int(v['fetch_messages_per_sec'])} | {v['mb_per_sec']:.1f} | "
                         f"{fmt_int(v['rebalance_ms'])} | {v['spread_pct']:.0f}% | {fmt(v['proxy_cpu_s_per_gb'])} | "
                         f"{fmt(v['broker_cpu_s_per_gb'])} |")
    return "\n".join(lines)


def kroxylicious_sentence(meta):
    k = meta.get("kroxylicious")
    if not k:
        return "Kroxylicious: not asked for (--contenders / --no-kroxylicious)."
    app = f"io.kroxylicious:kroxylicious-app on Maven Central: {k['app']}."
    if k["status"] == "run":
        return (f"Kroxylicious {k['version']}: io.kroxylicious:kroxylicious-runtime from Maven Central, started from "
                "its configuration by bench/kroxylicious/KroxyliciousLauncher.java as the `kroxylicious` command "
                f"would start it; pass-through (no filters). {app}")
    return f"Kroxylicious: **{k['status']}** — {k['why']}. {app}"


def write_charts(out, tmp, s, names):
    if not shutil.which("gnuplot"):
        log("gnuplot is not installed (make bench-deps): no charts")
        return []
    charts = []
    cnames = names  # consumer charts: every contender
    names = [n for n in names if n not in CONSUMER_ONLY]  # producer and CPU charts
    proxies = [n for n in names if n != "direct"]
    keys = list(s["producer"])
    if keys:  # none with --consumer-only
        rows = [[f"{k.split('/')[0]} B acks={k.split('/')[1]}"] +
                [s["producer"][k][n]["ratio"] if n in s["producer"][k] else 0 for n in names] for k in keys]
        path = br.chart_data(tmp, "kafka_producer.dat", ["config"] + [LABELS[n] for n in names], rows)
        charts.append(br.bar_chart(out, "kafka_producer_throughput.png",
                                   "kafka-producer-perf-test, unthrottled: records/s as a ratio of direct",
                                   "ratio of direct", path, len(names) + 1))
        rows = [[f"{k.split('/')[0]} B acks={k.split('/')[1]}"] +
                [s["producer"][k][n]["p99_ms"] if n in s["producer"][k] else 0 for n in names] for k in keys]
        path = br.chart_data(tmp, "kafka_producer_p99.dat", ["config"] + [LABELS[n] for n in names], rows)
        charts.append(br.bar_chart(out, "kafka_producer_latency.png",
                                   "kafka-producer-perf-test, unthrottled: p99 latency per record", "ms", path,
                                   len(names) + 1))
    if proxies:
        short = {"1024": "1 KiB", "100": "100 B"}
        rows = [[f"{short[k.split('/')[0]]}/{k.split('/')[1]}"] +
                [s["producer"][k][n]["proxy_cpu_s_per_gb"] or 0 if n in s["producer"][k] else 0 for n in proxies]
                for k in keys]
        rows += [[f"read {short[k]}"] +
                 [s["consumer"][k][n]["proxy_cpu_s_per_gb"] or 0 if n in s["consumer"][k] else 0 for n in proxies]
                 for k in s["consumer"]]
        path = br.chart_data(tmp, "kafka_cpu.dat", ["load"] + [LABELS[n] for n in proxies], rows)
        charts.append(br.bar_chart(out, "kafka_proxy_cpu.png",
                                   "proxy CPU s per GB of records, produced (size/acks) and read; lower is better",
                                   "CPU s / GB", path, len(proxies) + 1))
    rows = [[f"{k} B records"] + [s["consumer"][k][n]["fetch_mb_per_sec"] if n in s["consumer"][k] else 0
                                  for n in cnames] for k in s["consumer"]]
    path = br.chart_data(tmp, "kafka_consumer.dat", ["records"] + [LABELS[n] for n in cnames], rows)
    charts.append(br.bar_chart(out, "kafka_consumer_throughput.png",
                               "kafka-consumer-perf-test: MB/s while fetching", "MB/s", path, len(cnames) + 1))
    return charts


def report(out, s, names, meta, p, charts):
    md = ["# kstretch real-Kafka benchmark: Apache Kafka's perf tools through each proxy\n"]
    if meta.get("quick"):
        md.append("**QUICK SMOKE RUN (`--quick`): tiny counts and one repetition; these figures mean nothing.**\n")
    m, v = meta["machine"], meta["versions"]
    md.append(f"Command: `{meta['command']}` — {meta['date']}, git {v['git']}, {meta['duration_s']:.0f} s in all; "
              f"medians of {meta['runs']} interleaved repetitions; {meta['workers']} worker(s) for kstretch, "
              "HAProxy and nginx.\n")
    md.append("## Machine\n")
    md.append("| | |\n|---|---|")
    md.append(f"| cores | {m['cores']} ({m['cpu']}) |\n| memory | {m['memory']} |\n| kernel | {m['kernel']} |\n"
              f"| OS | {m['os']} |\n| load average at start / end | {meta['load_start']} / {meta['load_end']} |\n"
              f"| Apache Kafka | {KAFKA_VERSION} (broker, kafka-producer-perf-test, kafka-consumer-perf-test) |\n"
              f"| Java | {meta['java']} |\n| kstretch | {v['kstretch']} (git {v['git']}) |\n"
              f"| HAProxy | {v['haproxy']} |\n| nginx | {v['nginx']} (stream module) |\n"
              f"| Kroxylicious | {meta.get('kroxylicious', {}).get('version') or 'not run'} |\n"
              f"| gnuplot | {v['gnuplot']} |\n")
    md.append("One Apache Kafka broker (KRaft, broker and controller in one JVM, `-Xmx1g`), "
              f"{p['partitions']} partitions per topic, replication factor 1, everything on 127.0.0.1. The broker "
              "has a listener per L4 proxy, advertised with that proxy's address, so a client given only the "
              "proxy's address is sent back to it; kstretch (mapped mode) and Kroxylicious bootstrap from the "
              "broker and rewrite its address themselves. The client, the broker and the proxy share the cores: "
              "a CPU second the proxy spends is taken from the other two. Contenders are interleaved (their "
              "order rotated each repetition) so that other load on the machine falls on all of them.\n")
    md.append(kroxylicious_sentence(meta) + "\n")
    for name, why in meta.get("dropped", {}).items():
        md.append(f"**{LABELS[name]} was dropped after a failure** ({why[:600]}); its rows hold the runs before.\n")
    md.append("The tools, as `kafka-producer-perf-test.sh` / `kafka-consumer-perf-test.sh` run them "
              "(kafka-run-class.sh's java command line):\n")
    md.append("```\n" + "\n".join(meta["tool_commands"]) + "\n```\n")
    wr = p["warmup_records"]
    if wr:
        wr = {int(k): v for k, v in wr.items()}
    md.append("## 1. kafka-producer-perf-test, unthrottled\n")
    md.append(f"N = {p['producer_records'][1024]:,} records of 1 KiB or {p['producer_records'][100]:,} of 100 B, "
              "`--throughput -1`, the producer's defaults otherwise (batch.size 16 KiB, linger.ms 5), a topic "
              "per record size and acks. Records/s is the tool's own figure (records acknowledged over the run); "
              "the ratio is to direct in the same run. " +
              (f"Each contender first carried {wr[1024]:,} + {wr[100]:,} records per acks, not counted. " if wr else
               "") + "\n")
    pnames = [n for n in names if n not in CONSUMER_ONLY]
    md.append(producer_matrix(s, pnames) + "\n")
    md.append("Proxy CPU seconds per GB of record values produced (utime+stime of the proxy over the runs):\n")
    md.append(producer_cpu_matrix(s, pnames) + "\n")
    md.append("Each contender in detail (medians; latency is the tool's, per record from send() to "
              "acknowledgement, so it includes the time a record waits in the producer's buffer when the run is "
              "unthrottled; spread = (max - min) / median of records/s over the runs):\n")
    md.append(producer_detail(s, pnames) + "\n")
    md.append("## 2. kafka-consumer-perf-test\n")
    md.append(f"N = {p['consumer_records'][1024]:,} records of 1 KiB or {p['consumer_records'][100]:,} of 100 B "
              "from the beginning of a topic filled once beforehand (through direct), a new group each run. "
              "\"While fetching\" is the tool's fetch.MB.sec / fetch.nMsg.sec (the group join left out); "
              "\"overall\" its MB.sec, from start to end.\n")
    md.append(consumer_table(s, names) + "\n")
    if charts:
        md.append("## Charts\n")
        for c in charts:
            md.append(f"![{c[:-4]}]({c})")
        md.append("")
    md.append("## How each part was run\n")
    for name, cfg in meta["configs"]:
        md.append(f"{name}:\n\n```\n{cfg.strip()}\n```\n")
    with open(os.path.join(out, "kafka-latest.md"), "w") as f:
        f.write("\n".join(md))


def tool_commands(tools, tmp):
    """The two tools' command lines, for the report (TMP: the run's temporary folder)."""
    return [" ".join(tools.command_line(tools.PRODUCER, tools.producer_args("ADDRESS", "TOPIC", "N", "S", "A")))
            .replace(tmp, "TMP"),
            " ".join(tools.command_line(tools.CONSUMER, tools.consumer_args("ADDRESS", "TOPIC", "N", "GROUP")))
            .replace(tmp, "TMP")]


def report_again(out):
    """--report-only: kafka-latest.md and the charts from kafka-latest.json
    (after a change to the report or the charts; no run)."""
    path = os.path.join(out, "kafka-latest.json")
    try:
        with open(path) as f:
            saved = json.load(f)
    except (OSError, ValueError) as e:
        log(f"--report-only: cannot read {path}: {e}")
        return 1
    meta, p, data = saved["meta"], saved["params"], saved["data"]
    names = list(saved["contenders"])
    # JSON made the record sizes strings.
    for k in ("producer_records", "consumer_records"):
        p[k] = {int(size): n for size, n in p[k].items()}
    meta["configs"] = [tuple(c) for c in meta["configs"]]
    tmp = tempfile.mkdtemp(prefix="kstretch-kafka-report-")
    try:
        if "tool_commands" not in meta:  # a file written before they were recorded
            meta["tool_commands"] = tool_commands(JavaTools(KAFKA_LIBS, tmp, 0), tmp)
        s = summarize(data, names)
        charts = write_charts(out, tmp, s, names)
        meta["charts"] = charts
        report(out, s, names, meta, p, charts)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    saved["summary"] = s
    with open(path, "w") as f:
        json.dump(saved, f, indent=1, default=str)
    log(f"wrote {os.path.join(out, 'kafka-latest.md')} and {len(charts)} chart(s) again from {path}")
    return 0


def java_version():
    try:
        r = subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=30)
        return (r.stderr or r.stdout).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "unknown"


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.environ.get("KSTRETCH_BUILD", os.path.join(REPO, "build")))
    ap.add_argument("--runs", type=int, help="repetitions (default 5; --quick: 1)")
    ap.add_argument("--workers", type=int, default=1, help="workers of kstretch, HAProxy and nginx (default 1)")
    ap.add_argument("--out", help="results folder (default bench/results; --quick: BUILD/bench-kafka-quick)")
    ap.add_argument("--quick", action="store_true", help="smoke run: tiny counts, one repetition")
    ap.add_argument("--contenders", default=None,
                    help=f"which, of {','.join(CONTENDER_NAMES)} (direct is always run; default: all but the TLS "
                         f"ones, or with --tls: {','.join(TLS_CONTENDERS)})")
    ap.add_argument("--tls", action="store_true",
                    help="TLS between the clients and the proxy: kstretch and HAProxy terminating TLS "
                         "(default OUT: bench/results/kafka-tls)")
    ap.add_argument("--no-kroxylicious", action="store_true", help="leave Kroxylicious out")
    ap.add_argument("--consumer-only", action="store_true",
                    help="only the consumer runs (section 2; section 1 stays empty): e.g. to compare "
                         "fetch.cut.through on and off without the producer's half hour")
    ap.add_argument("--report-only", action="store_true",
                    help="run nothing: write OUT/kafka-latest.md and the charts again from OUT/kafka-latest.json")
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    p = dict(QUICK if args.quick else FULL)
    if args.runs:
        if not 1 <= args.runs <= 50:
            ap.error("--runs must be 1..50")
        p["runs"] = args.runs
    if not 1 <= args.workers <= 64:
        ap.error("--workers must be 1..64")
    default = TLS_CONTENDERS if args.tls else [c for c in CONTENDER_NAMES if c not in TLS_CONTENDERS]
    wanted = {c.strip() for c in (args.contenders or ",".join(default)).split(",") if c.strip()} | {"direct"}
    if not wanted <= set(CONTENDER_NAMES):
        ap.error(f"--contenders: names of {','.join(CONTENDER_NAMES)}")
    if args.no_kroxylicious:
        wanted.discard("kroxylicious")
    out = os.path.abspath(args.out or (os.path.join(build, "bench-kafka-quick") if args.quick else
                                       os.path.join(REPO, "bench", "results", "kafka-tls") if args.tls else
                                       os.path.join(REPO, "bench", "results")))
    os.makedirs(out, exist_ok=True)
    if args.report_only:
        return report_again(out)
    missing = [t for t in ("haproxy", "nginx") if not shutil.which(t)]
    if not os.path.exists(br.NGINX_STREAM_MODULE):
        missing.append("libnginx-mod-stream")
    if missing:
        if not args.quick:
            log(f"missing: {', '.join(missing)} (run `make bench-deps`)")
            return 1
        wanted -= {"haproxy", "haproxy-splice"} if "haproxy" in missing else set()
        wanted -= {"nginx"} if ("nginx" in missing or "libnginx-mod-stream" in missing) else set()

    started = time.monotonic()
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    br.raise_nofile()
    tmp = tempfile.mkdtemp(prefix="kstretch-kafka-bench-")
    daemons, contenders = [], []
    meta = {"command": " ".join(["bench/kafka_bench.py"] + sys.argv[1:]), "runs": p["runs"], "quick": args.quick,
            "workers": args.workers, "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
            "machine": br.machine(), "versions": br.versions(build), "java": java_version(),
            "load_start": " ".join(open("/proc/loadavg").read().split()[:3]), "configs": []}
    data = {"producer": {f"{s}/{a}": {} for s in SIZES for a in ACKS}, "consumer": {str(s): {} for s in SIZES}}
    try:
        tools = JavaTools(KAFKA_LIBS, tmp, p["tool_timeout"])
        meta["tool_commands"] = tool_commands(tools, tmp)
        broker, contenders = start_everything(args, build, tmp, p, meta, daemons, wanted)
        log("broker and proxies up: " + ", ".join(f"{c.label} {c.address}" for c in contenders))
        fill_consumer_topics(tools, broker, p)
        warm_up(tools, broker, contenders, p, consumer_only=args.consumer_only)
        for rep in range(p["runs"]):
            if not args.consumer_only:
                run_producer(tools, broker, contenders, p, rep, data)
            run_consumer(tools, broker, contenders, p, rep, data)
    except KeyboardInterrupt:
        log("interrupted")
        return 1
    except BenchError as e:
        log(f"failed: {e}")
        for d in daemons:
            if not d.alive():
                log(f"{d.name} had exited ({d.proc.returncode}); its log ends:\n{d.log_tail()}")
        return 1
    finally:
        for d in reversed(daemons):
            d.stop()
        # The topics hold GBs: gone even when the run failed (the logs stay in tmp).
        shutil.rmtree(os.path.join(tmp, "kafka", "data"), ignore_errors=True)

    for c in contenders:
        if c.failed:
            meta.setdefault("dropped", {})[c.name] = c.failed
    if "kroxylicious" in meta and any(c.name == "kroxylicious" and c.failed for c in contenders):
        meta["kroxylicious"]["status"] = "failed"
        meta["kroxylicious"]["why"] = next(c.failed for c in contenders if c.name == "kroxylicious")
    names = [c.name for c in contenders]
    meta["duration_s"] = time.monotonic() - started
    meta["load_end"] = " ".join(open("/proc/loadavg").read().split()[:3])
    s = summarize(data, names)
    charts = write_charts(out, tmp, s, names)
    meta["charts"] = charts
    report(out, s, names, meta, p, charts)
    with open(os.path.join(out, "kafka-latest.json"), "w") as f:
        json.dump({"meta": meta, "params": p, "contenders": {n: LABELS[n] for n in names}, "summary": s,
                   "data": data}, f, indent=1, default=str)
    shutil.rmtree(tmp, ignore_errors=True)
    log(f"wrote {os.path.join(out, 'kafka-latest.md')} and {len(charts)} chart(s) in {meta['duration_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
