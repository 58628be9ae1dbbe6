"""kstretch in mapped mode between real Kafka clients and the stretched-cluster
simulator (three regions of two brokers, us 5 ms and ap 10 ms away, topic `t`
of 12 partitions with RF 3). Clients are given only kstretch's bootstrap
address; everything they learn about brokers must lead back to kstretch.
"""
import collections
import os
import random
import re
import signal
import socket
import ssl
import struct
import subprocess
import threading
import time

import pytest

import harness
import kafkawire
import records
from fakebroker import FakeBroker

REGIONS = "eu:2,us:2,ap:2"
RTT_MS = "us=5,ap=10"
TOPIC = "t"
PARTITIONS = 12
COUNT = 20_000
CLIENT_TIMEOUT_S = 90
LOCALHOST = "127.0.0.1"


def stretched(start_cluster, start_kstretch, topics=(f"{TOPIC}:{PARTITIONS}:3",), **kstretch_args):
    c = start_cluster(regions=REGIONS, rtt_ms=RTT_MS, topics=list(topics))
    return c, start_kstretch(c, **kstretch_args)


def kcat(*args):
    return [harness.kcat_path(), *args]


def kcat_producer(bootstrap, topic, *extra):
    return kcat("-b", bootstrap, "-P", "-t", topic, "-K", "\t", "-X", "acks=all", "-X", "enable.idempotence=true",
                *extra)


def tsv(recs):
    return "".join(f"{k}\t{v}\n" for k, v in recs).encode()


# ---------------------------------------------------------------- 1. every client, through kstretch

def roundtrip_kcat(build, bootstrap, tmp_path, sent):
    env = harness.librdkafka_env(build)
    version = harness.run(kcat("-V"), env=env, timeout=10).stdout.decode()
    producer = kcat_producer(bootstrap, TOPIC)
    dump = harness.run(producer + ["-X", "dump"], env=env, timeout=10).stdout.decode().splitlines()
    assert "enable.idempotence = true" in dump and "request.required.acks = -1" in dump, \
        "kcat did not take -X enable.idempotence=true -X acks=all"
    harness.run(producer, input=tsv(sent), env=env, timeout=CLIENT_TIMEOUT_S, what="kcat producer")
    consumed = harness.kcat_consume(bootstrap, TOPIC, "roundtrip", env, timeout=CLIENT_TIMEOUT_S)
    return version, consumed


def roundtrip_python(client, build, bootstrap, tmp_path, sent):
    inp = records.write_tsv(tmp_path / "records.tsv", sent)
    options = ["--idempotent"] if client == "confluent-kafka" else []  # kafka-python 2.0 has no idempotence
    r = harness.run([harness.PYTHON, os.path.join(harness.CLIENTS, "python_roundtrip.py"), client, bootstrap, TOPIC,
                     "roundtrip", inp, str(len(sent)), str(CLIENT_TIMEOUT_S - 10), *options],
                    env=harness.librdkafka_env(build) if build else None, timeout=CLIENT_TIMEOUT_S, what=client)
    return harness.client_version(r.stderr), records.parse_consumed(r.stdout.decode())


def roundtrip_kafkajs(bootstrap, tmp_path, sent):
    # Not idempotent: KafkaJS sends InitProducerId to the controller, and the
    # mock names node 0 (no such broker) as controller in every Metadata.
    inp = records.write_tsv(tmp_path / "records.tsv", sent)
    r = harness.run(["node", os.path.join(harness.CLIENTS, "kafkajs_roundtrip.js"), bootstrap, TOPIC, "roundtrip",
                     inp, str(len(sent)), str(CLIENT_TIMEOUT_S - 10)],
                    env=harness.node_env(), timeout=CLIENT_TIMEOUT_S, what="kafkajs_roundtrip.js")
    return harness.client_version(r.stderr), records.parse_consumed(r.stdout.decode())


CLIENTS = {
    # name: (runner, expected version text)
    "kcat-librdkafka-2.0.2": (lambda *a: roundtrip_kcat("debian-librdkafka-2.0.2", *a), "librdkafka 2.0.2"),
    "kcat-librdkafka-2.12": (lambda *a: roundtrip_kcat("librdkafka-2.12", *a), "librdkafka 2.12."),
    "kafka-python": (lambda *a: roundtrip_python("kafka-python", None, *a), "kafka-python 2."),
    "kafkajs": (roundtrip_kafkajs, "kafkajs 2."),
    "confluent-kafka-librdkafka-2.0.2": (lambda *a: roundtrip_python("confluent-kafka", "debian-librdkafka-2.0.2", *a),
                                         "librdkafka 2.0.2"),
    "confluent-kafka-librdkafka-2.12": (lambda *a: roundtrip_python("confluent-kafka", "librdkafka-2.12", *a),
                                        "librdkafka 2.12."),
}


@pytest.mark.parametrize("client", list(CLIENTS))
def test_a_client_given_only_kstretch_produces_20000_records_and_reads_them_back_in_a_group(
        start_cluster, start_kstretch, tmp_path, client):
    c, k = stretched(start_cluster, start_kstretch)
    runner, version_text = CLIENTS[client]
    sent = records.make_records(client, COUNT)

    version, consumed = runner(k.bootstrap, tmp_path, sent)

    assert version_text in version, f"{client} runs another library: {version!r}"
    records.assert_same_records(sent, consumed, PARTITIONS)
    m = k.metrics()
    assert m["kstretch_protocol_errors"] == 0
    assert m["kstretch_connections_accepted"] >= 2  # at least the bootstrap and one broker listener


# ---------------------------------------------------------------- 2. clients see only kstretch

def broker_map(md):
    return {b.node_id: (b.host, b.port, b.rack) for b in md.brokers}


