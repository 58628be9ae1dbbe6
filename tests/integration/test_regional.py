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


def regional_pair(start_cluster, start_kstretch, pool=POOL, topics=(), workers=WORKERS, extra=()):
    """The simulator, and two regional kstretch nodes for eu (ids 1 and 2) that list each other."""
    c = start_cluster(regions=REGIONS, rtt_ms=RTT_MS, topics=[f"{TOPIC}:{PARTITIONS}:3", *topics],
                      follower_region="eu")
    p1, p2 = harness.free_ports(2, LOCALHOST)
    nodes = f"1@{LOCALHOST}:{p1},2@{LOCALHOST}:{p2}"
    ks = []
    for node_id, port in ((1, p1), (2, p2)):
        args = ("--mode", "regional", "--region", "eu", "--regional-nodes", nodes, "--node-id", str(node_id),
                "--regional-upstream-connections", str(pool), *extra)
        k = start_kstretch(c, workers=workers, extra_args=args, listen_port=port)
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


CLIENTS = 200


def produce_then_fetch(port, i, barrier):
    """Client i on a connection of its own: Metadata, then once all CLIENTS
    are connected, Produce v9 (acks=-1) of one record naming it to partition i % PARTITIONS,
    then Fetch v12 of that partition from the offset the answer gave, until
    its record is there (bounded). Returns (partition, offset, what came back
    at that offset or an error string); holds the connection until every
    client is done."""
    p = i % PARTITIONS
    key, value = f"client-{i}".encode(), f"from client {i} of {CLIENTS}".encode()
    with socket.create_connection((LOCALHOST, port), timeout=60) as s:
        # As a client does: Metadata first (the node learns the leaders from it).
        s.sendall(kafkawire.encode_request(3, 12, 1, kafkawire.metadata_request_v12([TOPIC])))
        r = kafkawire.Reader(read_frame(s))
        if kafkawire.decode_response_header(r, 3, 12) != 1:
            return p, None, "Metadata answer with another correlation id"
        barrier.wait(60)
        s.sendall(kafkawire.encode_request(0, 9, 10_000 + i, kafkawire.produce_request_v9(
            [(TOPIC, p, kafkawire.record_batch([(key, value)]))], acks=-1)))
        r = kafkawire.Reader(read_frame(s))
        if kafkawire.decode_response_header(r, 0, 9) != 10_000 + i:
            return p, None, "Produce answer with another correlation id"
        answer = kafkawire.decode_produce_response_v9(r)
        if [(t, q, err) for t, q, err, _ in answer] != [(TOPIC, p, 0)]:
            return p, None, f"Produce answered {answer}"
        base = answer[0][3]
        got = None
        deadline = time.monotonic() + 20
        for attempt in range(200):  # the eu follower may be a moment behind the leader
            corr = 20_000 + i * 1000 + attempt
            s.sendall(kafkawire.encode_request(1, 12, corr, kafkawire.fetch_request(12, [(TOPIC, p, base)],
                                                                                   max_wait_ms=200)))
            r = kafkawire.Reader(read_frame(s))
            if kafkawire.decode_response_header(r, 1, 12) != corr:
                return p, base, "Fetch answer with another correlation id"
            err, session, parts = kafkawire.decode_fetch_response_v12(r)
            if err or session or [(t, q) for t, q, *_ in parts] != [(TOPIC, p)] or parts[0][2]:
                return p, base, f"Fetch answered error {err}, session {session}, {[x[:4] for x in parts]}"
            got = parts[0][4]
            if got or time.monotonic() > deadline:
                break
        barrier.wait(60)
        if not got:
            return p, base, "no records at the offset Produce gave"
        # The batch at `base` carries this client's key and value (and nobody else's).
        batch_base, = struct.unpack(">q", got[:8])
        return p, base, ("ok" if batch_base == base and key in got[:200] and value in got[:200]
                         else f"the batch at {base} is not this client's: {got[:80]!r}")


def test_two_hundred_clients_share_the_pool_and_fetches_go_to_eu_replicas(start_cluster, start_kstretch):
    """200 client connections open at once on one regional node, each producing
    a record of its own and reading it back: every client gets its own answers,
    kstretch's connections to each broker stay within workers x pool (sampled
    from /proc every 10 ms), and every Fetch byte comes from an eu replica."""
    c, (k1, k2) = regional_pair(start_cluster, start_kstretch)
    before = k2.metrics()
    snapshots = []  # kstretch's TCP connections when all clients have arrived at a barrier
    barrier = threading.Barrier(CLIENTS, action=lambda: snapshots.append(harness.tcp_connections(k2.pid)))
    results = [None] * CLIENTS
    peers = harness.PeerWatcher(k2.pid, interval=0.01)

    def one(i):
        try:
            results[i] = produce_then_fetch(k2.listen_port, i, barrier)
        except Exception as e:  # noqa: BLE001 - reported per client below
            results[i] = (i % PARTITIONS, None, f"{type(e).__name__}: {e}")
            barrier.abort()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    peers.stop()
    bad = [(i, r) for i, r in enumerate(results) if not r or r[2] != "ok"]
    # A client that fails breaks the barrier for the others: show it first.
    bad.sort(key=lambda x: "BrokenBarrierError" in str(x[1]))
    assert not bad, f"{len(bad)} of {CLIENTS} clients: {bad[:5]}"
    # Each client's record has an offset of its own in its partition.
    offsets = collections.Counter((p, base) for p, base, _ in results)
    assert len(offsets) == CLIENTS, [k for k, n in offsets.items() if n > 1][:5]
    # When every client had its answers (the second barrier), kstretch held
    # all CLIENTS connections from them; its connections to each broker never
    # went above the pool size per worker.
    ports = {b["port"]: b["id"] for b in c.brokers}
    assert len(snapshots) == 2 and peers.samples >= 1
    from_clients = sum(n for (h, port), n in snapshots[1].items() if port not in ports)
    per_broker = collections.Counter()
    for seen in (peers.most, *snapshots):
        for (h, port), n in seen.items():
            if port in ports:
                per_broker[ports[port]] = max(per_broker[ports[port]], n)
    print(f"{from_clients} client connections open at once; most connections to each broker at once "
          f"{per_broker}; pool {POOL} x {WORKERS} workers, and as many for Fetch")
    assert from_clients >= CLIENTS
    assert per_broker and max(per_broker.values()) <= 2 * WORKERS * POOL, per_broker
    m = k2.metrics()
    assert m["kstretch_connections_accepted"] - before["kstretch_connections_accepted"] >= CLIENTS
    assert m["kstretch_regional_upstream_connections"] <= len(c.brokers) * 2 * WORKERS * POOL
    # Every partition has an eu replica: all Fetch bytes came from eu brokers.
    eu_ports = {b["port"] for b in c.brokers if b["region"] == "eu"}
    fetched_from = {p for h, p in peers.peers if p in ports}
    assert m["kstretch_fetch_bytes_local"] > before["kstretch_fetch_bytes_local"]
    assert m["kstretch_fetch_bytes_remote"] == before["kstretch_fetch_bytes_remote"], "Fetch bytes from outside eu"
    assert eu_ports & fetched_from
    assert m["kstretch_protocol_errors"] == 0 and m["kstretch_regional_fragments_failed"] == 0


