"""Rack awareness on real brokers: kstretch places a consumer that set no
client.rack, injects its rack into Fetch, and Kafka's own
RackAwareReplicaSelector (KIP-392) sends it to the replica in its region.

The `kafka` cluster has one broker per region (1=eu-a, 2=us-a, 3=ap-a) and
topics of RF 3, so every partition has a replica in us and leaders rotate
over eu, us and ap. The relays in front of the brokers count the bytes each
broker sent while the consumer read: that is the brokers' side of the proof.
kstretch's own replica steering (fetch.prefer.local) is off here, so only the
brokers' selector can move a fetch off its leader.
"""
import pytest

import harness
import kafkatest
import records

PARTITIONS = 6
COUNT = 6000  # ~0.5 MB of values, spread over every partition


def fetched_bytes(kafka, consume):
    """Runs consume(); returns ({region: bytes the brokers sent}, what it read)."""
    before = kafkatest.relay_snapshot(kafka)
    consumed = consume()
    delta = kafkatest.relay_delta(before, kafkatest.relay_snapshot(kafka))
    regions = {b["id"]: b["region"] for b in kafka.brokers}
    by_region = {}
    for broker, d in delta.items():
        by_region[regions[broker]] = by_region.get(regions[broker], 0) + d["from_broker"]
    return by_region, consumed, delta


def cross_region_share(by_region, home="us"):
    total = sum(by_region.values())
    assert total > 0, by_region
    return 1 - by_region.get(home, 0) / total


def produce(k, topic, sent):
    harness.run([harness.kcat_path(), "-b", k.bootstrap, "-P", "-t", topic, "-K", "\t", "-X", "acks=all"],
                input="".join(f"{key}\t{v}\n" for key, v in sent).encode(), env=harness.modern_rdkafka_env(),
                timeout=kafkatest.CLIENT_TIMEOUT_S, what="kcat producer")


def kcat_consumer(k, topic, group, *extra):
    def consume():
        r = harness.run([harness.kcat_path(), "-b", k.bootstrap, "-G", group, "-X", "auto.offset.reset=earliest",
                         "-e", "-f", harness.KCAT_FORMAT, *extra, topic],
                        env=harness.modern_rdkafka_env(), timeout=kafkatest.CLIENT_TIMEOUT_S, what="kcat consumer")
        return records.parse_consumed(r.stdout.decode())
    return consume


def java_consumer(k, topic, group, client_id=None):
    def consume():
        import javaclients
        args = ["consume", k.bootstrap, topic, group, str(COUNT), "90", "--settle", "1"]
        if client_id:
            args += ["--client-id", client_id]
        r = javaclients.java_client(args, timeout=kafkatest.CLIENT_TIMEOUT_S)
        return records.parse_consumed(r.stdout.decode())
    return consume


def consumer(client, k, topic, group, client_id=None):
    if client == "java":
        return java_consumer(k, topic, group, client_id)
    return kcat_consumer(k, topic, group, *(("-X", f"client.id={client_id}") if client_id else ()))


@pytest.mark.parametrize("client", ["kcat", "java"])
def test_a_consumer_placed_in_us_by_kstretch_reads_from_the_us_replica_chosen_by_kafkas_selector(
        kafka, start_kstretch, fresh_topic, client):
    topic = fresh_topic(kafka, PARTITIONS)
    layout = kafka.topic(topic)["partitions"]
    regions = {b["id"]: b["region"] for b in kafka.brokers}
    assert {regions[p["leader"]] for p in layout} == {"eu", "us", "ap"}, layout
    k = start_kstretch(kafka, max_node_id=3, extra_args=("--fetch-prefer-local", "false"))
    sent = records.make_records("rack", COUNT)
    produce(k, topic, sent)

    # Unplaced: every partition is read from its leader, 2 of 3 outside us.
    plain, consumed, _ = fetched_bytes(kafka, consumer(client, k, topic, "plain"))
    records.assert_same_records(sent, consumed, PARTITIONS)
    # Placed in us by its client.id only (no client.rack): the brokers' selector
    # answers with the us replica, and the consumer reads there.
    placed, consumed, delta = fetched_bytes(kafka, consumer(client, k, topic, "placed", "app,kstretch_rack=us-a"))
    records.assert_same_records(sent, consumed, PARTITIONS)
    kafkatest.assert_only_kstretch_reached_the_brokers(delta, k)

    print(f"{client}: bytes from brokers by region: unplaced {plain}, placed in us {placed}")
    assert 0.55 < cross_region_share(plain) < 0.8, plain
    assert cross_region_share(placed) < 0.1, placed
    m = k.metrics()
    assert m["kstretch_fetch_rack_injected"] > 0, m
    assert k.log_lines("client in rack us-a, region us (from client.id)")