def test_metadata_through_kstretch_lists_only_kstretch_listeners_and_keeps_the_rest(start_cluster, start_kstretch):
    c, k = stretched(start_cluster, start_kstretch)
    sim = c.broker(1)
    direct = kafkawire.metadata_v12(sim["host"], sim["port"])
    assert sorted(b.node_id for b in direct.brokers) == [1, 2, 3, 4, 5, 6]
    want = {b.node_id: (LOCALHOST, k.broker_port(b.node_id), b.rack) for b in direct.brokers}

    for listener, port in (("bootstrap", k.listen_port), ("node 3", k.broker_port(3))):
        md = kafkawire.metadata_v12(LOCALHOST, port)
        assert broker_map(md) == want, f"brokers in Metadata v12 through the {listener} listener"
        assert (md.cluster_id, md.controller_id, md.topics) == (direct.cluster_id, direct.controller_id,
                                                                direct.topics), \
            f"Metadata v12 through the {listener} listener changed more than the brokers"
        assert [p.leader_id for p in md.topic(TOPIC).partitions] == \
            [c.leaders(TOPIC)[p] for p in range(PARTITIONS)]


SS_LINE = re.compile(r"^\s*(?P<recv_q>\d+)\s+(?P<send_q>\d+)\s+(?P<local>\S+):(?P<lport>\d+)\s+"
                     r"(?P<peer>\S+):(?P<pport>\d+)\s*(?P<users>.*)$")
TcpSocket = collections.namedtuple("TcpSocket", "lport peer pport recv_q send_q pids")


def tcp_sockets():
    """Every established TCP socket of the machine (ss -tnp, iproute2)."""
    r = harness.run(["ss", "-tnpH", "state", "established"], timeout=10)
    out = []
    for line in r.stdout.decode().splitlines():
        m = SS_LINE.match(line)
        assert m, f"unexpected ss line: {line!r}"
        pids = frozenset(int(p) for p in re.findall(r"pid=(\d+)", m["users"]))
        out.append(TcpSocket(int(m["lport"]), m["peer"], int(m["pport"]), int(m["recv_q"]), int(m["send_q"]), pids))
    return out


def established_tcp():
    """[(local_port, peer_port, {pid, ...})] of every established TCP socket to 127.0.0.1."""
    return [(t.lport, t.pport, t.pids) for t in tcp_sockets() if t.peer == LOCALHOST]


def test_no_client_connects_to_a_broker_directly_only_kstretch_does(start_cluster, start_kstretch, tmp_path):
    c, k = stretched(start_cluster, start_kstretch)
    env = harness.modern_rdkafka_env()
    sim_ports = {b["port"] for b in c.brokers}
    out_path = tmp_path / "consumed.tsv"
    sent = records.make_records("ss", 2000)
    with open(out_path, "wb") as out:
        consumer = subprocess.Popen(kcat("-b", k.bootstrap, "-G", "ss-group", "-u", "-X",
                                         "auto.offset.reset=earliest", "-f", harness.KCAT_FORMAT, TOPIC),
                                    stdout=out, stderr=subprocess.DEVNULL, env=env)
    try:
        harness.run(kcat_producer(k.bootstrap, TOPIC), input=tsv(sent), env=env, timeout=CLIENT_TIMEOUT_S,
                    what="kcat producer")
        harness.wait_until(lambda: harness.count_lines(out_path) >= len(sent), timeout=30, what="the consumer reading")
        assert consumer.poll() is None, "the consumer exited"
        sockets = established_tcp()
    finally:
        consumer.terminate()
        consumer.wait(timeout=10)

    to_sim = [(lp, pp, pids) for lp, pp, pids in sockets if pp in sim_ports]
    assert to_sim, "no connection to the simulator's brokers at all"
    strangers = [(lp, pp, pids) for lp, pp, pids in to_sim if pids != {k.pid}]
    assert not strangers, f"connections to broker ports from processes other than kstretch ({k.pid}): {strangers}"
    consumer_peers = {pp for lp, pp, pids in sockets if consumer.pid in pids}
    assert consumer_peers, "the consumer had no connection"
    assert consumer_peers <= k.listener_ports(), \
        f"the consumer is connected to {sorted(consumer_peers - k.listener_ports())}, not kstretch listeners"
    assert len(consumer_peers) > 2, f"the consumer reached only {sorted(consumer_peers)}"
    records.assert_same_records(sent, records.parse_consumed(out_path.read_text()), PARTITIONS)


# ---------------------------------------------------------------- 3. what kstretch rewrites

def test_metadata_of_a_2000_partition_topic_comes_back_whole_with_only_the_brokers_rewritten(
        start_cluster, start_kstretch):
    c, k = stretched(start_cluster, start_kstretch, topics=(f"{TOPIC}:{PARTITIONS}:3", "big:2000:3"))
    sim = c.broker(2)
    direct = kafkawire.metadata_v12(sim["host"], sim["port"])
    assert len(direct.topic("big").partitions) == 2000
    before = k.metrics()

    for topics in (None, ["big"]):  # every topic, and the big one alone
        md = kafkawire.metadata_v12(LOCALHOST, k.listen_port, topics)
        assert broker_map(md) == {b.node_id: (LOCALHOST, k.broker_port(b.node_id), b.rack) for b in direct.brokers}
        want = direct.topics if topics is None else [direct.topic("big")]
        assert md.topics == want, "topics and partitions differ from what the broker answered"
        assert len(md.topic("big").partitions) == 2000
        assert (md.cluster_id, md.controller_id) == (direct.cluster_id, direct.controller_id)

    after = k.metrics()
    assert after["kstretch_responses_rewritten"] - before["kstretch_responses_rewritten"] == 2
    # Six brokers per answer: nothing among the 2,000 partitions counts as an address.
    assert after["kstretch_addresses_rewritten"] - before["kstretch_addresses_rewritten"] == 2 * 6