def test_large_record_batches_are_split_and_merged_never_copied_on_the_way_in(start_cluster, start_kstretch):
    """150 KiB records through both regional nodes and back: every record
    intact. On the way in (Produce frames of up to a MB, many reads each)
    kstretch_bytes_copied grows by header and structure bytes only, far less
    than the record bytes; on the way out too (Fetch answers are read into
    blocks and their records referenced from there: README "Regional mode")."""
    c, (k1, k2) = regional_pair(start_cluster, start_kstretch)
    value = "x" * (150 << 10)
    sent = [(f"big-{i}", f"{i}-{value}") for i in range(48)]
    before1, before2 = k1.metrics(), k2.metrics()
    harness.run(kcat("-b", k1.bootstrap, "-P", "-t", TOPIC, "-K", "\t", "-X", "acks=all", "-X", "linger.ms=50",
                     "-X", "batch.size=1000000", "-X", "message.max.bytes=2000000"),
                input="".join(f"{key}\t{v}\n" for key, v in sent).encode(), env=harness.modern_rdkafka_env(),
                timeout=CLIENT_TIMEOUT_S, what="kcat producer of 150 KiB records")
    mid1, mid2 = k1.metrics(), k2.metrics()
    got = []
    for p in range(PARTITIONS):
        got += consume_partition(k2.bootstrap, p)
    assert sorted((k, v) for _, _, k, v in got) == sorted(sent)
    m1, m2 = k1.metrics(), k2.metrics()

    def grew(name, now=(m1, m2), then=(before1, before2)):  # clients go to each partition's virtual leader
        return sum(m[name] - b[name] for m, b in zip(now, then))
    produced, copied_in = grew("kstretch_bytes_from_clients", (mid1, mid2)), grew("kstretch_bytes_copied", (mid1, mid2))
    fetched, copied_out = grew("kstretch_bytes_from_brokers", then=(mid1, mid2)), \
        grew("kstretch_bytes_copied", then=(mid1, mid2))
    print(f"produced {produced} bytes, copied {copied_in} on the way in; fetched {fetched}, copied {copied_out}")
    assert produced > len(sent) * (150 << 10)
    assert fetched > len(sent) * (150 << 10)
    # Record batches go to the brokers from where they were read: what is copied is
    # the requests' structure and the brokers' (small) answers, not their records.
    assert 0 < copied_in < produced // 100, f"copied {copied_in} of {produced} produced"
    # And Fetch answers reach the client from where they were read (before: held
    # whole, copied out of the socket buffer for up to all of their bytes).
    assert copied_out < fetched // 100, f"copied {copied_out} of {fetched} fetched"
    for m in (m1, m2):
        assert m["kstretch_protocol_errors"] == 0 and m["kstretch_regional_fragments_failed"] == 0


def test_small_produce_frames_spanning_two_reads_reach_the_brokers_with_no_record_byte_copied(start_cluster,
                                                                                                start_kstretch):
    """Produce v9 frames under 64 KiB (a batch of about 4 KiB for each of the 12
    partitions, split over the six brokers), each sent in two parts so that
    its bytes span two reads: every partition answered without error, every
    record read back intact through the other node, and kstretch_bytes_copied
    grows by header and structure bytes only, far less than the record bytes
    (before, each frame was copied whole out of the socket buffer)."""
    c, (k1, k2) = regional_pair(start_cluster, start_kstretch)
    metadata(k1)  # the node learns the leaders
    before = k1.metrics()
    sent, record_bytes, frame_bytes = [], 0, 0
    with socket.create_connection((LOCALHOST, k1.listen_port), timeout=60) as s:
        for n in range(20):
            parts = []
            for p in range(PARTITIONS):
                recs = [(f"s{n}-{p}-{i}".encode(), f"{n}-{p}-{i}-{'y' * 400}".encode()) for i in range(10)]
                sent += [(k.decode(), v.decode()) for k, v in recs]
                batch = kafkawire.record_batch(recs)
                record_bytes += len(batch)
                parts.append((TOPIC, p, batch))
            frame = kafkawire.encode_request(0, 9, 100 + n, kafkawire.produce_request_v9(parts, acks=-1))
            assert len(frame) < 64 << 10
            frame_bytes += len(frame)
            cut = len(frame) // 2 + 7  # inside a record batch
            s.sendall(frame[:cut])
            time.sleep(0.02)
            s.sendall(frame[cut:])
            r = kafkawire.Reader(read_frame(s))
            assert kafkawire.decode_response_header(r, 0, 9) == 100 + n
            answer = kafkawire.decode_produce_response_v9(r)
            assert sorted((t, q, err) for t, q, err, _ in answer) == [(TOPIC, p, 0) for p in range(PARTITIONS)]
    m = k1.metrics()
    copied = m["kstretch_bytes_copied"] - before["kstretch_bytes_copied"]
    print(f"{frame_bytes} bytes of Produce frames ({record_bytes} of record batches): copied {copied}")
    assert 0 < copied < record_bytes // 10, f"copied {copied} for {record_bytes} bytes of record batches"
    got = []
    for p in range(PARTITIONS):
        got += consume_partition(k2.bootstrap, p)
    assert sorted((k, v) for _, _, k, v in got) == sorted(sent)
    for k in (k1, k2):
        m = k.metrics()
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


