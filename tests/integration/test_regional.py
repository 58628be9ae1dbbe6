"""kstretch in regional mode (issue 15, part 1) between real clients and the
stretched-cluster simulator: three regions of two brokers (us 5 ms and ap 10 ms
away), topic `t` of 12 partitions with RF 3, each partition's eu replica the
mock's follower. Two kstretch nodes serve region eu; clients are given one of
them and see a cluster made of exactly those two nodes.
"""
import collections
import json
import os
import socket
import struct
import subprocess
import threading
import time

import pytest

import harness
import kafkawire
import records

REGIONS = "eu:2,us:2,ap:2"
RTT_MS = "us=5,ap=10"
TOPIC = "t"
PARTITIONS = 12
COUNT = 3000
CLIENT_TIMEOUT_S = 90
LOCALHOST = "127.0.0.1"
POOL = 2
WORKERS = 2


def kcat(*args):
    return [harness.kcat_path(), *args]


def regional_pair(start_cluster, start_kstretch, pool=POOL):
    """The simulator, and two regional kstretch nodes for eu (ids 1 and 2) that list each other."""
    c = start_cluster(regions=REGIONS, rtt_ms=RTT_MS, topics=[f"{TOPIC}:{PARTITIONS}:3"], follower_region="eu")
    p1, p2 = harness.free_ports(2, LOCALHOST)
    nodes = f"1@{LOCALHOST}:{p1},2@{LOCALHOST}:{p2}"
    ks = []
    for node_id, port in ((1, p1), (2, p2)):
        args = ("--mode", "regional", "--region", "eu", "--regional-nodes", nodes, "--node-id", str(node_id),
                "--regional-upstream-connections", str(pool))
        k = start_kstretch(c, workers=WORKERS, extra_args=args, listen_port=port)
        ks.append(k)
    return c, ks


def read_frame(s):
    def exactly(n):
        buf = b""
        while len(buf) < n:
            b = s.recv(n - len(buf))
            if not b:
                raise AssertionError("kstretch closed the connection")
            buf += b
        return buf
    (size,) = struct.unpack(">i", exactly(4))
    return exactly(size)


def metadata(k, topics=(TOPIC,)):
    """A Metadata v12 answer from kstretch node k, decoded."""
    with socket.create_connection((LOCALHOST, k.listen_port), timeout=10) as s:
        s.sendall(kafkawire.encode_request(3, 12, 7, kafkawire.metadata_request_v12(list(topics))))
        r = kafkawire.Reader(read_frame(s))
        assert kafkawire.decode_response_header(r, 3, 12) == 7
        return kafkawire.decode_metadata_response_v12(r)


def produce(bootstrap, sent):
    env = harness.modern_rdkafka_env()
    harness.run(kcat("-b", bootstrap, "-P", "-t", TOPIC, "-K", "\t", "-X", "acks=all", "-X",
                     "enable.idempotence=true"),
                input="".join(f"{key}\t{v}\n" for key, v in sent).encode(), env=env, timeout=CLIENT_TIMEOUT_S,
                what="kcat producer")


def consume_partition(bootstrap, partition):
    """Every record of one partition, read with manual assignment (-p) from the beginning to its end."""
    r = harness.run(kcat("-b", bootstrap, "-C", "-t", TOPIC, "-p", str(partition), "-o", "beginning", "-e",
                         "-f", harness.KCAT_FORMAT),
                    env=harness.modern_rdkafka_env(), timeout=CLIENT_TIMEOUT_S, what=f"kcat consumer -p {partition}")
    return records.parse_consumed(r.stdout.decode())


def test_kcat_produces_through_one_regional_node_and_reads_back_through_the_other(start_cluster, start_kstretch):
    c, (k1, k2) = regional_pair(start_cluster, start_kstretch)
    sent = [(f"key-{i % 97}", f"value-{i}") for i in range(COUNT)]
    produce(k1.bootstrap, sent)
    got = []
    for p in range(PARTITIONS):
        got += consume_partition(k2.bootstrap, p)
    # Exactly the records produced, each key on one partition, per-partition order kept.
    assert sorted((k, v) for _, _, k, v in got) == sorted(sent)
    by_key = collections.defaultdict(set)
    for p, _, key, _ in got:
        by_key[key].add(p)
    assert all(len(ps) == 1 for ps in by_key.values()), "a key landed on two partitions"
    for p in range(PARTITIONS):
        offsets = [o for q, o, _, _ in got if q == p]
        values = [int(v.split("-")[1]) for q, _, _, v in got if q == p]
        assert offsets == sorted(offsets) and values == sorted(values), f"partition {p} out of order"
    for k in (k1, k2):
        m = k.metrics()
        assert m["kstretch_protocol_errors"] == 0
        assert m["kstretch_regional_fragments_failed"] == 0


