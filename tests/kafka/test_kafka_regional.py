"""Regional mode (issue 15, part 1) in front of real Apache Kafka 4.4.

The module's cluster (`kafka`, conftest.py: brokers 1=eu-a, 2=us-a, 3=ap-a,
min.insync.replicas 2, Kafka's RackAwareReplicaSelector, relays that count
each broker's bytes and name the processes that connect) is started once.
Each test starts two kstretch nodes for region eu (virtual node ids 1 and 2,
`--mode regional --region eu`) in front of it; clients are given one of them
and see a cluster made of exactly those two nodes.

- Every client of the issue produces keyed records (acks=all, idempotent)
  through node 1 to a topic of its own (6 partitions, RF 3, leaders rotating
  over eu, us and ap) and reads them back through node 2 with manual
  assignment (no consumer group: groups are part 2): exactly the records
  produced, offsets 0..n-1 per partition in production order, each key on one
  partition. 50,000 records per client, as the issue asks (the five round
  trips took 53 s together on a 2-core machine).
- Metadata v12 and v13 (KIP-1102's top-level ErrorCode) from both nodes: the
  two nodes only, rack eu, the same leaders on both.
- Fetches go to an eu replica when a partition has one, else to its leader
  (the brokers' relays count what each broker sent).
- A node reading the region's nodes from DNS (regional.nodes.dns): when the
  name's addresses change, a connection's next Metadata v13 answer carries
  REBOOTSTRAP_REQUIRED (KIP-1102) and the new nodes.
- During an idempotent produce run, a broker that leads partitions stops, or
  (every broker up) two partitions' leaders move by reassignment and
  election: the producer retries, refreshes its metadata through kstretch,
  and every record acknowledged is read back where it was acknowledged.
"""
import collections
import os
import re
import subprocess
import time

import pytest

import dnsserver
import groupmembers
import harness
import kafkatest
import kafkawire
import records

PARTITIONS = 6
LOCALHOST = "127.0.0.1"
REGION = "eu"
WORKERS = 2
POOL = 2
API_METADATA = 3


def regional_pair(kafka, start_kstretch):
    """Two regional kstretch nodes for eu (ids 1 and 2) in front of the real cluster, listing each other."""
    p1, p2 = harness.free_ports(2, LOCALHOST)
    nodes = f"1@{LOCALHOST}:{p1},2@{LOCALHOST}:{p2}"
    ks = []
    for node_id, port in ((1, p1), (2, p2)):
        args = ("--mode", "regional", "--region", REGION, "--regional-nodes", nodes, "--node-id", str(node_id),
                "--regional-upstream-connections", str(POOL))
        ks.append(start_kstretch(kafka, workers=WORKERS, extra_args=args, listen_port=port))
    return ks


def assert_only_the_regional_nodes_reached_the_brokers(delta, ks):
    """Every connection the brokers accepted in the window came from one of the kstretch nodes."""
    pids = {k.pid for k in ks} | {-1}
    others = {b: d["peer_pids"] for b, d in delta.items() if set(d["peer_pids"]) - pids}
    assert not others, f"connections to brokers from processes other than kstretch ({sorted(pids)}): {others}"
    unnamed = sum(d["peer_pids"].get(-1, 0) for d in delta.values())
    assert unnamed <= kafkatest.UNNAMED_MAX, f"{unnamed} broker connections not named: {delta}"


def assert_clean(ks):
    for k in ks:
        m = k.metrics()
        assert m["kstretch_protocol_errors"] == 0, m
        assert m["kstretch_regional_fragments_failed"] == 0, m


def kcat_produce(bootstrap, topic, sent, *extra):
    harness.run([harness.kcat_path(), "-b", bootstrap, "-P", "-t", topic, "-K", "\t", "-X", "acks=all",
                 "-X", "enable.idempotence=true", *extra],
                input="".join(f"{key}\t{v}\n" for key, v in sent).encode(), env=harness.modern_rdkafka_env(),
                timeout=kafkatest.CLIENT_TIMEOUT_S, what="kcat producer")


def kcat_consume_assigned(bootstrap, topic, count, *extra):
    """kcat without -G: every partition assigned by hand from its beginning, until `count` records (-c).

    Not until each partition's end (-e): a partition read from its eu follower ends,
    for the client, at the follower's high watermark, which trails the leader's for
    up to a replica fetch (replica.fetch.wait.max.ms) after the last produce, so a
    consumer started at once may see an end before the last records (KIP-392's
    semantics, with or without kstretch)."""
    r = harness.run([harness.kcat_path(), "-b", bootstrap, "-C", "-t", topic, "-o", "beginning", "-c", str(count),
                     "-f", harness.KCAT_FORMAT, *extra],
                    env=harness.modern_rdkafka_env(), timeout=kafkatest.CLIENT_TIMEOUT_S, what="kcat consumer")
    return records.parse_consumed(r.stdout.decode())


# ---------------------------------------------------------------- 1. every client, through both nodes

def roundtrip_kcat(k_in, k_out, topic, sent, tmp_path):
    kcat_produce(k_in.bootstrap, topic, sent)
    return kcat_consume_assigned(k_out.bootstrap, topic, len(sent))


def roundtrip_java(k_in, k_out, topic, sent, tmp_path):
    import javaclients
    tsv = records.write_tsv(tmp_path / "in.tsv", sent)
    r = javaclients.java_client(["produce", k_in.bootstrap, topic, tsv, "--acks", "all", "--idempotent", "true",
                                 "--timeout", "90"], timeout=kafkatest.CLIENT_TIMEOUT_S)
    assert "kafka-clients 4.4.0" in harness.client_version(r.stderr)
    r = javaclients.java_client(["consume", k_out.bootstrap, topic, "-", str(len(sent)), "90", "--settle", "1"],
                                timeout=kafkatest.CLIENT_TIMEOUT_S)
    assert b"assigned by hand" in r.stderr, r.stderr[-2000:]
    return records.parse_consumed(r.stdout.decode())


def franz_supports_direct_consumer():
    r = subprocess.run([harness.franz_path()], capture_output=True, timeout=30)
    if b"GROUP|-" not in r.stderr:
        pytest.fail(f"{harness.franz_path()} predates GROUP \"-\" (direct consumer): run `make deps`", pytrace=False)


def program(argv_in, argv_out, topic, sent, tmp_path, options, env=None):
    """A client program of the roundtrip contract (BOOTSTRAP TOPIC GROUP INPUT EXPECTED TIMEOUT_S):
    produce only (EXPECTED 0) through one node, then read with GROUP "-" through the other."""
    timeout = str(kafkatest.CLIENT_TIMEOUT_S - 10)
    tsv = records.write_tsv(tmp_path / "in.tsv", sent)
    r = harness.run([*argv_in, topic, "-", tsv, "0", timeout, *options], env=env,
                    timeout=kafkatest.CLIENT_TIMEOUT_S, what=f"{os.path.basename(argv_in[0])} producer")
    version = harness.client_version(r.stderr)
    r = harness.run([*argv_out, topic, "-", "-", str(len(sent)), timeout], env=env,
                    timeout=kafkatest.CLIENT_TIMEOUT_S, what=f"{os.path.basename(argv_out[0])} consumer")
    assert b"assigned by hand" in r.stderr or "franz" in version, r.stderr[-2000:]
    return version, records.parse_consumed(r.stdout.decode())