def test_a_split_fetch_answer_stays_within_the_clients_max_bytes(start_cluster, start_kstretch):
    """Each part of a split Fetch asks its broker for a share of the client's
    MaxBytes, so the merged answer is not parts x MaxBytes (librdkafka refuses
    an answer above receive.message.max.bytes). About 3 MB in batches of up to
    64 KiB over 12 partitions, read in one Fetch of MaxBytes 64 KiB from two eu
    brokers: at most 64 KiB and a batch per part more (a broker adds batches
    until it has its MaxBytes, and returns a first batch whole: KIP-74); asked
    for all 64 KiB, each broker would return about three times that."""
    c, (k1, _) = regional_pair(start_cluster, start_kstretch)
    value = "v" * 1000
    sent = [(f"k{i}", f"{i}-{value}") for i in range(3000)]
    harness.run(kcat("-b", k1.bootstrap, "-P", "-t", TOPIC, "-K", "\t", "-X", "acks=all", "-X", "batch.size=65536",
                     "-X", "linger.ms=200"),
                input="".join(f"{key}\t{v}\n" for key, v in sent).encode(), env=harness.modern_rdkafka_env(),
                timeout=CLIENT_TIMEOUT_S, what="kcat producer")
    eu = [b["id"] for b in c.brokers if b["region"] == "eu"]
    max_bytes = 64 << 10
    with socket.create_connection((LOCALHOST, k1.listen_port), timeout=30) as s:
        parts = [(TOPIC, p, 0) for p in range(PARTITIONS)]
        s.sendall(kafkawire.encode_request(1, 12, 9, kafkawire.fetch_request(
            12, parts, max_wait_ms=100, max_bytes=max_bytes, partition_max_bytes=1 << 20)))
        frame = read_frame(s)
    r = kafkawire.Reader(frame)
    assert kafkawire.decode_response_header(r, 1, 12) == 9
    err, _, got = kafkawire.decode_fetch_response_v12(r)
    records_bytes = sum(len(x[4] or b"") for x in got)
    batch_max = 0  # the largest record batch in the answer: what a broker may add beyond its MaxBytes
    for x in got:
        at, rec = 0, x[4] or b""
        while at + 12 <= len(rec):
            length = struct.unpack(">i", rec[at + 8:at + 12])[0] + 12
            batch_max, at = max(batch_max, length), at + length
    print(f"one Fetch of MaxBytes {max_bytes:,} over {len(eu)} eu brokers: {len(frame):,} bytes, {records_bytes:,} of "
          f"records")
    assert err == 0 and all(x[2] == 0 for x in got)
    assert records_bytes >= max_bytes // 2 and batch_max < max_bytes, "too little to tell"
    assert records_bytes <= max_bytes + len(eu) * batch_max, \
        f"{records_bytes:,} bytes of records answered to a Fetch of MaxBytes {max_bytes:,}"


def long_poll_and_produce(k, c, max_wait_ms):
    """On a node of one worker with one connection per broker: client A's
    Fetch of an empty partition (MaxWaitMs max_wait_ms, MinBytes 1) goes to
    broker X; then client B's Produce to a partition X leads takes the same
    shared connection. Returns (A's answer time, B's answer time) in s."""
    brokers = {b["id"]: b for b in c.brokers}
    parts = c.topic(TOPIC)["partitions"]
    empty = next(p for p in parts if p["follower"] in brokers and brokers[p["follower"]]["region"] == "eu")
    x = empty["follower"]  # where the node reads `empty` from: its eu replica
    led = next(p for p in parts if p["leader"] == x and p["partition"] != empty["partition"])
    metadata(k)
    times = {}

    def fetcher():
        with socket.create_connection((LOCALHOST, k.listen_port), timeout=30) as s:
            t0 = time.monotonic()
            s.sendall(kafkawire.encode_request(1, 12, 1, kafkawire.fetch_request(
                12, [(TOPIC, empty["partition"], 0)], max_wait_ms=max_wait_ms)))
            read_frame(s)
            times["fetch"] = time.monotonic() - t0

    a = threading.Thread(target=fetcher)
    a.start()
    time.sleep(0.3)  # A's Fetch is at the broker
    with socket.create_connection((LOCALHOST, k.listen_port), timeout=30) as s:
        t0 = time.monotonic()
        s.sendall(kafkawire.encode_request(0, 9, 2, kafkawire.produce_request_v9(
            [(TOPIC, led["partition"], kafkawire.record_batch([(b"b", b"b")]))], acks=1)))
        r = kafkawire.Reader(read_frame(s))
        times["produce"] = time.monotonic() - t0
        assert kafkawire.decode_response_header(r, 0, 9) == 2
        assert [e for _, _, e, _ in kafkawire.decode_produce_response_v9(r)] == [0]
    a.join(30)
    return times["fetch"], times["produce"]


def test_a_waiting_fetch_holds_neither_a_produce_nor_its_client_beyond_the_fetch_wait_cap(start_cluster,
                                                                                         start_kstretch):
    """A broker answers a connection's requests in order and holds a Fetch
    until MinBytes or MaxWaitMs. On one worker with one connection per broker:
    client A's Fetch (MaxWaitMs 3000) of an idle partition, then client B's
    Produce to a partition the same broker leads. B's Produce takes the
    broker's other connection (Fetches have their own) and is answered at
    once; A's Fetch part asked the broker to wait at most
    regional.fetch.wait.max.ms (300 here), so A is answered, empty, soon
    after that. (Before: B waited 2.7 s behind A, and A 3 s.)"""
    c, (k1, _) = regional_pair(start_cluster, start_kstretch, pool=1, workers=1,
                               extra=("--regional-fetch-wait-max-ms", "300"))
    fetch_s, produce_s = long_poll_and_produce(k1, c, 3000)
    print(f"A's Fetch answered in {fetch_s:.2f} s, B's Produce in {produce_s:.2f} s")
    assert produce_s < 0.5, f"B's Produce waited {produce_s:.2f} s behind A's Fetch"
    assert 0.25 <= fetch_s < 1.5, f"A's Fetch answered in {fetch_s:.2f} s"