def test_clients_see_only_the_two_regional_nodes_and_the_same_leaders_on_both(start_cluster, start_kstretch):
    c, (k1, k2) = regional_pair(start_cluster, start_kstretch)
    m1, m2 = metadata(k1), metadata(k2)
    for k, m in ((k1, m1), (k2, m2)):
        assert sorted((b.node_id, b.host, b.port, b.rack) for b in m.brokers) == \
            sorted([(1, LOCALHOST, k1.listen_port, "eu"), (2, LOCALHOST, k2.listen_port, "eu")]), \
            f"{k.proc.name} shows brokers other than the two eu nodes: {m.brokers}"
        assert m.controller_id == 1
        (t,) = m.topics
        assert t.name == TOPIC and t.error_code == 0 and len(t.partitions) == PARTITIONS
        for p in t.partitions:
            assert p.leader_id in (1, 2)
            assert sorted(p.replica_nodes) == [1, 2] and p.replica_nodes[0] == p.leader_id
            assert set(p.isr_nodes) <= {1, 2}
    leaders1 = {p.partition_index: p.leader_id for p in m1.topics[0].partitions}
    leaders2 = {p.partition_index: p.leader_id for p in m2.topics[0].partitions}
    assert leaders1 == leaders2, "the two nodes disagree on the virtual leaders"
    assert set(leaders1.values()) == {1, 2}, "12 partitions over two nodes all on one of them"
    # Epochs pass through from the real leaders.
    real = {p["partition"]: p for p in c.topic(TOPIC)["partitions"]}
    assert set(leaders1) == set(real)


def fetch_all(port, corr):
    """One sessionless Fetch v12 of every partition from offset 0 on a new
    connection; returns (correlation id, top-level error, session id)."""
    with socket.create_connection((LOCALHOST, port), timeout=30) as s:
        parts = [(TOPIC, p, 0) for p in range(PARTITIONS)]
        s.sendall(kafkawire.encode_request(1, 12, corr, kafkawire.fetch_request(12, parts, max_wait_ms=100)))
        r = kafkawire.Reader(read_frame(s))
        got = kafkawire.decode_response_header(r, 1, 12)
        r.int32("throttle_time_ms")
        return got, r.int16("error_code"), r.int32("session_id")


def test_fifty_clients_share_the_pool_and_fetches_go_to_eu_replicas(start_cluster, start_kstretch):
    c, (k1, k2) = regional_pair(start_cluster, start_kstretch)
    produce(k1.bootstrap, [(f"k{i}", f"v{i}") for i in range(600)])
    before = k2.metrics()
    # 50 clients at once, each fetching every partition (split over the brokers holding them).
    results = [None] * 50
    peers = harness.PeerWatcher(k2.pid, interval=0.01)

    def one(i):
        results[i] = fetch_all(k2.listen_port, 1000 + i)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    time.sleep(0.2)
    peers.stop()
    assert results == [(1000 + i, 0, 0) for i in range(50)], "a client got another's answer, an error or a session"
    # Upstream connections per broker: at most the pool size per worker, however many clients.
    ports = {b["port"]: b["id"] for b in c.brokers}
    per_broker = collections.Counter(ports[p] for h, p in peers.peers if p in ports)
    assert per_broker and max(per_broker.values()) <= WORKERS * POOL, per_broker
    m = k2.metrics()
    assert m["kstretch_regional_upstream_connections"] <= len(c.brokers) * WORKERS * POOL
    # Every partition has an eu replica: all Fetch bytes came from eu brokers.
    regions = {b["id"]: b["region"] for b in c.brokers}
    eu_ports = {b["port"] for b in c.brokers if b["region"] == "eu"}
    fetched_from = {p for h, p in peers.peers if p in ports}
    assert m["kstretch_fetch_bytes_local"] > before["kstretch_fetch_bytes_local"]
    assert m["kstretch_fetch_bytes_remote"] == before["kstretch_fetch_bytes_remote"], \
        f"Fetch bytes from outside eu (brokers {sorted(regions)})"
    assert eu_ports & fetched_from
    assert m["kstretch_protocol_errors"] == 0 and m["kstretch_regional_fragments_failed"] == 0