def test_find_coordinator_v4_batched_names_a_kstretch_listener_for_every_coordinator_found(start_kstretch):
    # librdkafka's mock answers FindCoordinator up to v3 only: a scripted
    # broker answers the batched v4 lookup (KIP-699). Its Metadata lists nodes
    # 1 and 2; the answer names node 2, and node 7, which kstretch has not seen
    # yet and must open a listener for.
    with FakeBroker(brokers=[(1, "eu-a"), (2, "us-a")]) as fb:
        answers = {
            "group-a": kafkawire.Coordinator("group-a", 2, fb.host, fb.port, 0, None),
            "group-b": kafkawire.Coordinator("group-b", 7, fb.host, fb.port, 0, None),
            "group-c": kafkawire.Coordinator("group-c", -1, "", -1, 15, "The coordinator is not available."),
        }

        def find_coordinator(header, body):
            if header.api_version != 4:
                return None
            _, keys = kafkawire.decode_find_coordinator_request_v4(body)
            return kafkawire.find_coordinator_response_v4([answers[key] for key in keys], throttle_time_ms=7)

        fb.handlers[kafkawire.API_FIND_COORDINATOR] = find_coordinator
        k = start_kstretch(fb.bootstrap, max_node_id=7)

        with kafkawire.Connection(LOCALHOST, k.listen_port) as conn:
            got = conn.find_coordinators_v4(["group-a", "group-b", "group-c"])

        assert fb.requests_of(kafkawire.API_FIND_COORDINATOR), "the request did not reach the broker"
        assert got.throttle_time_ms == 7
        assert [x.key for x in got.coordinators] == ["group-a", "group-b", "group-c"]
        assert (got.coordinator("group-a").host, got.coordinator("group-a").port) == (LOCALHOST, k.broker_port(2))
        assert (got.coordinator("group-b").host, got.coordinator("group-b").port) == (LOCALHOST, k.broker_port(7))
        assert got.coordinator("group-c") == answers["group-c"], "an error entry has no address to rewrite"
        for key in ("group-a", "group-b"):
            x = got.coordinator(key)
            assert (x.node_id, x.error_code, x.error_message) == (answers[key].node_id, 0, None)

        # Node 7 was learned from the answer: its listener leads to where the broker said it is.
        def node7_answers():
            try:
                with kafkawire.Connection(LOCALHOST, k.broker_port(7), timeout=2) as conn:
                    return conn.api_versions(version=0).error_code == 0
            except OSError:
                return False

        harness.wait_until(node7_answers, timeout=5, what="a listener for node 7")
        assert k.log_lines("topology: new broker node 7")


class PacedInput(threading.Thread):
    """Writes records to a producer's stdin at `rate` records per second, then
    closes it (the producer flushes and exits)."""

    def __init__(self, proc, recs, rate, chunk=50):
        super().__init__(name="paced-input", daemon=True)
        self.proc, self.recs, self.rate, self.chunk = proc, recs, rate, chunk
        self.written = 0
        self.error = None

    def run(self):
        start = time.monotonic()
        try:
            for i in range(0, len(self.recs), self.chunk):
                ahead = start + i / self.rate - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
                self.proc.stdin.write(tsv(self.recs[i:i + self.chunk]))
                self.proc.stdin.flush()
                self.written = i + self.chunk
        except OSError as e:
            self.error = e
        finally:
            try:
                self.proc.stdin.close()
            except OSError:
                pass


def peers_of(pid):
    return {pp for lp, pp, pids in established_tcp() if pid in pids}


def assert_only_kstretch_reaches(c, k):
    sim_ports = {b["port"] for b in c.brokers}
    strangers = [(lp, pp, pids) for lp, pp, pids in established_tcp() if pp in sim_ports and pids != {k.pid}]
    assert not strangers, f"connections to broker ports from processes other than kstretch ({k.pid}): {strangers}"


def read_partition(path, partition):
    rows = [r for r in records.parse_consumed(path.read_text()) if r[0] == partition]
    return rows