def produce_one(k, partition, value):
    """One record to `partition` through node k (Produce v9, acks=1)."""
    with socket.create_connection((LOCALHOST, k.listen_port), timeout=30) as s:
        s.sendall(kafkawire.encode_request(0, 9, 5, kafkawire.produce_request_v9(
            [(TOPIC, partition, kafkawire.record_batch([(b"k", value)]))], acks=1)))
        r = kafkawire.Reader(read_frame(s))
        assert kafkawire.decode_response_header(r, 0, 9) == 5
        assert [e for _, _, e, _ in kafkawire.decode_produce_response_v9(r)] == [0]


def test_an_idle_brokers_fetch_part_does_not_hold_an_answer_another_broker_has_records_for(start_cluster,
                                                                                          start_kstretch):
    """A consumer reads partition A (its eu replica on broker X) and partition
    B (on eu broker Y), and only A gets records. A broker holds a Fetch part
    until it has MinBytes or MaxWaitMs pass, and the client's answer waits for
    its last part: without kstretch noting that Y had nothing for this client
    last time, every poll with records for A would wait for Y's whole wait
    (regional.fetch.wait.max.ms, 1000 here). With it, Y's part asks for
    MaxWaitMs 0 while X is expected to have records; when neither is (an
    idle consumer), both wait as usual rather than polling in a loop."""
    c, (k1, _) = regional_pair(start_cluster, start_kstretch, pool=1, workers=1,
                               extra=("--regional-fetch-wait-max-ms", "1000"))
    brokers = {b["id"]: b for b in c.brokers}
    parts = [p for p in c.topic(TOPIC)["partitions"]
             if p["follower"] in brokers and brokers[p["follower"]]["region"] == "eu"]
    a = parts[0]
    b = next(p for p in parts if p["follower"] != a["follower"])
    metadata(k1)
    produce_one(k1, a["partition"], b"first")
    unheld = [k1.metrics()["kstretch_regional_fetch_parts_unheld"]]
    polls = []
    with socket.create_connection((LOCALHOST, k1.listen_port), timeout=30) as s:
        def poll(corr, a_offset):
            t0 = time.monotonic()
            s.sendall(kafkawire.encode_request(1, 12, corr, kafkawire.fetch_request(
                12, [(TOPIC, a["partition"], a_offset), (TOPIC, b["partition"], 0)], max_wait_ms=1000)))
            r = kafkawire.Reader(read_frame(s))
            assert kafkawire.decode_response_header(r, 1, 12) == corr
            err, _, got = kafkawire.decode_fetch_response_v12(r)
            assert err == 0 and [(p, e) for _, p, e, _, _ in got] == [(a["partition"], 0), (b["partition"], 0)], got
            polls.append(time.monotonic() - t0)
            unheld.append(k1.metrics()["kstretch_regional_fetch_parts_unheld"])
            return got[0][4] or b"", got[1][4] or b""

        # 1: nothing known yet: both parts wait; A answers at once, B after its wait.
        rec_a, rec_b = poll(1, 0)
        assert b"first" in rec_a and rec_b == b""
        # 2: A has a new record; Y (B) had none last time: its part does not wait.
        produce_one(k1, a["partition"], b"second")
        rec_a, rec_b = poll(2, 1)
        assert b"second" in rec_a and rec_b == b""
        # 3: nothing new: A's part waits (X had records), B's does not.
        rec_a, rec_b = poll(3, 2)
        assert rec_a == b"" and rec_b == b""
        # 4: neither broker had records last time: both wait, no poll loop.
        rec_a, rec_b = poll(4, 2)
        assert rec_a == b"" and rec_b == b""
    print("polls answered in " + ", ".join(f"{t:.2f} s" for t in polls) + f"; parts sent unheld, running: {unheld}")
    assert polls[0] >= 0.8, "the first poll should wait for B's broker (nothing is known of it yet)"
    assert polls[1] < 0.5, f"A's records waited {polls[1]:.2f} s for the idle broker's part"
    assert polls[2] >= 0.8 and polls[3] >= 0.8, "an idle consumer's polls must wait, not loop"
    assert [n - unheld[0] for n in unheld[1:]] == [0, 1, 2, 2], unheld