def roundtrip_franz(k_in, k_out, topic, sent, tmp_path):
    franz_supports_direct_consumer()
    version, got = program([harness.franz_path(), k_in.bootstrap], [harness.franz_path(), k_out.bootstrap], topic,
                           sent, tmp_path, ["--idempotent"])
    assert version.startswith("franz-go v1."), version
    return got


def roundtrip_kafka_python(k_in, k_out, topic, sent, tmp_path):
    script = os.path.join(harness.CLIENTS, "python_roundtrip.py")
    head = [harness.venv_python(), script, "kafka-python"]
    version, got = program([*head, k_in.bootstrap], [*head, k_out.bootstrap], topic, sent, tmp_path,
                           ["--idempotent"])
    assert version.startswith("kafka-python 3."), version
    return got


def roundtrip_kafkajs(k_in, k_out, topic, sent, tmp_path):
    script = os.path.join(harness.CLIENTS, "kafkajs_roundtrip.js")
    version, got = program(["node", script, k_in.bootstrap], ["node", script, k_out.bootstrap], topic, sent,
                           tmp_path, ["--idempotent"], env=harness.node_env())
    assert version.startswith("kafkajs 2."), version
    return got


CLIENTS = {  # client -> (its round trip, records)
    "kcat-librdkafka-2.12": (roundtrip_kcat, 50_000),
    "java": (roundtrip_java, 50_000),
    "franz-go": (roundtrip_franz, 50_000),
    "kafka-python": (roundtrip_kafka_python, 50_000),
    "kafkajs": (roundtrip_kafkajs, 50_000),
}


@pytest.mark.parametrize("client", list(CLIENTS))
def test_a_client_produces_through_one_regional_node_and_reads_every_record_back_through_the_other(
        kafka, start_kstretch, fresh_topic, tmp_path, client):
    roundtrip, count = CLIENTS[client]
    topic = fresh_topic(kafka, PARTITIONS)
    k1, k2 = regional_pair(kafka, start_kstretch)
    sent = records.make_records(client, count)
    before = kafkatest.relay_snapshot(kafka)
    t0 = time.monotonic()
    consumed = roundtrip(k1, k2, topic, sent, tmp_path)
    elapsed = time.monotonic() - t0
    # Exactly the records produced: none lost, none twice (offsets 0..n-1),
    # per-partition order, one partition per key, every partition used.
    records.assert_same_records(sent, consumed, PARTITIONS)
    delta = kafkatest.relay_delta(before, kafkatest.relay_snapshot(kafka))
    assert_only_the_regional_nodes_reached_the_brokers(delta, (k1, k2))
    assert_clean((k1, k2))
    ms = [k.metrics() for k in (k1, k2)]
    print(f"{client}: {count} records in {elapsed:.1f}s; Fetch bytes local "
          f"{sum(m['kstretch_fetch_bytes_local'] for m in ms)} remote "
          f"{sum(m['kstretch_fetch_bytes_remote'] for m in ms)}; bytes from brokers "
          f"{ {b: d['from_broker'] for b, d in delta.items()} }")
    # Both nodes carried traffic: clients go to each partition's virtual leader.
    assert all(m["kstretch_regional_fragments"] > 0 for m in ms), ms


# ---------------------------------------------------------------- 2. what clients see

def metadata_from(k, topic, version):
    with kafkawire.Connection(LOCALHOST, k.listen_port, timeout=15) as c:
        return c.metadata_v12([topic], version=version)


def metadata_max_version(k):
    with kafkawire.Connection(LOCALHOST, k.listen_port, timeout=15) as c:
        return c.api_versions(version=2).api_keys[API_METADATA][1]


def test_metadata_v12_and_v13_show_only_the_two_regional_nodes_with_the_same_leaders_on_both(
        kafka, start_kstretch, fresh_topic):
    topic = fresh_topic(kafka, 2 * PARTITIONS)  # 12: all on one node by chance 1 time in 2,048
    k1, k2 = regional_pair(kafka, start_kstretch)
    nodes = sorted([(1, LOCALHOST, k1.listen_port, REGION), (2, LOCALHOST, k2.listen_port, REGION)])
    versions = [12, 13] if min(metadata_max_version(k1), metadata_max_version(k2)) >= 13 else [12]
    assert versions == [12, 13], "Kafka 4.4 defines Metadata v13: kstretch should offer it"
    real = {p["partition"]: p for p in kafka.topic(topic)["partitions"]}
    leaders = {}
    for version in versions:
        for k in (k1, k2):
            m = metadata_from(k, topic, version)
            assert m.error_code == 0
            assert sorted((b.node_id, b.host, b.port, b.rack) for b in m.brokers) == nodes, \
                f"node {k.listen_port} shows other brokers (v{version}): {m.brokers}"
            assert m.controller_id in (1, 2)
            (t,) = m.topics
            assert t.name == topic and t.error_code == 0 and t.topic_id != bytes(16)
            assert sorted(p.partition_index for p in t.partitions) == sorted(real)
            for p in t.partitions:
                assert p.error_code == 0 and p.leader_id in (1, 2) and p.leader_epoch >= 0
                assert sorted(p.replica_nodes) == [1, 2] and p.replica_nodes[0] == p.leader_id
                assert set(p.isr_nodes) <= {1, 2}
            leaders[(version, k.listen_port)] = {p.partition_index: p.leader_id for p in t.partitions}
    first = next(iter(leaders.values()))
    assert all(v == first for v in leaders.values()), f"the nodes disagree on the virtual leaders: {leaders}"
    assert set(first.values()) == {1, 2}, f"12 partitions all led by one node: {first}"

    # A real client sees the same: librdkafka's metadata (kcat -L) through node 2.
    r = harness.run([harness.kcat_path(), "-b", k2.bootstrap, "-L", "-t", topic, "-J"],
                    env=harness.modern_rdkafka_env(), timeout=60, what="kcat -L")
    import json
    md = json.loads(r.stdout.decode())
    assert sorted(b["id"] for b in md["brokers"]) == [1, 2], md["brokers"]
    assert {b["name"] for b in md["brokers"]} == {f"{LOCALHOST}:{k1.listen_port}", f"{LOCALHOST}:{k2.listen_port}"}
    (t,) = md["topics"]
    assert {p["partition"]: p["leader"] for p in t["partitions"]} == first


def api_versions_v5_error(k, node_id, cluster_id=None):
    """ErrorCode of an ApiVersions v5 (KIP-1242) on a new connection to node k, naming node_id and cluster_id."""
    body = kafkawire.Writer().compact_string("kstretch-tests").compact_string("1.0").compact_string(cluster_id) \
        .int32(node_id).empty_tags().bytes()
    with kafkawire.Connection(LOCALHOST, k.listen_port, timeout=15) as c:
        r = c.request(kafkawire.API_API_VERSIONS, 5, body)
        return r.int16("error_code")


