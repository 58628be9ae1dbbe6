"""Rack and region awareness through kstretch (README "Rack and region awareness").

The simulator spreads 12 partitions over eu, us and ap (RF 3, one replica per
region; leaders rotate over the regions) with RTTs eu=0, us=40, ap=120 ms.
With --follower-region us every partition led outside us has its us replica as
the mock's follower, and the mock's leaders then answer Fetch v11+ as a broker
with the rack-aware replica selector does: PreferredReadReplica = that
follower. Without it, leaders serve every fetch themselves (no selector), and
only kstretch's fetch.prefer.local can point a consumer at a local replica.

Which clients: kcat on librdkafka 2.12 and KafkaJS 2.2 (both fetch with v11+
and follow PreferredReadReplica). kafka-python 2.0 (Debian 12) speaks Fetch up
to v10: it cannot be steered, by kstretch or by a broker.
"""
import collections
import json
import os
import re
import struct
import subprocess
import threading
import time
import urllib.request

import harness
import kafkawire
import records
from fakebroker import FakeBroker

TOPIC = "orders"
PARTITIONS = 12
REGIONS = "eu:2,us:2,ap:2"
RTT_MS = {"us": 40, "ap": 120}
LOCALHOST = "127.0.0.1"
CLIENT_TIMEOUT_S = 90
PER_PARTITION = 200


def produce(k, sent, env):
    harness.run([harness.kcat_path(), "-b", k.bootstrap, "-P", "-t", TOPIC, "-K", "\t", "-X", "acks=all"],
                input="".join(f"{key}\t{v}\n" for key, v in sent).encode(), env=env, timeout=CLIENT_TIMEOUT_S,
                what="kcat producer")


def consume(k, group, env, *extra):
    r = harness.run([harness.kcat_path(), "-b", k.bootstrap, "-G", group, "-X", "auto.offset.reset=earliest", "-e",
                     "-f", harness.KCAT_FORMAT, *extra, TOPIC],
                    env=env, timeout=CLIENT_TIMEOUT_S, what="kcat consumer")
    return records.parse_consumed(r.stdout.decode())


def region_bytes(k, client_region, direction="from_broker"):
    """{broker_region: bytes} kstretch moved for clients of client_region."""
    out = {}
    pat = re.compile(r'kstretch_region_bytes\{client_region="([^"]*)",broker_region="([^"]*)",direction="([^"]*)"\}')
    for name, value in k.metrics().items():
        m = pat.fullmatch(name)
        if m and m.group(1) == client_region and m.group(3) == direction:
            out[m.group(2)] = value
    return out


def assert_complete_and_in_order(sent, consumed):
    records.assert_same_records(sent, consumed, PARTITIONS)
    by_partition = collections.defaultdict(list)
    for partition, offset, _, _ in consumed:
        by_partition[partition].append(offset)
    for partition, offsets in by_partition.items():
        assert offsets == sorted(offsets), f"partition {partition} read out of order"


def us_replica_everywhere(c):
    layout = c.topic(TOPIC)["partitions"]
    regions = {b["id"]: b["region"] for b in c.brokers}
    assert all(any(regions[r] == "us" for r in p["replicas"]) for p in layout)
    assert {regions[p["leader"]] for p in layout} == {"eu", "us", "ap"}, "leaders must be in every region"
    return regions


# ---------------------------------------------------------------- placement, with the brokers' selector

PLACEMENTS = {
    "rack": (("--rack", "us-a"), ()),
    "client-id": ((), ("-X", "client.id=app,kstretch_rack=us-a")),
    "cidr": (("--rack-cidr", "127.0.0.0/8=us-a"), ()),
}