def test_a_produce_for_a_partition_the_node_has_not_learned_waits_for_its_metadata_and_keeps_batch_order(
        start_cluster, start_kstretch):
    """A node learns leaders from Metadata; a client that produces before the
    node saw any (here: a raw client that never asks) names a partition the
    node cannot route. Answering that batch NOT_LEADER_OR_FOLLOWER itself
    while the client's next batch, already sent, reaches the leader once the
    node has learned it, loses the first batch for an idempotent producer
    (the leader accepts a producer's first batch whatever its sequence, and
    the client counts the earlier one as written): seen with kcat through
    upstream TLS. So the node parks the request, and the session's later
    ones behind it, until its own Metadata refresh is answered, then sends
    them in order: both batches are written, in the order sent."""
    c, (k1, _) = regional_pair(start_cluster, start_kstretch)
    before = k1.metrics().get("kstretch_regional_parked", 0)
    with socket.create_connection((LOCALHOST, k1.listen_port), timeout=30) as s:
        for corr, value in ((1, b"first"), (2, b"second")):
            s.sendall(kafkawire.encode_request(0, 9, corr, kafkawire.produce_request_v9(
                [(TOPIC, 0, kafkawire.record_batch([(b"k", value)]))], acks=-1)))
            time.sleep(0.5)  # the node's own Metadata request goes and is answered meanwhile
        answers = []
        for corr in (1, 2):
            r = kafkawire.Reader(read_frame(s))
            assert kafkawire.decode_response_header(r, 0, 9) == corr
            answers += [(e, base) for _, _, e, base in kafkawire.decode_produce_response_v9(r)]
        assert [e for e, _ in answers] == [0, 0], f"answers (error, base offset): {answers}"
        assert answers[1][1] == answers[0][1] + 1, answers
        read = []  # the mock answers one batch per partition and Fetch: one Fetch per offset
        for (_, offset), value in zip(answers, (b"first", b"second")):
            got = b""
            for corr in range(3, 33):  # the eu follower it is read from may trail the leader a moment
                s.sendall(kafkawire.encode_request(1, 12, corr, kafkawire.fetch_request(
                    12, [(TOPIC, 0, offset)], max_wait_ms=100)))
                r = kafkawire.Reader(read_frame(s))
                assert kafkawire.decode_response_header(r, 1, 12) == corr
                _, _, parts = kafkawire.decode_fetch_response_v12(r)
                got = parts[0][4] or b""
                if got:
                    break
            read.append(value in got)
    assert read == [True, True], "each batch at the offset its answer gave"
    assert k1.metrics()["kstretch_regional_parked"] >= before + 1


def fetch_one(s, topic, partition, corr):
    """Fetch v12 of one partition from offset 0 on socket s: (top-level error, partition error)."""
    s.sendall(kafkawire.encode_request(1, 12, corr, kafkawire.fetch_request(12, [(topic, partition, 0)],
                                                                           max_wait_ms=50)))
    r = kafkawire.Reader(read_frame(s))
    assert kafkawire.decode_response_header(r, 1, 12) == corr
    err, _, parts = kafkawire.decode_fetch_response_v12(r)
    assert [(t, p) for t, p, *_ in parts] == [(topic, partition)]
    return err, parts[0][2]


def test_a_fetch_answered_not_leader_makes_the_node_learn_the_new_leader_itself(start_cluster, start_kstretch):
    """A partition with no eu replica is fetched from its leader. When the
    leader moves, the old one answers the node's Fetch NOT_LEADER_OR_FOLLOWER;
    the client gets that error, and the node asks a broker for Metadata
    itself, so the client's next Fetch (with no Metadata request of its own
    in between) reaches the new leader."""
    c, (k1, _) = regional_pair(start_cluster, start_kstretch, topics=["solo:6:1"])
    brokers = {b["id"]: b for b in c.brokers}
    p = next(x for x in c.topic("solo")["partitions"] if brokers[x["leader"]]["region"] != "eu")
    old = p["leader"]
    new = next(b for b in brokers if b != old and brokers[b]["region"] not in ("eu", brokers[old]["region"]))
    metadata(k1, ["solo"])  # the node learns: led from outside eu, no eu replica
    with socket.create_connection((LOCALHOST, k1.listen_port), timeout=30) as s:
        assert fetch_one(s, "solo", p["partition"], 1) == (0, 0)
        c.must(f"leader solo {p['partition']} {new}")
        assert fetch_one(s, "solo", p["partition"], 2)[1] == 6, "the old leader should answer NOT_LEADER_OR_FOLLOWER"
        k1.wait_log(lambda text: "a broker answered that it does not serve a Fetch partition" in text, 5,
                    "the node's own Metadata refresh")
        got = None
        for corr in range(3, 53):  # the refresh's answer is a round trip away (bounded: 50 tries, ~5 s)
            got = fetch_one(s, "solo", p["partition"], corr)
            if got == (0, 0):
                break
            time.sleep(0.1)
        assert got == (0, 0), f"the node still sends the Fetch to the old leader, broker {old}"
    assert k1.metrics()["kstretch_protocol_errors"] == 0


def test_produce_v13_naming_a_topic_id_the_node_does_not_know_is_answered_unknown_topic_id(start_cluster,
                                                                                           start_kstretch):
    """Produce v13 names topics by id (KIP-516). An id the node has not
    learned from Metadata is answered UNKNOWN_TOPIC_ID (100) for each of its
    partitions, as a broker would, and sent nowhere; the node refreshes its
    Metadata meanwhile."""
    c, (k1, _) = regional_pair(start_cluster, start_kstretch)
    unknown = bytes(range(1, 17))
    batch = kafkawire.record_batch([(b"k", b"v")])
    w = kafkawire.Writer().compact_string(None).int16(-1).int32(5000).compact_array_len([unknown])
    w.uuid(unknown).compact_array_len([0, 1])
    for p in (0, 1):
        w.int32(p).compact_bytes(batch).empty_tags()
    body = w.empty_tags().empty_tags().bytes()
    with socket.create_connection((LOCALHOST, k1.listen_port), timeout=30) as s:
        s.sendall(kafkawire.encode_request(0, 13, 77, body))
        frame = read_frame(s)
    decoder = os.path.join(harness.BUILD, "protocol", "kstretch-decode")
    r = harness.run([decoder, "--response", "--api", "0", "--version", "13", "--compact"],
                    input=struct.pack(">i", len(frame)) + frame, timeout=30, what="kstretch-decode")
    answer = json.loads(r.stdout.decode().splitlines()[0])
    body = answer.get("body", answer)
    assert len(body["Responses"]) == 1
    parts = body["Responses"][0]["PartitionResponses"]
    assert [(p["Index"], p["ErrorCode"]) for p in parts] == [(0, 100), (1, 100)], parts
    k1.wait_log(lambda text: "a Produce names a partition without a known leader" in text, 5, "the node's refresh")


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


# ---------------------------------------------------------------- consumer groups (issue 16)