def test_api_versions_v5_naming_the_virtual_node_is_answered_whichever_broker_it_goes_to(kafka, start_kstretch):
    """The Java 4.4 client sends ApiVersions v5 naming the node it means to
    reach (KIP-1242): a virtual node id here. A regional node sends it on to
    a broker chosen by session, and a real broker answers a NodeId not its
    own with REBOOTSTRAP_REQUIRED; so the node names the broker it sends it
    to (the client did reach the node it meant). Eight connections to each
    node (their sessions go to every broker): each answered without error,
    the real cluster id kept for the broker to check. (Before: about two in
    three answered REBOOTSTRAP_REQUIRED, and the Java consumer of the round
    trip above failed with "There are no in-flight requests for node 2".)"""
    k1, k2 = regional_pair(kafka, start_kstretch)
    with kafkawire.Connection(LOCALHOST, k1.listen_port, timeout=15) as c:
        cluster_id = c.metadata_v12([]).cluster_id
    assert cluster_id
    errors = [(node_id, api_versions_v5_error(k, node_id, cluster_id))
              for node_id, k in ((1, k1), (2, k2)) for _ in range(8)]
    assert all(e == 0 for _, e in errors), errors
    # A cluster id not the cluster's is still the brokers' to refuse (REBOOTSTRAP_REQUIRED, 129).
    assert api_versions_v5_error(k1, 1, "not-this-cluster") == 129
    assert api_versions_v5_error(k1, -1, None) == 0


# ---------------------------------------------------------------- 3. where Fetch goes

def test_fetches_go_to_the_eu_replica_when_there_is_one_and_to_the_leader_otherwise(
        kafka, start_kstretch, fresh_topic):
    # RF 2 over brokers 1=eu, 2=us, 3=ap: partition p has replicas brokers[p % 3] and
    # brokers[(p + 1) % 3]: 0 and 3 {eu leader, us}, 1 and 4 {us leader, ap}, 2 and 5 {ap leader, eu}.
    topic = fresh_topic(kafka, PARTITIONS, rf=2)
    layout = {p["partition"]: p for p in kafka.topic(topic)["partitions"]}
    regions = {b["id"]: b["region"] for b in kafka.brokers}
    with_eu = {p for p, d in layout.items() if any(regions[r] == REGION for r in d["replicas"])}
    assert with_eu == {0, 2, 3, 5}, layout
    k1, k2 = regional_pair(kafka, start_kstretch)
    sent = records.make_records("where", 20_000)
    kcat_produce(k1.bootstrap, topic, sent)

    def fetch_bytes():  # the client fetches each partition from its virtual leader: both nodes
        ms = [k.metrics() for k in (k1, k2)]
        return (sum(m["kstretch_fetch_bytes_local"] for m in ms), sum(m["kstretch_fetch_bytes_remote"] for m in ms))

    before, fetched_before = kafkatest.relay_snapshot(kafka), fetch_bytes()
    consumed = kcat_consume_assigned(k2.bootstrap, topic, len(sent))
    delta = kafkatest.relay_delta(before, kafkatest.relay_snapshot(kafka))
    fetched = fetch_bytes()
    records.assert_same_records(sent, consumed, PARTITIONS)
    assert_only_the_regional_nodes_reached_the_brokers(delta, (k1, k2))

    payload = collections.Counter()
    for p, _, key, v in consumed:
        payload[p] += len(key) + len(v)
    sent_by = {b: d["from_broker"] for b, d in delta.items()}
    local, remote = fetched[0] - fetched_before[0], fetched[1] - fetched_before[1]
    print(f"bytes each broker sent while kcat read: {sent_by}; payload per partition {dict(payload)}; "
          f"kstretch Fetch bytes local {local} remote {remote}")
    eu_payload = sum(payload[p] for p in with_eu)
    us_payload = sum(payload[p] for p in set(range(PARTITIONS)) - with_eu)
    # eu (broker 1) served every partition it holds, leader or follower.
    assert sent_by[1] > eu_payload, (sent_by, eu_payload)
    # us (broker 2) served only the partitions it leads with no eu replica (1 and 4): less
    # than those plus a fraction of one more partition's payload.
    assert us_payload < sent_by[2] < us_payload + min(payload[p] for p in with_eu) / 2, (sent_by, us_payload)
    # ap (broker 3) leads 2 and 5, which have an eu replica: it sent no records (metadata at most).
    assert sent_by[3] < min(payload[2], payload[5]) / 10, sent_by
    # kstretch's own account agrees: local from eu, remote from us.
    assert local > eu_payload and us_payload < remote < us_payload + eu_payload / 4, (local, remote)
    assert_clean((k1, k2))


# ---------------------------------------------------------------- 4. a broker stops during produce

LEADING_BROKER = 2  # us-a: leads partitions 1 and 4 of a fresh topic
RATE = 1000
DOWN_COUNT = 12_000


def stop_the_leading_broker(kafka, topic):
    """Disruption: broker LEADING_BROKER stops (and starts again after the run)."""
    kafka.must(f"down {LEADING_BROKER}")
    return lambda: kafka.control(f"up {LEADING_BROKER}"), f"broker {LEADING_BROKER} down"


def move_the_leaders_away(kafka, topic):
    """Disruption: partitions 1 and 4 change leader (reassignment and election)
    while every broker stays up: 1 to broker 3 (ap), 4 to broker 1 (eu)."""
    for partition, to in ((1, 3), (4, 1)):
        kafka.must(f"leader {topic} {partition} {to}")
    return lambda: {"ok": True}, "partitions 1 and 4 moved to brokers 3 and 1"


@pytest.mark.parametrize("disrupt", [stop_the_leading_broker, move_the_leaders_away],
                         ids=["broker-down", "leader-move"])