def test_a_consumer_placed_in_us_reads_every_partition_from_us_brokers(start_cluster, start_kstretch):
    c = start_cluster(regions=REGIONS, rtt_ms=RTT_MS, topics=[f"{TOPIC}:{PARTITIONS}:3"], follower_region="us")
    us_replica_everywhere(c)
    env = harness.modern_rdkafka_env()
    sent = records.make_records("rack", PARTITIONS * PER_PARTITION)
    for name, (kstretch_args, client_args) in PLACEMENTS.items():
        k = start_kstretch(c, extra_args=kstretch_args)
        if name == "rack":
            produce(k, sent, env)
        consumed = consume(k, f"us-{name}", env, *client_args)
        assert_complete_and_in_order(sent, consumed)

        from_us = region_bytes(k, "us")
        fetched_elsewhere = {r: n for r, n in from_us.items() if r != "us"}
        # Leaders outside us answer only redirects (no records): almost every
        # byte of a client in us now comes from us brokers.
        assert from_us.get("us", 0) > 5 * sum(fetched_elsewhere.values()), (name, from_us)
        m = k.metrics()
        assert m["kstretch_fetch_rack_injected"] > 0, (name, m)
        assert m["kstretch_fetch_bytes_local"] > m["kstretch_fetch_bytes_remote"], (name, m)
        assert k.log_lines("client in rack us-a, region us (from %s)" % {
            "rack": "rack", "client-id": "client.id", "cidr": "rack.cidr"}[name]), name
        k.stop()


def test_kafkajs_placed_in_us_reads_from_us_brokers(start_cluster, start_kstretch):
    c = start_cluster(regions=REGIONS, rtt_ms=RTT_MS, topics=[f"{TOPIC}:{PARTITIONS}:3"], follower_region="us")
    us_replica_everywhere(c)
    k = start_kstretch(c, extra_args=("--rack", "us-a"))
    sent = records.make_records("kafkajs", PARTITIONS * PER_PARTITION)
    produce(k, sent, harness.modern_rdkafka_env())
    before = region_bytes(k, "us")
    r = harness.run(["node", os.path.join(harness.CLIENTS, "kafkajs_roundtrip.js"), k.bootstrap, TOPIC, "us-kafkajs",
                     "-", str(len(sent)), str(CLIENT_TIMEOUT_S - 10)],
                    env=harness.node_env(), timeout=CLIENT_TIMEOUT_S, what="kafkajs_roundtrip.js")
    assert "kafkajs 2." in harness.client_version(r.stderr)
    assert_complete_and_in_order(sent, records.parse_consumed(r.stdout.decode()))
    after = region_bytes(k, "us")
    moved = {region: after.get(region, 0) - before.get(region, 0) for region in after}
    assert moved.get("us", 0) > 5 * sum(n for region, n in moved.items() if region != "us"), moved


def test_a_consumer_of_unknown_place_is_served_as_in_plain_mapped_mode(start_cluster, start_kstretch):
    c = start_cluster(regions=REGIONS, rtt_ms=RTT_MS, topics=[f"{TOPIC}:{PARTITIONS}:3"], follower_region="us")
    k = start_kstretch(c)
    env = harness.modern_rdkafka_env()
    sent = records.make_records("plain", PARTITIONS * 50)
    produce(k, sent, env)
    assert_complete_and_in_order(sent, consume(k, "plain", env))
    m = k.metrics()
    assert m["kstretch_fetch_rack_injected"] == 0
    assert m["kstretch_fetch_redirects"] == 0
    assert not region_bytes(k, "us")
    # The admin endpoint names every broker's rack and region.
    with urllib.request.urlopen(f"http://{k.host}:{k.admin_port}/topology", timeout=5) as r:
        topo = json.loads(r.read())
    assert {(b["node_id"], b["rack"], b["region"]) for b in topo["brokers"]} == \
        {(b["id"], b["rack"], b["region"]) for b in c.brokers}