@pytest.mark.parametrize("cut_through", [False, True], ids=["fetch-held-and-rewritten", "fetch-cut-through"])
def test_producer_and_consumer_follow_a_moved_leader_to_its_kstretch_port_through_rewritten_node_endpoints(
        start_cluster, start_kstretch, tmp_path, cut_through):
    # Produce v10 and Fetch v16: responses carry NodeEndpoints (KIP-951).
    # With fetch.cut.through (the default) the Fetch requests go to the
    # broker as v15, whose answers have none: the consumer then finds the
    # new leader through Metadata, which kstretch rewrites.
    c, k = stretched(start_cluster, start_kstretch,
                     extra_args=("--fetch-cut-through", "true" if cut_through else "false"))
    env = harness.modern_rdkafka_env()
    part = c.topic(TOPIC)["partitions"][0]
    old = part["leader"]
    sent = records.make_records("moved", 10_000)
    consumed_path = tmp_path / "consumed.tsv"
    with open(consumed_path, "wb") as out:
        consumer = subprocess.Popen(kcat("-b", k.bootstrap, "-C", "-t", TOPIC, "-p", "0", "-o", "beginning", "-u",
                                         "-f", harness.KCAT_FORMAT),
                                    stdout=out, stderr=subprocess.DEVNULL, env=env)
    producer_err = tmp_path / "producer.stderr"
    with open(producer_err, "wb") as err:
        producer = subprocess.Popen(kcat_producer(k.bootstrap, TOPIC, "-p", "0"), stdin=subprocess.PIPE,
                                    stdout=subprocess.DEVNULL, stderr=err, env=env)
    feeder = PacedInput(producer, sent, rate=2500)
    try:
        feeder.start()
        harness.wait_until(lambda: harness.count_lines(consumed_path) >= 2000, timeout=20, what="2,000 records consumed")
        before = peers_of(producer.pid)
        assert before and before <= k.listener_ports(), f"producer connected to {sorted(before)}"
        # Move the leader to a replica the producer has no connection to yet, if there is one.
        others = [r for r in part["replicas"] if r != old]
        new = next((r for r in others if k.broker_port(r) not in before), others[0])
        c.must(f"leader {TOPIC} 0 {new}")
        harness.wait_until(lambda: k.broker_port(new) in peers_of(producer.pid), timeout=10,
                           what=f"the producer connected to node {new}'s kstretch listener")
        assert feeder.is_alive(), "the producer ran out of records before it followed the leader"

        feeder.join(timeout=30)
        assert not feeder.is_alive() and feeder.error is None, f"feeding the producer: {feeder.error}"
        rc = producer.wait(timeout=CLIENT_TIMEOUT_S)
        assert rc == 0, f"kcat producer exited with {rc}: {producer_err.read_text()[-2000:]}"
        harness.wait_until(lambda: harness.count_lines(consumed_path) >= len(sent), timeout=30,
                           what=f"{len(sent)} records consumed")
        after = peers_of(consumer.pid)
        assert_only_kstretch_reaches(c, k)
    finally:
        for p in (producer, consumer):
            if p.poll() is None:
                p.kill()
            p.wait(timeout=10)

    rows = read_partition(consumed_path, 0)
    assert [(o, key, v) for _, o, key, v in rows] == [(i, key, v) for i, (key, v) in enumerate(sent)], \
        "partition 0 does not hold exactly the records produced, in order, once each"
    assert k.broker_port(new) in after, f"the consumer is not at node {new}'s listener: {sorted(after)}"
    assert k.log_lines(f"upstream node {new} ("), f"nothing reached node {new} through kstretch"
    rewritten = (("Produce", 10),) if cut_through else (("Produce", 10), ("Fetch", 16))
    for api, version in rewritten:
        lines = [line for line in k.log_lines(f"{api} v{version} (corr")
                 if re.search(r"rewritten: [1-9]\d* broker addresses", line)]
        assert lines, f"no {api} v{version} response had its NodeEndpoints rewritten"
    as_v15 = k.metrics()["kstretch_fetch_requests_as_v15"]
    if cut_through:
        assert as_v15 > 0, "no Fetch v16 request went to the broker as v15"
        assert not k.log_lines("Fetch v16 (corr"), "a Fetch v16 answer was held and rewritten"
    else:
        assert as_v15 == 0

    # The final counters: every rewrite was logged, and record batches went
    # through without being copied (only rewritten responses are).
    assert k.stop() == 0
    assert k.stopped, "no \"stopped:\" line with the final counters"
    assert k.stopped["responses_rewritten"] == len(k.log_lines(") rewritten: ")) > 0
    assert k.stopped["bytes_copied"] < k.stopped["bytes_from_brokers"] / 10, k.stopped


# ---------------------------------------------------------------- 4. a broker goes away and comes back

def test_a_broker_down_for_3_seconds_loses_and_duplicates_no_acknowledged_record(start_cluster, start_kstretch,
                                                                                 tmp_path):
    # confluent-kafka on librdkafka 2.12, acks=all, retries, idempotent and
    # transactional (commits every 500 records): the mock checks producer
    # sequence numbers only for transactional producers, so only they are
    # exactly-once against it, with or without kstretch in between.
    c, k = stretched(start_cluster, start_kstretch)
    down = 2
    assert any(p["leader"] == down for p in c.topic(TOPIC)["partitions"])
    sent = records.make_records("down", 10_000)
    inp = records.write_tsv(tmp_path / "records.tsv", sent)
    acked_path = tmp_path / "acked.tsv"
    err_path = tmp_path / "producer.stderr"
    with open(err_path, "wb") as err:
        producer = subprocess.Popen([harness.PYTHON, os.path.join(harness.CLIENTS, "python_roundtrip.py"),
                                     "confluent-kafka", k.bootstrap, TOPIC, "unused", inp, "0", "60", "--idempotent",
                                     "--transactional", "500", "--rate", "2500", "--acked", str(acked_path)],
                                    stdout=subprocess.DEVNULL, stderr=err, env=harness.modern_rdkafka_env())
    try:
        time.sleep(1.0)
        assert producer.poll() is None, f"the producer ended early: {err_path.read_text()[-2000:]}"
        c.must(f"down {down}")
        time.sleep(3)
        c.must(f"up {down}")
        rc = producer.wait(timeout=CLIENT_TIMEOUT_S)
    finally:
        if producer.poll() is None:
            producer.kill()
            producer.wait(timeout=10)
    stderr = err_path.read_text()
    assert "librdkafka 2.12." in harness.client_version(stderr), stderr[-2000:]
    assert rc == 0, f"the producer exited with {rc}: {stderr[-2000:]}"
    assert k.log_lines(f"upstream node {down} (", "broker closed the connection"), \
        "kstretch never saw the broker go down"

    acked = records.parse_consumed(acked_path.read_text())
    assert len(acked) == len(sent), f"{len(sent) - len(acked)} records were not acknowledged"
    consumed = harness.kcat_consume(k.bootstrap, TOPIC, "after-down", harness.modern_rdkafka_env(),
                                    timeout=CLIENT_TIMEOUT_S)
    copies = collections.Counter((key, v) for _, _, key, v in consumed)
    not_once = [(key, v, copies[(key, v)]) for _, _, key, v in acked if copies[(key, v)] != 1]
    assert not not_once, f"{len(not_once)} acknowledged records not read exactly once, e.g. {not_once[:5]}"
    # (Acked offsets are not compared: the mock acks a retried batch it had
    # already written with BaseOffset -1, and librdkafka then numbers that
    # batch's records -1, 0, 1, ...)
    records.assert_same_records(sent, consumed, PARTITIONS)