def test_an_idempotent_produce_run_through_a_broker_stop_or_a_leader_move_loses_nothing_acknowledged(
        kafka, start_kstretch, fresh_topic, tmp_path, disrupt):
    topic = fresh_topic(kafka, PARTITIONS)
    leaders = {p["partition"]: p["leader"] for p in kafka.topic(topic)["partitions"]}
    assert sorted(p for p, b in leaders.items() if b == LEADING_BROKER) == [1, 4], leaders
    k1, k2 = regional_pair(kafka, start_kstretch)
    sent = records.make_records("down", DOWN_COUNT)
    acked_path = tmp_path / "acked.tsv"
    env = dict(os.environ)
    env.pop("LD_LIBRARY_PATH", None)  # the wheel's own librdkafka
    argv = [harness.venv_python(), os.path.join(harness.CLIENTS, "python_roundtrip.py"), "confluent-kafka",
            f"{k1.bootstrap},{k2.bootstrap}", topic, "-", records.write_tsv(tmp_path / "in.tsv", sent), "0",
            str(kafkatest.CLIENT_TIMEOUT_S - 10), "--idempotent", "--rate", str(RATE), "--acked", str(acked_path),
            "--set", "debug=topic,msg"]
    before = kafkatest.relay_snapshot(kafka)
    with open(tmp_path / "producer.err", "wb") as err:
        producer = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err, env=env)
    restore, what = (lambda: {"ok": True}), "nothing"
    try:
        time.sleep(3)  # ~3,000 records in
        assert producer.poll() is None, "the producer ended before the disruption"
        t_disrupt = time.monotonic()
        restore, what = disrupt(kafka, topic)
        took = time.monotonic() - t_disrupt
        assert producer.poll() is None, f"the producer ended during the disruption ({what}, {took:.1f}s)"
        rc = producer.wait(timeout=kafkatest.CLIENT_TIMEOUT_S)
    finally:
        if producer.poll() is None:
            producer.kill()
            producer.wait()
        restored = restore()
    assert restored["ok"], restored
    log = (tmp_path / "producer.err").read_text(errors="replace")
    assert rc == 0, f"the producer exited with {rc}\n{log[-4000:]}"

    # Retriable errors reached the producer and it retried (librdkafka's msg debug).
    retries = [line for line in log.splitlines()
               if "NOT_LEADER" in line.upper().replace(" ", "_") or "retrying" in line.lower()]
    assert retries, f"no retriable error in the producer's log\n{log[-3000:]}"
    # It refreshed its metadata through kstretch (the only address it has: the relays
    # name the processes) and saw, for the partitions broker 2 led, the new real
    # leader's epoch (the virtual leader stays: it is a hash of the partition).
    epochs = collections.defaultdict(set)
    for m in re.finditer(rf"Topic {re.escape(topic)} \[(\d+)\] Leader (\d+) Epoch (\d+)", log):
        epochs[int(m.group(1))].add(int(m.group(3)))
    assert all(epochs[p] and max(epochs[p]) > min(epochs[p]) for p in (1, 4)), f"no new leader epoch seen: {dict(epochs)}"

    delta = kafkatest.relay_delta(before, kafkatest.relay_snapshot(kafka))
    assert_only_the_regional_nodes_reached_the_brokers(delta, (k1, k2))
    acked = records.parse_consumed(acked_path.read_text())
    consumed = kcat_consume_assigned(k2.bootstrap, topic, len(acked))
    # Nothing acknowledged is lost: each acked record is where its ack said.
    at = {(p, o): (key, v) for p, o, key, v in consumed}
    lost = [(p, o, key, v) for p, o, key, v in acked if o >= 0 and at.get((p, o)) != (key, v)]
    assert not lost, f"{len(lost)} acknowledged records not read back where acknowledged, e.g. {lost[:5]}"
    # And, idempotent: every record exactly once, in order (all of them were acknowledged).
    assert len(acked) == len(sent)
    records.assert_same_records(sent, consumed, PARTITIONS)
    for k in (k1, k2):
        assert k.metrics()["kstretch_protocol_errors"] == 0
    print(f"{what} in {took:.1f}s during a run of {len(sent)} records; "
          f"{len(retries)} retry lines in the producer's log; fragments failed "
          f"{[k.metrics()['kstretch_regional_fragments_failed'] for k in (k1, k2)]}")


# ---------------------------------------------------------------- the node set read from DNS

NODES_NAME = "kstretch-eu.test"
REBOOTSTRAP_REQUIRED = 129


def dns_node(kafka, start_kstretch, dns, tmp_path, port):
    """A regional node at 127.0.0.2:port whose node set is NODES_NAME's
    addresses, read every second. kstretch reads /etc/resolv.conf: it runs in
    a mount namespace of its own where that file names the test's server."""
    resolv = tmp_path / "resolv.conf"
    resolv.write_text(f"nameserver 127.0.0.1:{dns.port}\noptions timeout:1 attempts:2\n")
    wrapper = ["unshare", "--mount", "--", "sh", "-c", 'mount --bind "$0" /etc/resolv.conf && exec "$@"',
               str(resolv)]
    return start_kstretch(kafka, workers=WORKERS, host="127.0.0.2", listen_port=port, wrapper=wrapper,
                          extra_args=("--mode", "regional", "--region", REGION, "--regional-nodes-dns",
                                      f"{NODES_NAME}:{port}", "--regional-nodes-refresh-ms", "1000"))


def test_a_change_of_the_nodes_in_dns_makes_the_next_metadata_v13_answer_say_rebootstrap_required(
        kafka, start_kstretch, fresh_topic, tmp_path):
    topic = fresh_topic(kafka, 3)
    (port,) = harness.free_ports(1, "127.0.0.2")
    with dnsserver.DnsServer({NODES_NAME: ["127.0.0.2", "127.0.0.3"]}) as dns:
        k = dns_node(kafka, start_kstretch, dns, tmp_path, port)
        with kafkawire.Connection("127.0.0.2", port, timeout=30) as c:
            m = c.metadata_v12([topic], version=13)
            assert m.error_code == 0
            assert sorted(b.host for b in m.brokers) == ["127.0.0.2", "127.0.0.3"], m.brokers
            assert {b.port for b in m.brokers} == {port} and {b.rack for b in m.brokers} == {REGION}
            assert c.metadata_v12([topic], version=13).error_code == 0, "the same nodes: no rebootstrap"
            dns.set(NODES_NAME, ["127.0.0.2", "127.0.0.3", "127.0.0.4"])
            deadline = time.monotonic() + 15
            while True:  # the node reads the name again within regional.nodes.refresh.ms (1 s)
                m = c.metadata_v12([topic], version=13)
                if m.error_code or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            assert m.error_code == REBOOTSTRAP_REQUIRED, f"no REBOOTSTRAP_REQUIRED within 15 s: {m.brokers}"
            assert sorted(b.host for b in m.brokers) == ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
            # Said once: the connection has now seen the new set.
            again = c.metadata_v12([topic], version=13)
            assert again.error_code == 0 and len(again.brokers) == 3
            # Topics and their leaders (among the three nodes) as before.
            assert again.topic(topic).error_code == 0
            assert {p.leader_id for p in again.topic(topic).partitions} <= {b.node_id for b in again.brokers}
        # A new connection's first answer has nothing to compare with; v12 has no top-level error.
        with kafkawire.Connection("127.0.0.2", port, timeout=30) as c:
            assert c.metadata_v12([topic], version=13).error_code == 0
            assert len(c.metadata_v12([topic]).brokers) == 3
        assert dns.queries >= 2
    assert k.metrics()["kstretch_protocol_errors"] == 0


# ---------------------------------------------------------------- 5. consumer groups and transactions (issue 16)

def group_type(kafka, group):
    return {g["id"]: g["type"] for g in kafka.must("groups")["groups"]}.get(group)


