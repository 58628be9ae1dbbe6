#!/usr/bin/python3
"""Capture real frames between Apache Kafka's Java clients and a real Kafka broker.

Starts one KRaft node (broker and controller in one JVM) from the Kafka jars
in --libs (default $KSTRETCH_KAFKA_LIBS, else ~/.cache/kstretch/kafka-4.4.0/
libs: `make deps-kafka`), listening on a free 127.0.0.1 port and advertising
a recording relay in front of it (capture_traffic.py's Relay: it forwards
bytes unchanged and logs every frame with its API, version and correlation
id), so that every connection a client opens comes through the relay.

Clients, Kafka's own command-line tools, all built on the kafka-clients jar
of the same release (the Java client and the Java Admin client):
  * TopicCommand creates topic `t` (2 partitions);
  * ConsoleProducer writes 20 keyed records with acks=all and
    enable.idempotence=true (InitProducerId, Produce at the newest version);
  * ConsoleConsumer reads them back in group `g` with group.protocol=consumer
    (KIP-848: FindCoordinator, ConsumerGroupHeartbeat, OffsetFetch, Fetch,
    OffsetCommit);
  * ClusterTool list-endpoints (Admin describeCluster: DescribeCluster).

Saved (for the APIs kstretch's codec decodes, and ConsumerGroupHeartbeat):
for every (API, version, direction) seen, the largest frame, as hex, 64
digits a line, named <api>-v<version>-<request|response>-<label>.hex, e.g.
tests/vectors/produce/produce-v13-request-kafka-4.4.hex (--label, default
kafka-<version of the kafka-clients jar, major.minor>); for
ConsumerGroupHeartbeat also the member's first (-join, epoch 0) and last
(-leave, epoch -1) request and their answers, unless one is the largest. The broker's answer
to the client's first ApiVersions request is saved whole as well: it lists
the versions the broker offers, and the script prints, for each saved API,
the version the clients used and the broker's range. Every file is then
checked with the codec, which must decode and re-encode it byte for byte
(--no-check skips that):

    build/protocol/kstretch-decode --response --api 0 --version 13 --hex --reencode FILE

Regenerate (after `ninja -C build`), from the repository root:

    /usr/bin/python3 tests/vectors/capture_kafka.py

Options: --build DIR (default build), --out DIR (default tests/vectors),
--libs DIR, --label TEXT, --keep-all (every frame, numbered), --no-check.
Only the standard library is used; everything listens and connects on
127.0.0.1 only, every wait and every client run is bounded, and the broker
is stopped (SIGTERM, then SIGKILL) whatever happens. Record batches carry
client timestamps and CRCs, responses the random cluster id, topic id and
member id and the relay's ephemeral port, so a rerun differs in those bytes.
"""
import argparse
import itertools
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

import capture_traffic as ct  # noqa: E402  the relay and the frame log
import kafkawire  # noqa: E402  the readiness probe

HOST = "127.0.0.1"
SAVED = {0: "produce", 1: "fetch", 3: "metadata", 10: "findcoordinator", 18: "apiversions",
         60: "describecluster", 68: "consumergroupheartbeat"}
ct.API_NAMES.update({2: "ListOffsets", 8: "OffsetCommit", 9: "OffsetFetch", 19: "CreateTopics",
                     22: "InitProducerId", 60: "DescribeCluster", 68: "ConsumerGroupHeartbeat"})