class Forwarder:
    """A TCP forwarder on a free 127.0.0.1 port to one upstream, for a
    bootstrap server that can be taken away: stop() closes its listener and
    every connection, so a later connect to its port is refused."""

    def __init__(self, upstream_port):
        self.upstream_port = upstream_port
        self.listener = socket.create_server((LOCALHOST, 0))
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.socks = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.stopped.is_set():
            try:
                a, _ = self.listener.accept()
            except (socket.timeout, OSError):
                continue
            b = socket.create_connection((LOCALHOST, self.upstream_port), timeout=5)
            self.socks += [a, b]
            for x, y in ((a, b), (b, a)):
                threading.Thread(target=self._pipe, args=(x, y), daemon=True).start()

    def _pipe(self, src, dst):
        src.settimeout(None)
        try:
            while True:
                d = src.recv(65536)
                if not d:
                    break
                dst.sendall(d)
        except OSError:
            pass
        for x in (src, dst):
            try:
                x.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def stop(self):
        self.stopped.set()
        self.thread.join(timeout=5)
        self.listener.close()
        for x in self.socks:
            try:
                x.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            x.close()


def api_versions_through(k, count):
    """`count` fresh connections to the bootstrap listener, one ApiVersions
    v2 each; returns the error codes, or the exception of a connection closed."""
    out = []
    for _ in range(count):
        try:
            with kafkawire.Connection(LOCALHOST, k.listen_port, timeout=10) as conn:
                out.append(conn.api_versions(2).error_code)
        except (OSError, kafkawire.WireError) as e:
            out.append(repr(e))
    return out


def test_a_bootstrap_server_that_refuses_connections_is_skipped_for_the_next_one(start_cluster, start_kstretch):
    # bootstrap.servers lists a dead port first: kstretch starts (it asks the
    # next one) and every client session that the round robin gives the dead
    # one goes on to the next server instead of closing the client.
    c = start_cluster(regions=REGIONS, topics=[f"{TOPIC}:{PARTITIONS}:3"])
    dead = harness.free_ports(1)[0]
    k = start_kstretch(f"{LOCALHOST}:{dead},{c.bootstrap.split(',')[0]}", workers=1)
    assert api_versions_through(k, 6) == [0] * 6
    tried = k.log_lines("trying bootstrap ")
    assert tried, "no session went on to the next bootstrap server"
    assert k.log_lines(f"cannot connect to bootstrap {LOCALHOST}:{dead}")
    assert k.metrics()["kstretch_upstream_connect_failures"] >= 1


def test_with_its_only_bootstrap_server_gone_new_clients_are_served_by_the_brokers_kstretch_knows(
        start_cluster, start_kstretch, tmp_path):
    c = start_cluster(regions=REGIONS, topics=[f"{TOPIC}:{PARTITIONS}:3"])
    fwd = Forwarder(c.broker(1)["port"])
    try:
        k = start_kstretch(f"{LOCALHOST}:{fwd.port}")
        assert api_versions_through(k, 2) == [0, 0]
    finally:
        fwd.stop()
    # A real client that knows only kstretch's bootstrap address produces and
    # reads back through it.
    assert api_versions_through(k, 4) == [0] * 4
    sent = records.make_records("gone", 200)
    harness.run(kcat_producer(k.bootstrap, TOPIC), input=tsv(sent), env=harness.modern_rdkafka_env(),
                timeout=CLIENT_TIMEOUT_S, what="kcat producer")
    consumed = harness.kcat_consume(k.bootstrap, TOPIC, "gone-group", harness.modern_rdkafka_env(),
                                    timeout=CLIENT_TIMEOUT_S)
    records.assert_same_records(sent, consumed, PARTITIONS)
    assert k.log_lines("trying bootstrap (a known broker) ")


# ---------------------------------------------------------------- 5. malformed client input

def tls_client_hello():
    """The first flight of a real TLS client (Python's ssl, into memory)."""
    ctx = ssl.create_default_context()
    inbio, outbio = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inbio, outbio, server_hostname="kstretch.invalid")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = outbio.read()
    assert hello[:1] == b"\x16", "not a TLS handshake record"
    return hello


def half_frames(n, half=60):
    """`n` half-frames: each declares a frame of 2 * `half` bytes and carries
    only `half` of them, an ApiVersions v0 request header (client id "hhh...").
    The first frame takes in all of the second half-frame but its last 4
    bytes, "hhhh", which then read as the next frame's size: 1.7 GB."""
    header = struct.pack(">hhih", kafkawire.API_API_VERSIONS, 0, 1, half - 10) + b"h" * (half - 10)
    return (struct.pack(">i", 2 * half) + header) * n


def says_size(data):
    return "malformed request: frame size %d outside" % struct.unpack(">i", data[:4])


HTTP_REQUEST = b"GET / HTTP/1.1\r\nHost: kstretch\r\n\r\n"
TLS_HELLO = tls_client_hello()
SIZE_MINUS_1 = struct.pack(">i", -1) + bytes(12)
SIZE_MAX = struct.pack(">i", 2**31 - 1) + bytes(12)
PIPELINED = b"".join(kafkawire.encode_request(kafkawire.API_API_VERSIONS, 0, corr, b"") for corr in range(1001))

def framed(body):
    return struct.pack(">i", len(body)) + body


LOG_REPEAT_WINDOW_S = 1.2  # repeats of a log line within a second are counted, not written

MALFORMED = {
    # name: (bytes sent on a new connection, then half-close it?, what kstretch's log line about it says)
    "garbage-http-request": (HTTP_REQUEST, False, says_size(HTTP_REQUEST)),
    "tls-client-hello": (TLS_HELLO, False, "sent a TLS ClientHello to a plaintext listener"),
    "frame-size-minus-1": (SIZE_MINUS_1, False, says_size(SIZE_MINUS_1)),
    "frame-size-2^31-1": (SIZE_MAX, False, says_size(SIZE_MAX)),
    "negative-api-version": (struct.pack(">ihhi", 12, 3, -7, 1) + bytes(4), False,
                             "malformed request: bad header: bad value at byte 6 reading request_api_version"),
    "truncated-header-then-close": (struct.pack(">i", 64) + b"\x00\x03\x00", True, "closed: client closed"),
    "a-thousand-half-frames": (half_frames(1000), False, says_size(b"hhhh")),
    # Produce: kstretch reads acks past the TransactionalId, whose length must stay in its frame.
    "produce-v3-transactional-id-length-minus-5": (
        framed(struct.pack(">hhih", 0, 3, 1, 0) + struct.pack(">h", -5) + struct.pack(">hii", 1, 1000, 0)),
        False, "malformed request: Produce v3 (corr 1): cannot read acks"),
    "produce-v9-transactional-id-past-its-frame": (
        framed(struct.pack(">hhih", 0, 9, 2, 0) + b"\x00" + b"\xc8\x01" + struct.pack(">hi", 1, 1000))
        + framed(bytes(300)), False, "malformed request: Produce v9 (corr 2): cannot read acks"),
    # More requests than max.inflight.requests (1,000): kstretch stops reading,
    # resumes on the first answer, and only then meets the bad frame.
    "1001-pipelined-requests-then-size-minus-1": (PIPELINED + SIZE_MINUS_1, False, says_size(SIZE_MINUS_1)),
}