@pytest.mark.parametrize("protocol", ["classic", "consumer"])
def test_a_java_consumer_group_reads_through_a_regional_node_and_commits_what_it_read(
        kafka, start_kstretch, fresh_topic, tmp_path, protocol):
    """The Java consumer in a group (classic JoinGroup/SyncGroup/Heartbeat, or
    KIP-848's ConsumerGroupHeartbeat) through node 2: FindCoordinator names
    the regional node the group id hashes to, that node sends the group's
    requests to the real coordinator (learned from the answer, or looked up
    itself), and the consumer reads every record once, in order, and commits.
    The brokers' committed offsets (read with the Admin API, not through
    kstretch) are one past the last record read of each partition."""
    import javaclients
    topic = fresh_topic(kafka, PARTITIONS)
    k1, k2 = regional_pair(kafka, start_kstretch)
    sent = records.make_records(f"group-{protocol}", 20_000)
    kcat_produce(k1.bootstrap, topic, sent)
    group = f"{topic}-{protocol}"
    ports = {1: k1.listen_port, 2: k2.listen_port}
    named = set()
    for k in (k1, k2):  # both nodes name one of them, the same, at its address
        deadline = time.monotonic() + 30
        while True:  # COORDINATOR_NOT_AVAILABLE while the brokers make __consumer_offsets
            with kafkawire.Connection(LOCALHOST, k.listen_port, timeout=15) as c:
                fc = c.find_coordinator(group, version=3)
            if fc.error_code != 15 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert fc.error_code == 0 and fc.node_id in ports and (fc.host, fc.port) == (LOCALHOST, ports[fc.node_id]), fc
        named.add(fc.node_id)
    assert len(named) == 1, f"the nodes name different coordinators for one group: {named}"
    before = kafkatest.relay_snapshot(kafka)
    r = javaclients.java_client(["consume", k2.bootstrap, topic, group, str(len(sent)), "90",
                                 "--group-protocol", protocol, "--settle", "1"], timeout=kafkatest.CLIENT_TIMEOUT_S)
    consumed = records.parse_consumed(r.stdout.decode())
    records.assert_same_records(sent, consumed, PARTITIONS)
    assert group_type(kafka, group) == protocol
    last = {}
    for p, o, _, _ in consumed:
        last[p] = max(last.get(p, -1), o)
    committed = kafka.must(f"offsets {group}")["offsets"]
    assert committed == {f"{topic}:{p}": o + 1 for p, o in last.items()}, committed
    assert_only_the_regional_nodes_reached_the_brokers(kafkatest.relay_delta(before, kafkatest.relay_snapshot(kafka)),
                                                       (k1, k2))
    assert_clean((k1, k2))
    # The group's requests went to its coordinator: at most a first one per node
    # before that node knew it (it asked FindCoordinator through the other), and
    # no answer after that said the coordinator was elsewhere.
    ms = [k.metrics() for k in (k1, k2)]
    unknown = sum(m["kstretch_regional_coordinator_unknown"] for m in ms)
    moved = sum(m["kstretch_regional_coordinator_moved"] for m in ms)
    print(f"{protocol}: coordinator lookups {sum(m['kstretch_regional_coordinator_lookups'] for m in ms)}, "
          f"requests before it was known {unknown}, answers NOT_COORDINATOR {moved}")
    assert unknown <= 2 and moved <= unknown, (unknown, moved)


def test_java_transactions_through_the_regional_nodes_commit_and_abort_and_read_committed_sees_the_committed(
        kafka, start_kstretch, fresh_topic, tmp_path):
    """A transactional producer through node 1: InitProducerId, AddPartitionsToTxn
    (offered up to v3, one transactional id each) and EndTxn go to the
    transaction coordinator of its transactional id, its Produce is split by
    partition leader; batches of 100, even ones committed, odd ones aborted. A
    read_committed consumer through node 2 (its Fetch split, each part's
    LastStableOffset and AbortedTransactions passed on) reads exactly the
    committed records, each partition in order."""
    import javaclients
    topic = fresh_topic(kafka, PARTITIONS)
    k1, k2 = regional_pair(kafka, start_kstretch)
    sent = records.make_records("regional-txn", 2000)
    r = javaclients.java_client(["txn", k1.bootstrap, topic, records.write_tsv(tmp_path / "in.tsv", sent),
                                 f"{topic}-txn", "100", "--timeout", "90"], timeout=kafkatest.CLIENT_TIMEOUT_S)
    committed = [tuple(line.split("\t", 1)) for line in r.stdout.decode().splitlines() if line]
    assert len(committed) == 1000, len(committed)
    r = javaclients.java_client(["consume", k2.bootstrap, topic, "-", str(len(committed)), "90",
                                 "--isolation", "read_committed", "--settle", "2"], timeout=kafkatest.CLIENT_TIMEOUT_S)
    consumed = records.parse_consumed(r.stdout.decode())
    got = sorted((key, v) for _, _, key, v in consumed)
    assert got == sorted(committed), (f"read_committed read {len(consumed)} records; "
                                      f"{len(set(got) - set(committed))} not committed")
    for p in range(PARTITIONS):
        offsets = [o for q, o, _, _ in consumed if q == p]
        assert offsets == sorted(offsets), f"partition {p} read out of order"
    assert_clean((k1, k2))


def real_coordinators(kafka, keys, key_type=0):
    """The brokers coordinating keys, asked of a broker directly (FindCoordinator v4)."""
    host, port = kafka.bootstrap.split(",")[0].rsplit(":", 1)
    deadline = time.monotonic() + 30
    while True:  # COORDINATOR_NOT_AVAILABLE while __consumer_offsets / __transaction_state are made
        with kafkawire.Connection(host, int(port), timeout=15) as c:
            got = c.find_coordinators_v4(keys, key_type=key_type)
        if all(x.error_code == 0 for x in got.coordinators) or time.monotonic() > deadline:
            return {x.key: x.node_id for x in got.coordinators}
        time.sleep(0.5)


def test_the_java_admin_lists_describes_reads_and_deletes_groups_and_transactions_through_the_regional_nodes(
        kafka, start_kstretch, fresh_topic):
    """What an operator does with groups and transactions, through node 1 with
    the Java AdminClient: it commits offsets for 8 groups (coordinated by
    several brokers), commits one transaction for each of 3 transactional
    ids, then lists groups (ListGroups to both virtual nodes: each node asks
    every broker and keeps the groups it names itself the coordinator of, so
    each group is listed once), describes them (ConsumerGroupDescribe, then
    DescribeGroups for classic groups: cut by coordinator), reads all their
    offsets in one call (OffsetFetch v8+, cut by coordinator), lists and
    describes the transactions, and deletes two groups (DeleteGroups)."""
    import json
    import javaclients
    topic = fresh_topic(kafka, PARTITIONS)
    k1, k2 = regional_pair(kafka, start_kstretch)
    groups = [f"{topic}-g{i}" for i in range(8)]
    txns = [f"{topic}-t{i}" for i in range(3)]
    t0 = time.monotonic()
    r = javaclients.java_client(["groups", k1.bootstrap, topic, str(PARTITIONS), ",".join(groups), ",".join(txns),
                                 "--delete", ",".join(groups[:2]), "--timeout", "90"],
                                timeout=kafkatest.CLIENT_TIMEOUT_S)
    took = time.monotonic() - t0
    out = json.loads(r.stdout.decode())
    real = real_coordinators(kafka, groups)
    print(f"groups and transactions admin in {took:.1f} s; the groups' real coordinators: {real}")
    assert len(set(real.values())) >= 2, f"every group on one broker: nothing was cut ({real})"
    assert [g for g in out["listed"] if g in groups] == sorted(groups), out["listed"]
    ports = {1: k1.listen_port, 2: k2.listen_port}
    with kafkawire.Connection(LOCALHOST, k2.listen_port, timeout=15) as c:
        named = {x.key: x.node_id for x in c.find_coordinators_v4(groups).coordinators}
    for g in groups:
        assert out["described"][g]["state"] in ("EMPTY", "Empty"), out["described"][g]
        assert out["described"][g]["coordinator"] == named[g] and named[g] in ports, (g, out["described"][g], named)
        i = groups.index(g)
        assert out["offsets"][g] == {f"{topic}:{p}": 10 * i + p for p in range(PARTITIONS)}, (g, out["offsets"][g])
        # as the brokers have them (the deleted groups' offsets went with them)
        assert kafka.must(f"offsets {g}")["offsets"] == ({} if g in groups[:2] else out["offsets"][g])
    assert {t: out["transactions"].get(t) for t in txns} == {t: "CompleteCommit" for t in txns}, out["transactions"]
    for t in txns:
        assert out["described_transactions"][t]["state"] == "CompleteCommit"
        assert out["described_transactions"][t]["coordinator"] in ports
    assert [g for g in out["listed_after"] if g in groups] == sorted(groups[2:]), out["listed_after"]
    assert_clean((k1, k2))