def test_a_us_follower_down_mid_consumption_loses_nothing(start_cluster, start_kstretch, tmp_path):
    c = start_cluster(regions=REGIONS, rtt_ms=RTT_MS, topics=[f"{TOPIC}:{PARTITIONS}:3"], follower_region="us")
    regions = us_replica_everywhere(c)
    k = start_kstretch(c, extra_args=("--rack", "us-a"))
    env = harness.modern_rdkafka_env()
    sent = records.make_records("down", PARTITIONS * PER_PARTITION)
    produce(k, sent, env)
    follower = next(p["follower"] for p in c.topic(TOPIC)["partitions"] if p.get("follower", -1) > 0)
    assert regions[follower] == "us"
    err_path = tmp_path / "consumer.stderr"
    lines = []
    with open(err_path, "wb") as err:
        consumer = subprocess.Popen(
            [harness.kcat_path(), "-b", k.bootstrap, "-G", "down", "-X", "auto.offset.reset=earliest",
             "-X", "max.partition.fetch.bytes=1000", "-e", "-f", harness.KCAT_FORMAT, TOPIC],
            stdout=subprocess.PIPE, stderr=err, env=env)
        reader = threading.Thread(target=lambda: lines.extend(consumer.stdout), daemon=True)
        reader.start()
        try:
            harness.wait_until(lambda: len(lines) >= 100, timeout=30, what="the consumer reading")
            c.must(f"down {follower}")  # mid-consumption: most records are still to read
            time.sleep(3.0)
            c.must(f"up {follower}")
            consumer.wait(timeout=CLIENT_TIMEOUT_S)
            reader.join(timeout=10)
        finally:
            if consumer.poll() is None:
                consumer.kill()
                consumer.wait(timeout=10)
    assert consumer.returncode == 0, err_path.read_text()[-2000:]
    assert k.log_lines(f"upstream node {follower} (", "closed the connection") or \
        k.log_lines(f"cannot connect to node {follower} ("), "kstretch never saw the follower go down"
    assert_complete_and_in_order(sent, records.parse_consumed(b"".join(lines).decode()))


# ---------------------------------------------------------------- kstretch's own steering (no selector)

def fetch_v12_partitions(r):
    """{(topic, partition): (error, preferred_read_replica, records bytes)} of a Fetch v12 response (a Reader
    after its header)."""
    r.int32("ThrottleTimeMs")
    r.int16("ErrorCode")
    r.int32("SessionId")
    out = {}
    for _ in range(r.uvarint("topics") - 1):
        topic = r.compact_string()
        for _ in range(r.uvarint("partitions") - 1):
            index, err = r.int32(), r.int16()
            r.int64("HighWatermark")
            r.int64("LastStableOffset")
            r.int64("LogStartOffset")
            aborted = r.uvarint("AbortedTransactions") - 1
            for _ in range(max(aborted, 0)):
                r.int64()
                r.int64()
                r.tagged_fields()
            preferred = r.int32("PreferredReadReplica")
            n = r.uvarint("Records") - 1
            recs = r.take(max(n, 0), "Records")
            r.tagged_fields()
            out[(topic, index)] = (err, preferred, recs)
        r.tagged_fields()
    r.tagged_fields()
    return out


def test_kstretch_points_a_us_consumer_at_a_us_replica_when_the_leader_would_serve_it_from_afar(
        start_cluster, start_kstretch):
    # No follower: the mock's leaders serve every fetch, as brokers without the
    # rack-aware selector do. kstretch redirects the partitions of leaders
    # outside us (their records stripped) and leaves us leaders alone.
    c = start_cluster(regions=REGIONS, rtt_ms=RTT_MS, topics=[f"{TOPIC}:{PARTITIONS}:3"])
    regions = us_replica_everywhere(c)
    k = start_kstretch(c, extra_args=("--rack", "us-a"))
    env = harness.modern_rdkafka_env()
    produce(k, records.make_records("steer", PARTITIONS * 20), env)
    layout = c.topic(TOPIC)["partitions"]
    # kstretch learns partitions from the Metadata its placed clients receive.
    kafkawire.metadata_v12(LOCALHOST, k.listen_port, [TOPIC])
    replicas = {p["partition"]: p["replicas"] for p in layout}
    seen = {}
    for leader in sorted({p["leader"] for p in layout}):
        mine = [p["partition"] for p in layout if p["leader"] == leader]
        with kafkawire.Connection(LOCALHOST, k.broker_port(leader)) as conn:
            body = conn.request(kafkawire.API_FETCH, 12, kafkawire.fetch_request(12, [(TOPIC, pt, 0) for pt in mine]))
        for (_, pt), (err, preferred, recs) in fetch_v12_partitions(body).items():
            assert err == 0, (pt, err)
            seen[pt] = (regions[leader], preferred, len(recs))
            if regions[leader] == "us":
                assert preferred == -1 and recs, f"partition {pt}: a us leader's answer was changed"
            else:
                assert preferred in replicas[pt] and regions[preferred] == "us", (pt, preferred)
                assert not recs, f"partition {pt}: records came with the redirect"
    assert len(seen) == PARTITIONS
    m = k.metrics()
    assert m["kstretch_fetch_redirects"] == sum(1 for r, _, _ in seen.values() if r != "us")