@pytest.mark.parametrize("limit", [1, 3, 1000])
def test_pipelined_requests_beyond_max_inflight_wait_and_are_all_answered_in_order(start_cluster, start_kstretch,
                                                                                   limit):
    # The in-flight ring starts small and grows up to max.inflight.requests;
    # at the limit kstretch stops reading the client until an answer comes.
    c, k = stretched(start_cluster, start_kstretch, extra_args=("--max-inflight-requests", str(limit)))
    # Waves that leave the ring's head mid-array when it has to grow.
    sent, got = 0, []
    with kafkawire.Connection(LOCALHOST, k.listen_port) as conn:
        for send, read in ((6, 4), (20, 10), (40, 52)):
            conn.sock.sendall(b"".join(kafkawire.encode_request(kafkawire.API_API_VERSIONS, 0, corr, b"")
                                       for corr in range(sent, sent + send)))
            sent += send
            got += [kafkawire.Reader(conn.read_frame()).int32() for _ in range(read)]
    assert got == list(range(sent))
    assert k.metrics()["kstretch_protocol_errors"] == 0


def send_and_expect_close(k, name, data, half_close, timeout=5.0):
    """Sends `data` on a new connection; returns the connection's local address
    once kstretch has closed it (recv gives b"" or ECONNRESET) within timeout."""
    s = socket.create_connection((LOCALHOST, k.listen_port), timeout=timeout)
    try:
        addr = "%s:%d" % s.getsockname()
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            return addr  # closed before it read everything
        if half_close:
            s.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + timeout
        while True:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                b = s.recv(65536)
            except ConnectionResetError:
                return addr
            except socket.timeout:
                raise AssertionError(f"{name}: kstretch kept the connection open for {timeout}s") from None
            if not b:
                return addr
            # An answer to the one well-formed request (the half frames) may come first.
    finally:
        s.close()