def test_a_group_consumes_through_the_regional_node_its_find_coordinator_names_and_its_offsets_stick(
        start_cluster, start_kstretch):
    """FindCoordinator through either node names the same regional node for a
    group (jump hash of the group id over the region's nodes), at that node's
    address; the node learns the real coordinator from the answer, or looks
    it up itself when the other node was asked, and sends the group's
    requests (JoinGroup, SyncGroup, Heartbeat, OffsetCommit, OffsetFetch,
    LeaveGroup) there. A kcat balanced consumer reads every record through
    node 2 and commits; a second one in the same group then finds nothing
    left (the committed offsets were stored and read back)."""
    c, (k1, k2) = regional_pair(start_cluster, start_kstretch)
    sent = [(f"key-{i % 97}", f"value-{i}") for i in range(COUNT)]
    produce(k1.bootstrap, sent)
    group = "regional-readers"
    ports = {1: k1.listen_port, 2: k2.listen_port}
    named = set()
    for k in (k1, k2):
        for version in (1, 3):
            with kafkawire.Connection(LOCALHOST, k.listen_port, timeout=15) as conn:
                r = conn.find_coordinator(group, version=version)
            assert r.error_code == 0 and r.node_id in ports and (r.host, r.port) == (LOCALHOST, ports[r.node_id]), r
            named.add(r.node_id)
    assert len(named) == 1, f"the nodes name different coordinators for one group: {named}"

    def consume():
        # A short session timeout: the mock lets a member that left hold its
        # partitions until then (45 s by default, with or without kstretch).
        r = harness.run(kcat("-b", k2.bootstrap, "-G", group, "-X", "auto.offset.reset=earliest", "-X",
                             "session.timeout.ms=6000", "-X", "heartbeat.interval.ms=500", "-e",
                             "-f", harness.KCAT_FORMAT, TOPIC),
                        env=harness.modern_rdkafka_env(), timeout=CLIENT_TIMEOUT_S, what="kcat group consumer")
        return records.parse_consumed(r.stdout.decode())

    t0 = time.monotonic()
    got = consume()
    t1 = time.monotonic()
    assert sorted((k, v) for _, _, k, v in got) == sorted(sent)
    again = consume()
    print(f"group {group}: {len(got)} records in {t1 - t0:.1f} s, then {len(again)} in "
          f"{time.monotonic() - t1:.1f} s")
    assert again == [], f"the group's committed offsets were lost: {len(again)} records read again"
    for k in (k1, k2):
        m = k.metrics()
        assert m["kstretch_protocol_errors"] == 0 and m["kstretch_regional_fragments_failed"] == 0, m


# ---------------------------------------------------------------- requests naming several groups, and listings

def fake_pair_of_brokers():
    """Two scripted brokers, node 1 and node 2, each its own listener (so each
    knows which node it is), in one cluster."""
    from fakebroker import FakeBroker
    fbs = [FakeBroker(brokers=[(1, "eu-a")]), FakeBroker(brokers=[(2, "us-a")])]
    brokers = [kafkawire.MetadataBroker(n, LOCALHOST, fb.port, rack) for n, fb, rack in
               ((1, fbs[0], "eu-a"), (2, fbs[1], "us-a"))]
    for fb in fbs:
        fb.broker_list = brokers
        fb.api_versions.update({kafkawire.API_DESCRIBE_GROUPS: (0, 5), kafkawire.API_LIST_GROUPS: (0, 4),
                                kafkawire.API_DELETE_GROUPS: (0, 2), kafkawire.API_OFFSET_FETCH: (0, 8)})
    return fbs


def coordinator_of(group):
    """The scripted cluster's coordinators: groups a* on node 1, b* on node 2, none for the rest."""
    return {"a": 1, "b": 2}.get(group[:1])


def script_group_brokers(fbs, listed):
    """FindCoordinator (v1 for kstretch's own lookups, v4 for clients), and the
    group APIs answered by each broker for the groups it coordinates (another
    group: NOT_COORDINATOR), in reverse order, its state naming the node."""
    from fakebroker import FakeBroker
    ports = {1: fbs[0].port, 2: fbs[1].port}

    def find_coordinator(header, body):
        if header.api_version >= 4:
            _, keys = kafkawire.decode_find_coordinator_request_v4(body)
            return kafkawire.find_coordinator_response_v4([
                kafkawire.Coordinator(k, coordinator_of(k) or -1, LOCALHOST, ports.get(coordinator_of(k), -1),
                                      0 if coordinator_of(k) else 15, None) for k in keys])
        key = body.string(what="key")
        node = coordinator_of(key)
        w = kafkawire.Writer().int32(0).int16(0 if node else 15).string(None).int32(node or -1)
        return w.string(LOCALHOST).int32(ports.get(node, -1)).bytes()

    for node, fb in ((1, fbs[0]), (2, fbs[1])):
        def describe(header, body, node=node):
            groups = kafkawire.decode_describe_groups_request_v5(body)
            if "b-dead" in groups:
                return None  # the connection closes: its groups are answered COORDINATOR_NOT_AVAILABLE
            return kafkawire.describe_groups_response_v5(
                [(0, g, f"Stable@{node}") if coordinator_of(g) == node and g != "a-moved" else (16, g, "")
                 for g in reversed(groups)], throttle_time_ms=node)

        def delete(header, body, node=node):
            return kafkawire.delete_groups_response_v2(
                [(g, 0 if coordinator_of(g) == node else 16) for g in reversed(
                    kafkawire.decode_delete_groups_request_v2(body))])

        def offsets(header, body, node=node):
            return kafkawire.offset_fetch_response_v8(
                [(g, 0, [("t", 0, 100 * node + len(g))]) if coordinator_of(g) == node else (g, 16, [])
                 for g in reversed(kafkawire.decode_offset_fetch_request_v8(body))])

        def list_groups(header, body, node=node):
            states = body.compact_array(lambda: body.compact_string(what="state"), 1, what="states")
            if states == ["Dead"] and node == 2:
                return None
            return kafkawire.list_groups_response_v4([(g, "Stable") for g in listed[node]])

        fb.handlers.update({kafkawire.API_FIND_COORDINATOR: find_coordinator,
                            kafkawire.API_DESCRIBE_GROUPS: describe, kafkawire.API_DELETE_GROUPS: delete,
                            kafkawire.API_OFFSET_FETCH: offsets, kafkawire.API_LIST_GROUPS: list_groups})
    assert FakeBroker  # imported for its handlers' conventions