def test_a_steered_fetch_answer_keeps_the_records_it_does_not_redirect_without_copying_them(
        start_cluster, start_kstretch):
    # One Fetch to an eu leader for a partition with a us replica (redirected,
    # its records stripped) and for a partition of an RF-1 topic on that same
    # leader (no us replica: its ~1 MB of records stay). kstretch rewrites
    # that answer, reading it straight into the block it holds and sending the
    # kept records by reference: it copies at most what had arrived before it
    # knew (one read), not the records.
    c = start_cluster(regions=REGIONS, topics=[f"{TOPIC}:{PARTITIONS}:3", "solo:6:1"])
    regions = {b["id"]: b["region"] for b in c.brokers}
    k = start_kstretch(c, extra_args=("--rack", "us-a"))
    env = harness.modern_rdkafka_env()
    layout = c.topic(TOPIC)["partitions"]
    solo = c.topic("solo")["partitions"]
    pick = next(((p, q) for p in layout for q in solo
                 if regions[p["leader"]] == "eu" and q["leader"] == p["leader"]
                 and any(regions[r] == "us" for r in p["replicas"])), None)
    assert pick, f"no eu leader holds both a {TOPIC} partition with a us replica and a solo partition"
    steered, kept = pick
    leader = steered["leader"]
    value = "v" * 1000
    sent = [(f"k{i}", value) for i in range(1500)]
    harness.run([harness.kcat_path(), "-b", k.bootstrap, "-P", "-t", "solo", "-p", str(kept["partition"]), "-K", "\t",
                 "-X", "acks=all"], input="".join(f"{key}\t{v}\n" for key, v in sent).encode(), env=env,
                timeout=CLIENT_TIMEOUT_S, what="kcat producer")
    produce(k, records.make_records("steer", PARTITIONS * 5), env)
    kafkawire.metadata_v12(LOCALHOST, k.listen_port, [TOPIC, "solo"])  # kstretch learns the partitions
    before = k.metrics()
    with kafkawire.Connection(LOCALHOST, k.broker_port(leader)) as conn:
        body = conn.request(kafkawire.API_FETCH, 12, kafkawire.fetch_request(
            12, [(TOPIC, steered["partition"], 0), ("solo", kept["partition"], 0)], max_bytes=8 << 20,
            partition_max_bytes=4 << 20))
    got = fetch_v12_partitions(body)
    err, preferred, recs = got[(TOPIC, steered["partition"])]
    assert err == 0 and regions.get(preferred) == "us" and not recs, "the partition with a us replica was not redirected"
    err, preferred, recs = got[("solo", kept["partition"])]
    assert err == 0 and preferred == -1 and len(recs) > 900_000, (err, preferred, len(recs))
    after = k.metrics()
    assert after["kstretch_fetch_redirects"] - before["kstretch_fetch_redirects"] == 1
    assert after["kstretch_responses_rewritten"] > before["kstretch_responses_rewritten"]
    copied = after["kstretch_bytes_copied"] - before["kstretch_bytes_copied"]
    print(f"a {len(recs):,}-byte record set kept in a rewritten Fetch answer: {copied:,} bytes copied")
    assert copied < 300 << 10, f"{copied:,} bytes copied: the kept records were copied"