def test_malformed_client_input_closes_only_that_connection_and_names_the_peer(start_cluster, start_kstretch,
                                                                              tmp_path):
    c, k = stretched(start_cluster, start_kstretch)
    env = harness.modern_rdkafka_env()
    # Well-behaved clients work all along: a kcat producer and a kcat consumer in a group.
    sent = records.make_records("calm", 18000)
    consumed_path = tmp_path / "consumed.tsv"
    with open(consumed_path, "wb") as out:
        consumer = subprocess.Popen(kcat("-b", k.bootstrap, "-G", "calm", "-u", "-X", "auto.offset.reset=earliest",
                                         "-f", harness.KCAT_FORMAT, TOPIC),
                                    stdout=out, stderr=subprocess.DEVNULL, env=env)
    producer = subprocess.Popen(kcat_producer(k.bootstrap, TOPIC), stdin=subprocess.PIPE,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    feeder = PacedInput(producer, sent, rate=1000)  # 18 s: past the consumer's group join and the bad input
    try:
        feeder.start()
        harness.wait_until(lambda: harness.count_lines(consumed_path) > 0, timeout=20, what="the consumer reading")
        for n, (name, (data, half_close, says)) in enumerate(MALFORMED.items()):
            if n:  # a line of a kind is written once a second at most (README "Logging"): the next case after it
                time.sleep(LOG_REPEAT_WINDOW_S)
            addr = send_and_expect_close(k, name, data, half_close)
            k.wait_log(lambda text: any(addr in line and says in line for line in text.splitlines()), 5,
                       f"{name}: a log line naming {addr} with {says!r}")
            assert k.alive(), f"kstretch died on {name}"
        assert feeder.is_alive(), "the well-behaved producer was done before the malformed input was"
        feeder.join(timeout=30)
        assert producer.wait(timeout=CLIENT_TIMEOUT_S) == 0, "the well-behaved producer failed"
        harness.wait_until(lambda: harness.count_lines(consumed_path) >= len(sent), timeout=30,
                           what="the consumer reading every record")
        assert consumer.poll() is None, "the well-behaved consumer exited"
    finally:
        for p in (producer, consumer):
            if p.poll() is None:
                p.kill()
            p.wait(timeout=10)
    records.assert_same_records(sent, records.parse_consumed(consumed_path.read_text()), PARTITIONS)

    malformed = sum(1 for _, _, says in MALFORMED.values() if says.startswith("malformed request"))
    assert k.metrics()["kstretch_protocol_errors"] == malformed
    assert k.stop() == 0


# ---------------------------------------------------------------- 6. a consumer that stops reading

# Per session kstretch holds at most its 4 MiB output watermark, a frame being
# taken whole (~2 MB here) and a read's worth: two stalled consumers and six
# producer sessions stay far below this, while ~160 MB of answers wait.
RSS_BOUND_MIB = 64
BIG_VALUE = 10_000


def big_records(first, count):
    """KEY<TAB>VALUE lines of ~10 kB values, keyed over every partition."""
    pad = b"x" * BIG_VALUE
    for i in range(first, first + count):
        yield b"key-%03d\t%07d" % (i % records.KEYS, i) + pad + b"\n"


class StreamInput(threading.Thread):
    """Writes lines from an iterator to a process's stdin, then closes it."""

    def __init__(self, proc, lines):
        super().__init__(name="stream-input", daemon=True)
        self.proc, self.lines = proc, lines
        self.error = None

    def run(self):
        try:
            for line in self.lines:
                self.proc.stdin.write(line)
        except OSError as e:
            self.error = e
        finally:
            try:
                self.proc.stdin.close()
            except OSError:
                pass


def big_producer(k, count, first=0):
    """A modern kcat producing `count` big records in ~1 MB batches."""
    p = subprocess.Popen(kcat_producer(k.bootstrap, TOPIC, "-X", "linger.ms=100", "-X", "batch.size=1000000"),
                         stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         env=harness.modern_rdkafka_env())
    feeder = StreamInput(p, big_records(first, count))
    feeder.start()
    return p, feeder


def finish(proc, feeder, what, timeout=CLIENT_TIMEOUT_S):
    feeder.join(timeout=timeout)
    assert not feeder.is_alive() and feeder.error is None, f"{what}: feeding stdin: {feeder.error}"
    rc = proc.wait(timeout=timeout)
    assert rc == 0, f"{what} exited with {rc}"


def test_a_consumer_that_stops_reading_keeps_kstretch_under_64_mib_while_200_mb_are_produced(
        start_cluster, start_kstretch):
    c, k = stretched(start_cluster, start_kstretch)
    # 40 MB first: ~3.3 MB per partition, under the ~5 MB the mock keeps, so
    # fetches from offset 0 find ~2 MB per answer (two partitions per broker).
    p, f = big_producer(k, 4000)
    finish(p, f, "the first producer")
    md = kafkawire.metadata_v12(LOCALHOST, k.listen_port, [TOPIC])
    topic = md.topic(TOPIC)

    # Two consumers send 40 fetches each (~2 MB answers: ~160 MB in all) and never
    # read: one in Fetch v4 and one in Fetch v16 (forwarded as v15 by
    # fetch.cut.through), both passed through as they arrive.
    fetchers = []
    for node_id, version in ((1, 4), (2, 16)):
        mine = [pt.partition_index for pt in topic.partitions if pt.leader_id == node_id]
        name = TOPIC if version == 4 else topic.topic_id
        s = socket.create_connection((LOCALHOST, k.broker_port(node_id)), timeout=10)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)
        body = kafkawire.fetch_request(version, [(name, pt, 0) for pt in mine], max_bytes=8 << 20,
                                       partition_max_bytes=4 << 20)
        for corr in range(40):
            s.sendall(kafkawire.encode_request(kafkawire.API_FETCH, version, corr, body))
        fetchers.append(s)

    with harness.PeakRss(k.pid) as rss:
        t0 = time.monotonic()
        p, f = big_producer(k, 16_000, first=4000)  # 160 MB more while the consumers read nothing
        finish(p, f, "the second producer", timeout=60)
        produced_in = time.monotonic() - t0
        time.sleep(0.5)
        sockets = tcp_sockets()
    print(f"kstretch peak VmRSS {rss.peak / 1024:.1f} MiB; 160 MB produced in {produced_in:.1f}s")

    # The answers wait in the consumers' sockets, and behind them, unread, in
    # kstretch's sockets to those brokers: kstretch stopped reading them.
    for s in fetchers:
        lport = s.getsockname()[1]
        assert [t for t in sockets if t.lport == lport and t.recv_q > 0], "a fetching consumer received nothing"
    for node_id in (1, 2):
        port = c.broker(node_id)["port"]
        held = [t for t in sockets if t.pport == port and k.pid in t.pids and t.recv_q > 0]
        assert held, f"kstretch read everything node {node_id} sent: no backpressure"
    # Under ASan+UBSan (KSTRETCH_SANITIZED=1, `make test-integration-asan`) RSS is mostly the
    # sanitizer's shadow memory and quarantine: the bound is for the real build.
    if os.environ.get("KSTRETCH_SANITIZED") != "1":
        assert rss.peak < RSS_BOUND_MIB * 1024, f"kstretch reached {rss.peak / 1024:.1f} MiB of RSS"
    for s in fetchers:
        s.close()
    assert kafkawire.metadata_v12(LOCALHOST, k.listen_port, [TOPIC]).topic(TOPIC).partitions


# ---------------------------------------------------------------- 7. a client that closes

def produce_v3_acks_0(corr, payload):
    """A Produce v3 request with acks=0 (no answer comes) carrying `payload` as
    partition 0's records (opaque to kstretch, which reads only the acks)."""
    w = kafkawire.Writer().string(None).int16(0).int32(1000)  # TransactionalId, Acks, TimeoutMs
    w.int32(1).string(TOPIC).int32(1).int32(0).int32(len(payload)).raw(payload)
    return kafkawire.encode_request(kafkawire.API_PRODUCE, 3, corr, w.bytes())


def test_requests_a_client_sent_just_before_closing_still_reach_the_broker(start_kstretch):
    # A producer with acks=0 writes and closes: no answer is due, but every
    # byte it sent must still be delivered. (A scripted broker: the mock
    # answers even acks=0 Produce requests, which no real broker does.)
    with FakeBroker(brokers=[(1, None)]) as fb:
        fb.handlers[kafkawire.API_PRODUCE] = lambda header, body: FakeBroker.NO_RESPONSE
        k = start_kstretch(fb.bootstrap, max_node_id=1)
        # 8 MiB, more than the sockets buffer, in frames large enough that
        # kstretch splices their bodies: every byte must still arrive in order.
        count = 128
        rng = random.Random(7)
        frames = [produce_v3_acks_0(corr, rng.randbytes((64 << 10) + rng.randrange(200 << 10)))
                  for corr in range(count)]
        with socket.create_connection((LOCALHOST, k.broker_port(1)), timeout=10) as s:
            s.sendall(b"".join(frames))
        harness.wait_until(lambda: len(fb.requests_of(kafkawire.API_PRODUCE)) >= count, timeout=10,
                           what=f"{count} Produce requests at the broker")
        got = fb.requests_of(kafkawire.API_PRODUCE)
        assert [h.correlation_id for h, _ in got] == list(range(count))
        for (h, body), frame in zip(got, frames):
            assert frame.endswith(body), f"Produce {h.correlation_id} arrived changed"
        m = k.metrics()
        assert m["kstretch_protocol_errors"] == 0
        assert m["kstretch_bytes_spliced"] > 0, m