# ---------------------------------------------------------------- 6. a group of 4 with every client (issue 16)

MEMBER_TIMEOUT_S = 100


def java_member(protocol, log_level=None):
    def start(k, topic, group, tmp_path, name):
        import javaclients
        argv = javaclients.java_argv(["member", k.bootstrap, topic, group, MEMBER_TIMEOUT_S,
                                      "--group-protocol", protocol, "--client-id", name], log_level=log_level)
        return groupmembers.Member(argv, tmp_path, name)
    return start


def python_member(client):
    def start(k, topic, group, tmp_path, name):
        env = dict(os.environ)
        env.pop("LD_LIBRARY_PATH", None)  # confluent-kafka: the wheel's own librdkafka
        argv = [harness.venv_python(), os.path.join(harness.CLIENTS, "group_member.py"), client, k.bootstrap,
                topic, group, str(MEMBER_TIMEOUT_S)]
        return groupmembers.Member(argv, tmp_path, name, env=env)
    return start


def franz_member(k, topic, group, tmp_path, name):
    argv = [harness.franz_path(), k.bootstrap, topic, group, "-", "0", str(MEMBER_TIMEOUT_S), "--member",
            "--client-id", name]
    return groupmembers.Member(argv, tmp_path, name)


def kafkajs_member(k, topic, group, tmp_path, name):
    argv = ["node", os.path.join(harness.CLIENTS, "kafkajs_member.js"), k.bootstrap, topic, group,
            str(MEMBER_TIMEOUT_S)]
    return groupmembers.Member(argv, tmp_path, name, env=harness.node_env())


GROUP_CLIENTS = {  # client -> (start a member, records, the group type the brokers report)
    "java-classic": (java_member("classic"), 50_000, "classic"),
    "java-consumer": (java_member("consumer"), 50_000, "consumer"),
    "franz-go": (franz_member, 50_000, "classic"),
    "confluent-kafka-librdkafka": (python_member("confluent-kafka"), 50_000, "classic"),
    "kafka-python": (python_member("kafka-python"), 50_000, "classic"),
    "kafkajs": (kafkajs_member, 50_000, "classic"),
}