def test_a_consumer_sent_to_a_replica_that_cannot_serve_it_falls_back_to_the_leader_and_loses_nothing(
        start_cluster, start_kstretch):
    # The mock's replicas serve no fetch unless made its follower: every
    # redirect kstretch issues fails at the replica, and the client must come
    # back to the leader, where kstretch then leaves the partition alone for
    # fetch.prefer.local.backoff.ms.
    c = start_cluster(regions=REGIONS, rtt_ms=RTT_MS, topics=[f"{TOPIC}:{PARTITIONS}:3"])
    us_replica_everywhere(c)
    k = start_kstretch(c, extra_args=("--rack", "us-a"))
    env = harness.modern_rdkafka_env()
    sent = records.make_records("fallback", PARTITIONS * PER_PARTITION)
    produce(k, sent, env)
    assert_complete_and_in_order(sent, consume(k, "fallback", env))
    m = k.metrics()
    assert m["kstretch_fetch_redirects"] > 0, m
    assert m["kstretch_fetch_redirect_fallbacks"] > 0, m


# ---------------------------------------------------------------- RackId arrives upstream

def fetch_v12_rack_id(body):
    """The RackId of a Fetch v12 request body (after the request header)."""
    r = kafkawire.Reader(body)
    r.int32("ReplicaId")
    r.int32("MaxWaitMs")
    r.int32("MinBytes")
    r.int32("MaxBytes")
    r.int8("IsolationLevel")
    r.int32("SessionId")
    r.int32("SessionEpoch")
    for _ in range(r.uvarint("topics") - 1):
        r.compact_string()
        for _ in range(r.uvarint("partitions") - 1):
            r.int32()
            r.int32()
            r.int64()
            r.int32()
            r.int64()
            r.int32()
            r.tagged_fields()
        r.tagged_fields()
    for _ in range(r.uvarint("forgotten") - 1):
        r.compact_string()
        r.take(4 * (r.uvarint("partitions") - 1))
        r.tagged_fields()
    return r.compact_string()


def test_an_empty_rack_id_reaches_the_broker_as_the_clients_rack_and_a_set_one_unchanged(start_kstretch):
    with FakeBroker(brokers=[(1, "us-a")]) as fb:
        fb.api_versions[kafkawire.API_FETCH] = (0, 12)
        empty = kafkawire.Writer().raw(struct.pack(">ihi", 0, 0, 0)).uvarint(1).empty_tags().bytes()
        fb.handlers[kafkawire.API_FETCH] = lambda h, body: empty
        k = start_kstretch(fb.bootstrap, max_node_id=1, extra_args=("--rack", "eu-b"))
        with kafkawire.Connection(LOCALHOST, k.broker_port(1)) as conn:
            conn.request(kafkawire.API_FETCH, 12, kafkawire.fetch_request(12, [("t", 0, 0)]))
            conn.request(kafkawire.API_FETCH, 12, kafkawire.fetch_request(12, [("t", 0, 0)], rack_id="ap-z"))
        got = [fetch_v12_rack_id(body) for _, body in fb.requests_of(kafkawire.API_FETCH)]
        assert got == ["eu-b", "ap-z"]
        assert k.metrics()["kstretch_fetch_rack_injected"] == 1


# ---------------------------------------------------------------- local brokers first

def test_metadata_lists_the_brokers_of_the_clients_region_first(start_cluster, start_kstretch):
    c = start_cluster(regions=REGIONS, rtt_ms=RTT_MS, topics=[f"{TOPIC}:{PARTITIONS}:3"])
    regions = {b["id"]: b["region"] for b in c.brokers}
    k = start_kstretch(c)
    for client_id, region in (("app,kstretch_rack=us-b", "us"), ("app,zone=ap-a", "ap")):
        with kafkawire.Connection(LOCALHOST, k.listen_port, client_id=client_id) as conn:
            order = [regions[b.node_id] for b in conn.metadata_v12([TOPIC]).brokers]
        assert order[:2] == [region, region] and region not in order[2:], (client_id, order)
    with kafkawire.Connection(LOCALHOST, k.listen_port, client_id="app") as conn:
        plain = [b.node_id for b in conn.metadata_v12([TOPIC]).brokers]
    assert plain == sorted(plain, key=lambda n: [b["id"] for b in c.brokers].index(n)), \
        "an unplaced client sees the brokers in the broker's order"