# ---------------------------------------------------------------- 8. stopping

def test_sigterm_answers_the_requests_in_flight_closes_the_rest_and_exits_0(start_cluster, start_kstretch):
    c, k = stretched(start_cluster, start_kstretch)
    leader = c.leaders(TOPIC)[0]
    idle = kafkawire.Connection(LOCALHOST, k.broker_port(leader))
    assert idle.api_versions(version=0).error_code == 0
    busy = kafkawire.Connection(LOCALHOST, k.broker_port(leader))
    # The topic is empty: the broker holds this fetch for its full 1.5 s wait.
    busy.sock.sendall(kafkawire.encode_request(kafkawire.API_FETCH, 4, 41,
                                               kafkawire.fetch_request(4, [(TOPIC, 0, 0)], max_wait_ms=1500)))
    time.sleep(0.3)
    t0 = time.monotonic()
    k.send_signal(signal.SIGTERM)
    try:
        idle.sock.settimeout(1.0)
        assert idle.sock.recv(1) == b"", "the idle connection got bytes"
        idle_closed = time.monotonic() - t0
        # Each worker stops on its own turn; busy may sit on the other one.
        harness.wait_until(lambda: len(k.log_lines("stopping: listeners closed")) == 2, timeout=2,
                           what="both workers to stop")
        # kstretch is stopping now: a new request is not forwarded any more.
        busy.sock.sendall(kafkawire.encode_request(kafkawire.API_API_VERSIONS, 0, 42, b""))

        answer = kafkawire.Reader(busy.read_frame())
        answered = time.monotonic() - t0
        assert answer.int32() == 41, "not the answer to the fetch in flight"
        assert busy.sock.recv(1) == b"", "kstretch answered a request sent after SIGTERM"
    finally:
        idle.close()
        busy.close()
    rc = k.wait(timeout=5)
    exited = time.monotonic() - t0
    assert rc == 0
    assert idle_closed < 0.5, f"the idle connection stayed open {idle_closed:.2f}s"
    assert 0.8 < answered < 2.5, f"the fetch in flight was answered {answered:.2f}s after SIGTERM"
    # Done once the last answer left, well before shutdown.drain.ms (5 s).
    assert exited < answered + 1.0, f"kstretch exited {exited:.2f}s after SIGTERM"
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((LOCALHOST, k.listen_port), timeout=2).close()
    assert not k.log_lines("drain time over")


# ---------------------------------------------------------------- 9. limits

def test_connections_past_max_connections_are_closed_and_the_open_ones_go_on(start_cluster, start_kstretch):
    c, k = stretched(start_cluster, start_kstretch, extra_args=("--max-connections", "5"))
    conns = [kafkawire.Connection(LOCALHOST, k.listen_port) for _ in range(5)]
    try:
        for conn in conns:
            assert conn.api_versions(version=0).error_code == 0
        for _ in range(3):
            with socket.create_connection((LOCALHOST, k.listen_port), timeout=5) as extra:
                extra.settimeout(5)
                try:
                    assert extra.recv(1) == b"", "a connection past max.connections was served"
                except ConnectionResetError:
                    pass
        for conn in conns:
            assert conn.api_versions(version=0).error_code == 0, "an open connection stopped being served"
        assert k.metrics()["kstretch_connections_refused"] == 3
        assert k.log_lines("max.connections (5) open; closing new connections")
        conns.pop().close()
        harness.wait_until(lambda: k.metrics()["kstretch_connections_active"] == 4, timeout=5,
                           what="kstretch to see a connection close")
        with kafkawire.Connection(LOCALHOST, k.listen_port) as again:
            assert again.api_versions(version=0).error_code == 0, "room freed, but a new connection was refused"
    finally:
        for conn in conns:
            conn.close()


def test_out_of_descriptors_accepts_wait_without_spinning_and_resume_when_some_free(start_cluster, start_kstretch):
    c, k = stretched(start_cluster, start_kstretch)
    in_use = harness.fd_count(k.pid)
    limit = in_use + 12  # room for about 6 sessions (a client and a broker socket each)
    harness.run(["prlimit", f"--pid={k.pid}", f"--nofile={limit}:{limit}"], timeout=10)
    served, waiting = [], None
    try:
        for _ in range(20):
            conn = kafkawire.Connection(LOCALHOST, k.listen_port, timeout=1.0)
            try:
                conn.api_versions(version=0)
                served.append(conn)
            except (socket.timeout, OSError, kafkawire.WireError):
                waiting = conn  # accepted by the kernel, not by kstretch: no descriptor left
                break
        assert waiting is not None, f"{len(served)} connections served under a limit of {limit} descriptors"
        assert k.log_lines("accept failed: Too many open files; existing connections go on")
        cpu0 = harness.cpu_seconds(k.pid)
        t0 = time.monotonic()
        time.sleep(1.0)
        for conn in served:
            assert conn.api_versions(version=0).error_code == 0, "an open connection stopped being served"
        assert harness.cpu_seconds(k.pid) - cpu0 < 0.3 * (time.monotonic() - t0), "kstretch spins on accept"
        served.pop().close()
        served.pop().close()
        waiting.sock.settimeout(5.0)
        # The waiting connection's request is answered once descriptors are free again.
        (size,) = struct.unpack(">i", waiting._recv_exact(4))
        assert size > 0
    finally:
        for conn in served:
            conn.close()
        if waiting:
            waiting.close()