def groups_seen(fb, api_key, decode):
    return [sorted(decode(body)) for _, body in fb.requests_of(api_key)]


def test_requests_naming_several_groups_go_to_each_groups_coordinator_and_are_answered_in_the_clients_order(
        start_kstretch):
    """DescribeGroups, DeleteGroups and OffsetFetch v8 name several groups, each
    coordinated by its own broker: a regional node cuts them by group, sends
    each part to the coordinator it learned (from a FindCoordinator answer, or
    its own lookup) and answers every group in the client's order, whatever
    order the brokers answered in. A group whose broker answers NOT_COORDINATOR
    is passed on and looked up again; a group whose broker's connection failed
    is answered COORDINATOR_NOT_AVAILABLE (the client retries); one with no
    coordinator goes to the session's usual broker, which answers it."""
    fbs = fake_pair_of_brokers()
    try:
        script_group_brokers(fbs, {1: [], 2: []})
        (port,) = harness.free_ports(1, LOCALHOST)
        k = start_kstretch(fbs[0].bootstrap, workers=1, listen_port=port,
                           extra_args=("--mode", "regional", "--region", "eu", "--regional-nodes",
                                       f"101@{LOCALHOST}:{port}", "--node-id", "101"))
        with kafkawire.Connection(LOCALHOST, port, timeout=10) as c:
            found = c.find_coordinators_v4(["a1", "a2", "a-moved", "b1", "b2", "b-dead"])  # teaches the node
            assert {x.node_id for x in found.coordinators} == {101}, found
            r = c.request(kafkawire.API_DESCRIBE_GROUPS, 5,
                          kafkawire.describe_groups_request_v5(["a1", "b1", "a2", "zz", "a-moved"]))
            got = kafkawire.decode_describe_groups_response_v5(r)
            assert got == [(0, "a1", "Stable@1"), (0, "b1", "Stable@2"), (0, "a2", "Stable@1"), (16, "zz", ""),
                           (16, "a-moved", "")], got
            to1 = groups_seen(fbs[0], kafkawire.API_DESCRIBE_GROUPS, kafkawire.decode_describe_groups_request_v5)
            to2 = groups_seen(fbs[1], kafkawire.API_DESCRIBE_GROUPS, kafkawire.decode_describe_groups_request_v5)
            assert len(to1) == 1 and len(to2) == 1, (to1, to2)  # one part per coordinator
            assert {"a1", "a2", "a-moved"} <= set(to1[0]) and "b1" in to2[0], (to1, to2)
            assert sorted(to1[0] + to2[0]) == ["a-moved", "a1", "a2", "b1", "zz"], (to1, to2)  # zz: to one of them
            r = c.request(kafkawire.API_DELETE_GROUPS, 2, kafkawire.delete_groups_request_v2(["b2", "a1"]))
            assert kafkawire.decode_delete_groups_response_v2(r) == [("b2", 0), ("a1", 0)]
            assert groups_seen(fbs[0], kafkawire.API_DELETE_GROUPS, kafkawire.decode_delete_groups_request_v2) == [["a1"]]
            assert groups_seen(fbs[1], kafkawire.API_DELETE_GROUPS, kafkawire.decode_delete_groups_request_v2) == [["b2"]]
            r = c.request(kafkawire.API_OFFSET_FETCH, 8,
                          kafkawire.offset_fetch_request_v8([("a2", None), ("b1", [("t", [0])])]))
            assert kafkawire.decode_offset_fetch_response_v8(r) == [("a2", 0, [("t", 0, 102)]),
                                                                    ("b1", 0, [("t", 0, 202)])]
            # b-dead's broker closes the connection: a1 is still answered.
            r = c.request(kafkawire.API_DESCRIBE_GROUPS, 5, kafkawire.describe_groups_request_v5(["a1", "b-dead"]))
            assert kafkawire.decode_describe_groups_response_v5(r) == [(0, "a1", "Stable@1"), (15, "b-dead", "")]
        m = k.metrics()
        assert m["kstretch_regional_coordinator_moved"] >= 2, m  # a-moved, zz
        assert m["kstretch_regional_coordinator_unknown"] >= 1, m  # zz
        assert m["kstretch_protocol_errors"] == 0, m
    finally:
        for fb in fbs:
            fb.stop()


def test_each_regional_node_lists_the_groups_it_names_as_their_coordinator(start_kstretch):
    """ListGroups names no group: a node asks every broker and lists, of what
    they answer, the groups FindCoordinator names it the coordinator of (the
    same hash on every node). An admin client asks every node of the virtual
    cluster and so sees each group once, and a group listed by a node is one
    whose requests that node takes. A broker that fails makes the listing say
    COORDINATOR_NOT_AVAILABLE, with the other brokers' groups."""
    fbs = fake_pair_of_brokers()
    listed = {1: [f"a{i}" for i in range(12)], 2: [f"b{i}" for i in range(12)]}
    try:
        script_group_brokers(fbs, listed)
        p1, p2 = harness.free_ports(2, LOCALHOST)
        nodes = f"101@{LOCALHOST}:{p1},102@{LOCALHOST}:{p2}"
        ks = {node: start_kstretch(fbs[0].bootstrap, workers=1, listen_port=port,
                                   extra_args=("--mode", "regional", "--region", "eu", "--regional-nodes", nodes,
                                               "--node-id", str(node)))
              for node, port in ((101, p1), (102, p2))}
        by_node = {}
        for node, k in ks.items():
            with kafkawire.Connection(LOCALHOST, k.listen_port, timeout=10) as c:
                err, groups = kafkawire.decode_list_groups_response_v4(
                    c.request(kafkawire.API_LIST_GROUPS, 4, kafkawire.list_groups_request_v4()))
                assert err == 0
                by_node[node] = sorted(g for g, _ in groups)
                named = c.find_coordinators_v4(listed[1] + listed[2])
                for g in by_node[node]:
                    assert named.coordinator(g).node_id == node, (g, node)
        everything = sorted(listed[1] + listed[2])
        assert sorted(by_node[101] + by_node[102]) == everything, by_node
        assert by_node[101] and by_node[102], f"one node lists every group: {by_node}"
        with kafkawire.Connection(LOCALHOST, p1, timeout=10) as c:
            err, groups = kafkawire.decode_list_groups_response_v4(
                c.request(kafkawire.API_LIST_GROUPS, 4, kafkawire.list_groups_request_v4(["Dead"])))
        assert err == 15 and {g for g, _ in groups} <= set(listed[1]) and groups, (err, groups)
        for k in ks.values():
            assert k.metrics()["kstretch_protocol_errors"] == 0
    finally:
        for fb in fbs:
            fb.stop()