TOPIC, GROUP, RECORDS = "t", "g", 20
BROKER_READY_S = 90
CLIENT_TIMEOUT_S = 90
JVM = ["-Xmx256m", "-Xms64m", "-XX:+UseSerialGC", "-XX:ActiveProcessorCount=2", "-Djava.awt.headless=true"]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Broker:
    """One KRaft node (roles broker,controller) in a work directory of its own."""

    def __init__(self, libs, work, port, advertised_port):
        self.libs, self.work, self.port = libs, work, port
        self.cp = os.path.join(libs, "*")
        controller = free_port()
        self.props = os.path.join(work, "server.properties")
        with open(self.props, "w") as f:
            f.write("\n".join([
                "process.roles=broker,controller", "node.id=1",
                f"controller.quorum.bootstrap.servers={HOST}:{controller}",
                f"listeners=PLAINTEXT://{HOST}:{port},CONTROLLER://{HOST}:{controller}",
                f"advertised.listeners=PLAINTEXT://{HOST}:{advertised_port}",
                "controller.listener.names=CONTROLLER", "inter.broker.listener.name=PLAINTEXT",
                f"log.dirs={os.path.join(work, 'data')}", "num.partitions=2",
                "offsets.topic.replication.factor=1", "offsets.topic.num.partitions=1",
                "transaction.state.log.replication.factor=1", "transaction.state.log.min.isr=1",
                "share.coordinator.state.topic.replication.factor=1", "group.initial.rebalance.delay.ms=0",
            ]) + "\n")
        self.log4j = os.path.join(work, "log4j2.properties")
        with open(self.log4j, "w") as f:
            f.write("rootLogger.level=WARN\nrootLogger.appenderRef.out.ref=out\n"
                    "appender.out.type=Console\nappender.out.name=out\nappender.out.target=SYSTEM_ERR\n"
                    "appender.out.layout.type=PatternLayout\nappender.out.layout.pattern=%d %p %c{1}: %m%n\n")
        self.proc = None

    def java(self, *argv):
        return ["java"] + JVM + [f"-Dlog4j2.configurationFile={self.log4j}", "-cp", self.cp, *argv]

    def start(self):
        uuid = subprocess.run(self.java("kafka.tools.StorageTool", "random-uuid"), capture_output=True, text=True,
                              timeout=60, check=True).stdout.strip().splitlines()[-1]
        subprocess.run(self.java("kafka.tools.StorageTool", "format", "--standalone", "-t", uuid, "-c", self.props),
                       capture_output=True, timeout=60, check=True)
        out = open(os.path.join(self.work, "broker.log"), "wb")
        self.proc = subprocess.Popen(self.java("kafka.Kafka", self.props), stdin=subprocess.DEVNULL, stdout=out,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        out.close()
        deadline = time.monotonic() + BROKER_READY_S
        while True:  # ready once Metadata (asked directly, not through the relay) names the broker
            if self.proc.poll() is not None:
                raise RuntimeError(f"the broker exited {self.proc.returncode}; see {self.work}/broker.log")
            try:
                md = kafkawire.metadata_v12(HOST, self.port, timeout=5)
                if any(b.node_id == 1 for b in md.brokers):
                    return
            except (OSError, kafkawire.WireError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the broker did not answer Metadata within {BROKER_READY_S}s")
            time.sleep(0.5)

    def stop(self):
        if not self.proc or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


def run_tool(broker, name, argv, stdin=None):
    log(f"== {name}")
    r = subprocess.run(broker.java(*argv), input=stdin, capture_output=True, text=True, timeout=CLIENT_TIMEOUT_S)
    if r.returncode != 0:
        raise RuntimeError(f"{name} exited {r.returncode}: {r.stderr.strip()[-2000:]}")
    return r.stdout


def clients(broker, bootstrap):
    run_tool(broker, "TopicCommand --create", ["org.apache.kafka.tools.TopicCommand", "--bootstrap-server", bootstrap,
                                               "--create", "--topic", TOPIC, "--partitions", "2",
                                               "--replication-factor", "1"])
    lines = "".join(f"key-{i}\tvalue {i} from the Java producer\n" for i in range(RECORDS))
    run_tool(broker, "ConsoleProducer, acks=all, idempotent",
             ["org.apache.kafka.tools.ConsoleProducer", "--bootstrap-server", bootstrap, "--topic", TOPIC,
              "--command-property", "acks=all", "--command-property", "enable.idempotence=true",
              "--command-property", "linger.ms=5", "--reader-property", "parse.key=true",
              "--reader-property", "key.separator=\t"], stdin=lines)
    out = run_tool(broker, "ConsoleConsumer, group.protocol=consumer",
                   ["org.apache.kafka.tools.consumer.ConsoleConsumer", "--bootstrap-server", bootstrap,
                    "--topic", TOPIC, "--group", GROUP, "--from-beginning", "--max-messages", str(RECORDS),
                    "--timeout-ms", "30000", "--command-property", "group.protocol=consumer",
                    "--formatter-property", "print.key=true"])
    got = len(out.splitlines())
    if got != RECORDS:
        raise RuntimeError(f"the consumer read {got} records, {RECORDS} were produced")
    log(f"the consumer read back {got} records")
    out = run_tool(broker, "ClusterTool list-endpoints (describeCluster)",
                   ["org.apache.kafka.tools.ClusterTool", "list-endpoints", "--bootstrap-server", bootstrap])
    log(out.strip())


def api_versions_ranges(frame):
    """{api_key: (min, max)} of an ApiVersions response frame (size + header v0 + body)."""
    r = kafkawire.Reader(frame, 8)
    if r.int16("error_code") != 0:
        return {}
    n = r.uvarint("api_keys") - 1
    out = {}
    for _ in range(n):
        key, lo, hi = r.int16(), r.int16(), r.int16()
        r.tagged_fields()
        out[key] = (lo, hi)
    return out


def clients_jar_version(libs):
    for name in os.listdir(libs):
        m = re.fullmatch(r"kafka-clients-(\d+)\.(\d+)\.(\d+)\.jar", name)
        if m:
            return m.group(1, 2, 3)
    raise RuntimeError(f"no kafka-clients jar in {libs}")


def main():
    cache = os.environ.get("KSTRETCH_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "kstretch")
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(REPO, "build"))
    ap.add_argument("--out", default=os.path.join(REPO, "tests", "vectors"))
    ap.add_argument("--libs", default=os.environ.get("KSTRETCH_KAFKA_LIBS") or os.path.join(cache, "kafka-4.4.0",
                                                                                         "libs"))
    ap.add_argument("--label")
    ap.add_argument("--keep-all", action="store_true")
    ap.add_argument("--no-check", action="store_true")
    opts = ap.parse_args()
    if shutil.which("java") is None:
        sys.exit("capture_kafka: no java on PATH")
    major, minor, patch = clients_jar_version(opts.libs)
    label = opts.label or f"kafka-{major}.{minor}"
    decoder = os.path.join(opts.build, "protocol", "kstretch-decode")

    capture = ct.Capture()
    capture.label = label
    work = tempfile.mkdtemp(prefix="kstretch-capture-")
    port = free_port()
    relay = ct.Relay(1, port, capture, itertools.count(1))
    broker = Broker(opts.libs, work, port, relay.port)
    try:
        broker.start()
        log(f"Kafka {major}.{minor}.{patch} at {HOST}:{port}, advertised (relay) at {HOST}:{relay.port}")
        clients(broker, f"{HOST}:{relay.port}")
        time.sleep(0.5)  # let the last responses cross the relay
    finally:
        relay.close()
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)

    ok, saved, offered = True, 0, {}
    for (api, version, request, _), frames in sorted(capture.frames.items()):
        if api == 18 and not request and not offered:
            offered = api_versions_ranges(frames[0])
        name = SAVED.get(api)
        if not name:
            continue
        outdir = os.path.join(opts.out, name)
        os.makedirs(outdir, exist_ok=True)
        kind = "request" if request else "response"
        if opts.keep_all:
            chosen = [(f"-{i}", f, f"{i + 1} of {len(frames)}") for i, f in enumerate(frames)]
        else:
            chosen = [("", max(frames, key=len), f"largest of {len(frames)}")]
            if api == 68:  # the member's first heartbeat (epoch 0) and its last (epoch -1), with their answers
                for suffix, frame, note in (("-join", frames[0], "first"), ("-leave", frames[-1], "last")):
                    if all(frame != f for _, f, _ in chosen):
                        chosen.append((suffix, frame, note))
        for suffix, frame, note in chosen:
            path = os.path.join(outdir, f"{name}-v{version}-{kind}{suffix}-{label}.hex")
            ct.write_hex(path, frame)
            saved += 1
            log(f"saved {os.path.relpath(path, REPO)} ({len(frame)} bytes, {note})")
            if not opts.no_check:
                ok = ct.check(decoder, path, request, api, version) and ok
    used = sorted({(api, version) for api, version, request, _ in capture.frames if request})
    log("negotiated (api: version used by the clients; the broker's range):")
    for api, version in used:
        lo, hi = offered.get(api, ("?", "?"))
        log(f"  {ct.API_NAMES.get(api, api)} ({api}): v{version}; broker {lo}-{hi}")
    log(f"{saved} vectors saved" + ("" if opts.no_check else (", all re-encode byte for byte" if ok else "")))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