@pytest.mark.parametrize("client", list(GROUP_CLIENTS))
def test_a_group_of_four_members_over_both_nodes_reads_every_record_once_through_a_leave_and_commits_the_log_end(
        kafka, start_kstretch, fresh_topic, tmp_path, client):
    """4 members of one group, two on each regional node (FindCoordinator
    names the same node on both; that node sends the group's requests to the
    real coordinator), read half the records (produced through node 1); once
    they hold the 6 partitions between them, one member commits and leaves
    (LeaveGroup, or a ConsumerGroupHeartbeat with epoch -1), the 3 others
    take its partitions, the second half is produced and read. Every record
    read once across the group, none missing; each member commits after each
    batch and before giving a partition up, so the brokers' committed offsets
    (read with KafkaControl, not through kstretch) are each partition's log
    end. See groupmembers.run_group."""
    start, count, group_kind = GROUP_CLIENTS[client]
    topic = fresh_topic(kafka, PARTITIONS)
    k1, k2 = regional_pair(kafka, start_kstretch)
    sent = records.make_records(f"g-{client}", count)
    produce = groupmembers.kcat_producer(k1.bootstrap, topic)
    produce(sent[:count // 2])
    group = f"{topic}-group"
    before = kafkatest.relay_snapshot(kafka)
    result = groupmembers.run_group(kafka, (k1, k2), topic, sent, PARTITIONS,
                                    lambda k, name: start(k, topic, group, str(tmp_path), name), produce, group,
                                    tmp_path)
    assert group_type(kafka, group) == group_kind
    assert_only_the_regional_nodes_reached_the_brokers(kafkatest.relay_delta(before, kafkatest.relay_snapshot(kafka)),
                                                       (k1, k2))
    assert_clean((k1, k2))
    ms = [k.metrics() for k in (k1, k2)]
    print(f"{client}: {count} records, read per member {result['per_member']}, times {result['times']}; "
          f"coordinator lookups {sum(m['kstretch_regional_coordinator_lookups'] for m in ms)}, "
          f"unknown {sum(m['kstretch_regional_coordinator_unknown'] for m in ms)}, "
          f"moved {sum(m['kstretch_regional_coordinator_moved'] for m in ms)}")


# ---------------------------------------------------------------- 7. librdkafka transactions, Kafka Streams (issue 16)

TXN_BATCH = 200


def test_librdkafka_transactions_through_the_regional_nodes_commit_and_abort_and_read_committed_sees_the_committed(
        kafka, start_kstretch, fresh_topic, tmp_path):
    """confluent-kafka (librdkafka, the wheel's) as a transactional producer
    through node 1: init_transactions, then transactions of 200 records, the
    odd ones aborted (abort_transaction), the even ones committed. Through node
    2, a librdkafka consumer (kcat) with isolation.level=read_committed reads
    exactly the committed records, each at the offset its ack gave; with
    read_uncommitted it reads all of them (the aborted ones were written, and
    hidden by their abort markers)."""
    topic = fresh_topic(kafka, PARTITIONS)
    k1, k2 = regional_pair(kafka, start_kstretch)
    sent = records.make_records("rdk-txn", 4000)
    acked_path = tmp_path / "acked.tsv"
    env = dict(os.environ)
    env.pop("LD_LIBRARY_PATH", None)  # the wheel's own librdkafka
    t0 = time.monotonic()
    r = harness.run([harness.venv_python(), os.path.join(harness.CLIENTS, "python_roundtrip.py"), "confluent-kafka",
                     k1.bootstrap, topic, "-", records.write_tsv(tmp_path / "in.tsv", sent), "0",
                     str(kafkatest.CLIENT_TIMEOUT_S - 10), "--transactional", str(TXN_BATCH), "--abort-odd",
                     "--acked", str(acked_path)],
                    env=env, timeout=kafkatest.CLIENT_TIMEOUT_S, what="confluent-kafka transactional producer")
    assert "librdkafka" in harness.client_version(r.stderr)
    committed = records.parse_consumed(acked_path.read_text())
    want = [rec for i, rec in enumerate(sent) if (i // TXN_BATCH) % 2 == 0]
    assert sorted((k, v) for _, _, k, v in committed) == sorted(want), "the producer's committed records"
    got = kcat_consume_assigned(k2.bootstrap, topic, len(want), "-X", "isolation.level=read_committed")
    assert sorted(got) == sorted(committed), (
        f"read_committed read {len(got)}: {len(set(got) - set(committed))} not committed (or not where acked)")
    everything = kcat_consume_assigned(k2.bootstrap, topic, len(sent), "-X", "isolation.level=read_uncommitted")
    assert sorted((k, v) for _, _, k, v in everything) == sorted(sent)
    elapsed = time.monotonic() - t0
    assert_clean((k1, k2))
    print(f"librdkafka transactions: {len(sent) // TXN_BATCH} transactions of {TXN_BATCH}, half aborted, "
          f"in {elapsed:.1f}s (produce and both reads)")


WORDS = [f"w{i:02d}" for i in range(40)]


def test_a_kafka_streams_word_count_with_exactly_once_v2_counts_every_word_once_through_the_regional_nodes(
        kafka, start_kstretch, fresh_topic, tmp_path):
    """A Kafka Streams application (kafka-streams 4.4, WordCount.java:
    processing.guarantee=exactly_once_v2, the record cache off) given both
    regional nodes: lines in, words repartitioned by word through an internal
    topic, counted in a state store with a changelog topic (both internal
    topics made by Streams with CreateTopics), each new count written out in
    its transaction. Through node 2, a read_committed consumer (kcat) reads
    the output: for each word the counts 1, 2, ..., n in order, n its number
    in the input: every input line counted exactly once."""
    import javaclients
    src = fresh_topic(kafka, 3)
    dst = fresh_topic(kafka, 3)
    k1, k2 = regional_pair(kafka, start_kstretch)
    lines = [" ".join(WORDS[(i * 7 + j * 3) % len(WORDS)] for j in range(1 + i % 5)) for i in range(2000)]
    want = collections.Counter(w for line in lines for w in line.split())
    kcat_produce(k1.bootstrap, src, [(f"line-{i}", line) for i, line in enumerate(lines)])
    app_id = f"{src}-wordcount"
    before = kafkatest.relay_snapshot(kafka)
    argv = javaclients.java_argv(["wordcount", f"{k1.bootstrap},{k2.bootstrap}", src, dst, app_id,
                                  tmp_path / "state", 90])
    t0 = time.monotonic()
    app = groupmembers.Member(argv, str(tmp_path), "wordcount")
    try:
        def counted_all():
            seen = {}
            for x in app.lines():
                if x.startswith("#"):
                    continue
                w, _, n = x.partition("\t")
                seen[w] = max(seen.get(w, 0), int(n))
            return seen == dict(want)
        groupmembers.wait_for([app], counted_all, 90, f"the word count's progress to reach {sum(want.values())}")
        t_counted = time.monotonic()
        app.stop()
        app.wait(40)
    finally:
        app.kill()
    r = harness.run([harness.kcat_path(), "-b", k2.bootstrap, "-C", "-t", dst, "-o", "beginning",
                     "-c", str(sum(want.values())), "-s", "key=s", "-s", "value=q", "-X", "isolation.level=read_committed",
                     "-f", "%p\t%o\t%k\t%s\n"],
                    env=harness.modern_rdkafka_env(), timeout=kafkatest.CLIENT_TIMEOUT_S, what="kcat consumer")
    counts = collections.defaultdict(list)
    for line in r.stdout.decode().splitlines():
        _, _, w, n = line.split("\t")
        counts[w].append(int(n))
    wrong = {w: (ns[:5], ns[-3:], want[w]) for w, ns in counts.items() if ns != list(range(1, want[w] + 1))}
    assert set(counts) == set(want) and not wrong, f"words counted wrong (first, last, want): {wrong}"
    # Streams made its internal topics (through the nodes: no other process reached the brokers).
    kafka.refresh()
    for internal in (f"{app_id}-words-repartition", f"{app_id}-KSTREAM-AGGREGATE-STATE-STORE-0000000004-changelog"):
        assert kafka.topic(internal)["partitions"], f"no internal topic {internal}"
    assert_only_the_regional_nodes_reached_the_brokers(kafkatest.relay_delta(before, kafkatest.relay_snapshot(kafka)),
                                                       (k1, k2))
    assert_clean((k1, k2))
    print(f"Kafka Streams word count (exactly_once_v2): {len(lines)} lines, {sum(want.values())} words counted in "
          f"{t_counted - t0:.1f}s from the start, {time.monotonic() - t0:.1f}s with close and the check")


# ---------------------------------------------------------------- 8. the coordinator's broker stops (issue 16)

def real_coordinator(kafka, group):
    """The broker coordinating `group`, asked of a broker directly (FindCoordinator v3)."""
    host, port = kafka.bootstrap.split(",")[0].rsplit(":", 1)
    deadline = time.monotonic() + 30
    while True:  # COORDINATOR_NOT_AVAILABLE while the brokers make __consumer_offsets
        with kafkawire.Connection(host, int(port), timeout=15) as c:
            fc = c.find_coordinator(group, version=3)
        if fc.error_code != 15 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert fc.error_code == 0, fc
    return fc.node_id


def test_a_java_group_carries_on_when_the_broker_coordinating_it_stops_and_commits_the_log_end(
        kafka, start_kstretch, fresh_topic, tmp_path):
    """The group test (run_group, Java classic, 20,000 records) with the
    coordinator's broker stopped (controlled shutdown) once the 4 members read
    the first half: another broker becomes the coordinator. A request a node
    still sends to the stopped broker fails and the node closes that client,
    which asks FindCoordinator again (the node learns the new coordinator from
    the answer); an answer NOT_COORDINATOR makes the node forget and look it
    up. Member 0's leave, the rebalance, the commits of the second half all
    reach the new one. Nothing lost or read twice, the committed
    offsets (read from the brokers) are the log ends, and the nodes' metrics
    show the move.

    The second half is produced with the Java producer, not kcat: a request
    a regional node sends whole to "any broker" (ApiVersions, Metadata) goes
    to broker (connection number mod the brokers it ever knew), the stopped
    one included (the topology keeps brokers Metadata no longer lists), and
    the node then closes the client; kcat with one bootstrap address gives up
    ("All broker connections are down"), the Java client connects again."""
    topic = fresh_topic(kafka, PARTITIONS)
    group = f"{topic}-group"
    coordinator = real_coordinator(kafka, group)
    k1, k2 = regional_pair(kafka, start_kstretch)
    sent = records.make_records("g-moved", 20_000)

    def produce(recs):
        # The Java producer (both halves: its partitioner, murmur2, is not
        # kcat's): a regional node closes a connection whose first request went
        # to the stopped broker (see above), and the Java client connects
        # again where kcat gives up.
        import javaclients
        javaclients.java_client(["produce", f"{k1.bootstrap},{k2.bootstrap}", topic,
                                 records.write_tsv(tmp_path / "half.tsv", recs), "--acks", "all", "--idempotent",
                                 "true", "--timeout", "60"], timeout=kafkatest.CLIENT_TIMEOUT_S)
    produce(sent[:len(sent) // 2])
    start = java_member("classic", log_level="info")  # the members' view of the move, in member-*.err
    stopped, restored = [], {"ok": False}

    def stop_the_coordinator():
        t = time.monotonic()
        kafka.must(f"down {coordinator}")
        stopped.append(time.monotonic() - t)

    before = [k.metrics() for k in (k1, k2)]
    t0 = time.monotonic()
    try:
        result = groupmembers.run_group(kafka, (k1, k2), topic, sent, PARTITIONS,
                                        lambda k, name: start(k, topic, group, str(tmp_path), name), produce, group,
                                        tmp_path, disrupt=stop_the_coordinator)
    finally:
        t_up = time.monotonic()
        if stopped:
            restored = kafka.control(f"up {coordinator}")
        t_up = time.monotonic() - t_up
    assert stopped and restored["ok"], restored
    new = real_coordinator(kafka, group)
    after = [k.metrics() for k in (k1, k2)]

    def grew(name):
        return sum(a[name] - b[name] for a, b in zip(after, before))
    assert grew("kstretch_regional_coordinator_moved") + grew("kstretch_regional_coordinator_lookups") > 0
    # Parts sent to the broker as it stopped failed (answered with retriable errors): no protocol error.
    assert all(m["kstretch_protocol_errors"] == 0 for m in after), after
    print(f"coordinator broker {coordinator} stopped in {stopped[0]:.1f}s (now {new}): read per member {result['per_member']}, "
          f"times {result['times']}; NOT_COORDINATOR answers {grew('kstretch_regional_coordinator_moved')}, "
          f"lookups {grew('kstretch_regional_coordinator_lookups')}, "
          f"unknown {grew('kstretch_regional_coordinator_unknown')}; {time.monotonic() - t0:.1f}s in all, "
          f"{t_up:.1f}s of it starting the broker again")


# ---------------------------------------------------------------- admin (issue 16, "Admin and the rest")

ADMIN_TOPIC = "regional-admin"
BROKER_CONFIG = ("max.connections", "100000")  # a per-broker dynamic config; deleted again by the client


def test_the_java_admin_client_creates_describes_and_alters_configs_through_a_regional_node_and_sees_only_the_nodes(
        kafka, start_kstretch):
    """The Java AdminClient through node 1: describeCluster shows the two
    nodes (rack eu) and Metadata's controller; createTopics, describeTopics
    (DescribeTopicPartitions is not offered: the client falls back to
    Metadata, which is virtual), listOffsets; describeConfigs of the topic and
    of node 2 as a broker, whose real broker is broker 1 (the only eu broker),
    showing node 2's identity; incrementalAlterConfigs of the topic and of node
    2 (a per-broker dynamic config set, read back as DYNAMIC_BROKER_CONFIG,
    deleted: the client sends node 2's broker resources to node 2);
    listTopics; describeProducers of every partition (sent to their virtual
    leaders, cut by real leader: answered without NOT_LEADER_OR_FOLLOWER
    retries); describeLogDirs fails at once with UnsupportedVersionException
    (not offered). Then kcat -L through node 2 shows the two nodes and the
    topic. Only kstretch reaches the brokers."""
    import json
    import javaclients
    k1, k2 = ks = regional_pair(kafka, start_kstretch)
    before = kafkatest.relay_snapshot(kafka)
    r = javaclients.java_client(["admin", k1.bootstrap, ADMIN_TOPIC, "4", "3", "--timeout", "60",
                                 "--broker-config", "=".join(BROKER_CONFIG)], timeout=kafkatest.CLIENT_TIMEOUT_S)
    report = json.loads(r.stdout.decode())
    nodes = [(n["id"], n["host"], n["port"], n["rack"]) for n in report["nodes"]]
    assert nodes == [(1, LOCALHOST, k1.listen_port, REGION), (2, LOCALHOST, k2.listen_port, REGION)], nodes
    assert report["controller"]["id"] == 1, report["controller"]
    for p in report["partitions"]:
        assert p["leader"] in (1, 2) and sorted(p["replicas"]) == [1, 2] and set(p["isr"]) <= {1, 2}, p
    assert report["offsets"] == {str(i): [0, 0] for i in range(4)}, report["offsets"]
    assert report["topic_configs"].get("cleanup.policy") == "delete", report["topic_configs"]
    assert report["broker_id"] == 2 and report["broker_configs_count"] > 50, report
    assert report["broker_node_id"] == "2", "node.id of the broker named 2 is the node's, not the real broker's"
    assert report["broker_rack"] == REGION and report["broker_advertised_listeners"] is None, report
    assert report["topic_retention_after"] == "3600000", report
    assert report["broker_config_after"] == BROKER_CONFIG[1], report
    assert report["broker_config_source"] == "DYNAMIC_BROKER_CONFIG", report
    assert report["broker_config_deleted_source"] != "DYNAMIC_BROKER_CONFIG", report
    assert ADMIN_TOPIC in report["listed"], report["listed"]
    assert report["describe_producers"] == "ok", report  # cut by real leader: no NOT_LEADER_OR_FOLLOWER retries
    assert report["describe_log_dirs"] == "UnsupportedVersionException", report
    # The client sends node 2's broker resources to node 2 itself.
    assert k2.log_lines("names node 2 as a broker: sent to broker 1, the one it stands for"), \
        "node 2's broker resource did not go to broker 1, the region's only broker"
    assert not [line for k in ks for line in k.log().splitlines() if "answered INVALID_REQUEST" in line]
    assert k2.metrics()["kstretch_regional_broker_configs"] >= 5  # 3 describes at least (more looks: more), 2 alters

    out = harness.run([harness.kcat_path(), "-b", k2.bootstrap, "-L", "-J", "-t", ADMIN_TOPIC],
                      env=harness.modern_rdkafka_env(), timeout=60, what="kcat -L").stdout
    md = json.loads(out)
    assert sorted((b["id"], b["name"]) for b in md["brokers"]) == \
        [(1, f"{LOCALHOST}:{k1.listen_port}"), (2, f"{LOCALHOST}:{k2.listen_port}")], md["brokers"]
    (t,) = md["topics"]
    assert t["topic"] == ADMIN_TOPIC and len(t["partitions"]) == 4, t
    assert all(p["leader"] in (1, 2) and sorted(x["id"] for x in p["replicas"]) == [1, 2] for p in t["partitions"]), t
    assert_only_the_regional_nodes_reached_the_brokers(kafkatest.relay_delta(before, kafkatest.relay_snapshot(kafka)),
                                                       ks)
    assert_clean(ks)