def test_a_consumers_rack_reaches_the_coordinator_as_the_region_the_virtual_cluster_puts_every_replica_in(
        start_kstretch):
    """KIP-881: rack-aware assignors match members' racks with replica racks.
    Clients of the virtual cluster see every replica on a node whose rack is
    the region, so a consumer's rack goes to the coordinator as the region:
    in its JoinGroup subscription (consumer protocol v3; a v1 subscription,
    which names none, is left as it is) and in ConsumerGroupHeartbeat (where
    a null RackId, "unchanged", stays null)."""
    from fakebroker import FakeBroker
    sub_v3 = struct.pack(">hi", 3, 1) + struct.pack(">h", 1) + b"t" + struct.pack(">iii", -1, 0, -1)
    rack = b"eu-west-1a"
    with FakeBroker(brokers=[(1, "eu-a")]) as fb:
        fb.api_versions.update({11: (0, 9), 68: (0, 1)})

        def find_coordinator(header, body):
            key = body.string(what="key")
            return kafkawire.Writer().int32(0).int16(0).string(None).int32(1).string(LOCALHOST) \
                .int32(fb.port).bytes()
        fb.handlers[kafkawire.API_FIND_COORDINATOR] = find_coordinator
        fb.handlers[11] = lambda h, r: struct.pack(">ihi", 0, 0, 1) + b"\x00\x05range\x00\x01m\x00\x01m" + \
            struct.pack(">i", 0)
        fb.handlers[68] = lambda h, r: kafkawire.Writer().int32(0).int16(0).compact_string(None) \
            .compact_string("m").int32(1).int32(3000).int8(-1).empty_tags().bytes()
        (port,) = harness.free_ports(1, LOCALHOST)
        k = start_kstretch(fb.bootstrap, workers=1, listen_port=port,
                           extra_args=("--mode", "regional", "--region", "eu", "--regional-nodes",
                                       f"1@{LOCALHOST}:{port}", "--node-id", "1"))
        protocols = [(b"range", sub_v3 + struct.pack(">h", len(rack)) + rack),
                     (b"sticky", struct.pack(">hi", 1, 1) + struct.pack(">h", 1) + b"t" + struct.pack(">ii", -1, 0))]
        join = kafkawire.Writer().string("g").int32(10000).int32(60000).string("").string(None) \
            .string("consumer").int32(len(protocols))
        for name, meta in protocols:
            join.string(name.decode()).int32(len(meta)).raw(meta)
        with kafkawire.Connection(LOCALHOST, port, timeout=10) as c:
            assert c.find_coordinator("g", version=1).error_code == 0
            c.request(11, 5, join.bytes())
            for rack_id in ("eu-west-1a", None):
                hb = kafkawire.Writer().compact_string("g").compact_string("m").int32(0).compact_string(None) \
                    .compact_string(rack_id).int32(-1).compact_array_len(["t"]).compact_string("t") \
                    .compact_string(None).compact_array_len(None).empty_tags()
                c.request(68, 0, hb.bytes())
        ((_, body),) = fb.requests_of(11)
        r = kafkawire.Reader(body)
        r.string(what="group"), r.int32("session"), r.int32("rebalance"), r.string(what="member")
        r.string(nullable=True, what="instance"), r.string(what="type")
        seen = {}
        for _ in range(r.int32("protocols")):
            name = r.string(what="name")
            seen[name] = r.take(r.int32("metadata length"))
        assert seen["range"] == sub_v3 + b"\x00\x02eu", seen["range"]
        assert seen["sticky"] == protocols[1][1], "a v1 subscription names no rack: left as it came"
        racks = []
        for _, body in fb.requests_of(68):
            r = kafkawire.Reader(body)
            r.compact_string(what="group"), r.compact_string(what="member"), r.int32("epoch")
            r.compact_string(nullable=True, what="instance")
            racks.append(r.compact_string(nullable=True, what="rack"))
        assert racks == ["eu", None], racks
        m = k.metrics()
        assert m["kstretch_regional_racks_rewritten"] == 2 and m["kstretch_protocol_errors"] == 0, m


def test_requests_for_any_broker_avoid_a_broker_whose_connects_fail(start_cluster, start_kstretch):
    """ApiVersions, Metadata and the other requests a node sends whole to "any
    broker" go to a broker chosen by session; when connects to that broker
    fail (it is down), the node sends them to the next broker instead, for
    5 s after each failure, so a new client's first requests are answered
    whichever session number it got (before, one client in six was closed
    with one broker of six down)."""
    c, (k1, _) = regional_pair(start_cluster, start_kstretch)
    down = c.brokers[1]["id"]
    c.must(f"down {down}")
    failures = 0
    for attempt in range(24):  # until a connect to the down broker failed, as a client would see it
        try:
            metadata(k1)
        except (OSError, AssertionError):
            failures += 1
        if k1.metrics()["kstretch_upstream_connect_failures"] > 0:
            break
    assert k1.metrics()["kstretch_upstream_connect_failures"] > 0, "no session's broker was the down one"
    answered = 0
    for _ in range(12):  # two sessions per broker of the six
        md = metadata(k1)
        answered += len(md.brokers) == 2
    assert answered == 12, answered
    print(f"before the node knew: {failures} of {attempt + 1} first requests failed; after: 12 of 12 answered")