def test_large_record_batches_are_split_and_merged_and_copied_at_most_once(start_cluster, start_kstretch):
    """150 KiB records through both regional nodes and back: every record
    intact, and kstretch_bytes_copied shows record bytes copied at most once
    on the way in and once on the way out (README "Regional mode")."""
    c, (k1, k2) = regional_pair(start_cluster, start_kstretch)
    value = "x" * (150 << 10)
    sent = [(f"big-{i}", f"{i}-{value}") for i in range(48)]
    before1, before2 = k1.metrics(), k2.metrics()
    harness.run(kcat("-b", k1.bootstrap, "-P", "-t", TOPIC, "-K", "\t", "-X", "acks=all", "-X", "linger.ms=50",
                     "-X", "batch.size=1000000", "-X", "message.max.bytes=2000000"),
                input="".join(f"{key}\t{v}\n" for key, v in sent).encode(), env=harness.modern_rdkafka_env(),
                timeout=CLIENT_TIMEOUT_S, what="kcat producer of 150 KiB records")
    got = []
    for p in range(PARTITIONS):
        got += consume_partition(k2.bootstrap, p)
    assert sorted((k, v) for _, _, k, v in got) == sorted(sent)
    m1, m2 = k1.metrics(), k2.metrics()

    def grew(name):  # clients go to each partition's virtual leader: both nodes carry traffic
        return sum(m[name] - b[name] for m, b in ((m1, before1), (m2, before2)))
    produced, fetched, copied = grew("kstretch_bytes_from_clients"), grew("kstretch_bytes_from_brokers"), \
        grew("kstretch_bytes_copied")
    assert produced > len(sent) * (150 << 10)
    assert fetched > len(sent) * (150 << 10)
    # At most once: what was read before a frame's size was known is copied into its
    # block, the rest is read straight into it, and batches are referenced from there
    # (zero copies, as mapped mode does, is still to come: README "Regional mode").
    assert 0 < copied <= produced + fetched, f"copied {copied} of {produced} produced and {fetched} fetched"
    for m in (m1, m2):
        assert m["kstretch_protocol_errors"] == 0 and m["kstretch_regional_fragments_failed"] == 0


def test_a_preferred_read_replica_from_a_broker_reaches_the_client_as_none(start_cluster, start_kstretch):
    """A broker answering a part of a Fetch with PreferredReadReplica (a real
    node id) must not hand the client an id outside its virtual cluster: the
    merge writes -1 there. The mock redirects to a configured follower
    whatever the fetch's RackId says: each eu-led partition gets its us
    replica as follower, so kstretch's fetch to the eu leader is answered
    with the us broker's id."""
    c, (k1, _) = regional_pair(start_cluster, start_kstretch)
    brokers = {b["id"]: b for b in c.brokers}
    redirected = []
    for p in c.topic(TOPIC)["partitions"]:
        if brokers[p["leader"]]["region"] == "eu":
            us = next(r for r in p["replicas"] if brokers[r]["region"] == "us")
            c.must(f"follower {TOPIC} {p['partition']} {us}")
            redirected.append(p["partition"])
    assert redirected, "no partition led from eu"
    metadata(k1)  # kstretch learns the partitions
    with socket.create_connection((LOCALHOST, k1.listen_port), timeout=30) as s:
        parts = [(TOPIC, p, 0) for p in range(PARTITIONS)]
        s.sendall(kafkawire.encode_request(1, 12, 5, kafkawire.fetch_request(12, parts, max_wait_ms=100)))
        frame = read_frame(s)
    decoder = os.path.join(harness.BUILD, "protocol", "kstretch-decode")
    r = harness.run([decoder, "--response", "--api", "1", "--version", "12", "--compact"],
                    input=struct.pack(">i", len(frame)) + frame, timeout=30, what="kstretch-decode")
    answer = json.loads(r.stdout.decode().splitlines()[0])
    body = answer.get("body", answer)
    seen = {}
    for t in body["Responses"]:
        for p in t["Partitions"]:
            seen[p["PartitionIndex"]] = p["PreferredReadReplica"]
    assert sorted(seen) == list(range(PARTITIONS))
    assert set(seen.values()) == {-1}, f"a real broker id reached the client: {seen}"
    assert k1.log_lines("answered with a PreferredReadReplica")


def test_a_broker_answer_that_arrives_in_two_parts_is_answered_and_the_worker_goes_on(start_kstretch):
    """A small answer whose size and correlation id came before the rest (two TCP
    segments half a second apart) waits in the shared connection's buffer for its
    rest: the client gets it whole, and the worker stays responsive (it used to peek
    the same incomplete frame again for ever, and never stopped)."""
    from fakebroker import FakeBroker
    describe_configs = 32
    with FakeBroker(brokers=[(1, "eu-a")]) as fb:
        def trickled(header, body):
            frame = kafkawire.encode_response(describe_configs, 0, header.correlation_id, b"\0" * 8)
            return FakeBroker.Trickle([frame[:8], frame[8:]], 0.5)
        fb.handlers[describe_configs] = trickled
        (port,) = harness.free_ports(1, LOCALHOST)
        k = start_kstretch(fb.bootstrap, workers=1, listen_port=port,
                           extra_args=("--mode", "regional", "--region", "eu", "--regional-nodes",
                                       f"1@{LOCALHOST}:{port}", "--node-id", "1"))
        for _ in range(2):
            with kafkawire.Connection(LOCALHOST, port, timeout=10) as c:
                r = c.request(describe_configs, 0, b"\0\0\0\0")  # no resources: the answer is the broker's
                assert r.int32("throttle_time_ms") == 0 and r.int32("results") == 0
        assert k.metrics()["kstretch_protocol_errors"] == 0
