"""kstretch's own replica steering on real brokers that run no rack-aware
selector (Kafka's default: the leader serves every fetch).

With fetch.prefer.local (on by default), kstretch answers a placed consumer's
Fetch from a leader in another region with PreferredReadReplica = the in-sync
replica in the consumer's region; real clients follow it and the real
follower serves them (KIP-392 fetch from follower works on any broker: only
the choice of replica needs the selector). The relays count what each broker
sent. When that follower stops mid-run, the consumer falls back to the
leaders and nothing is lost.
"""
import os
import subprocess
import time

import pytest

import harness
import kafkatest
import records

PARTITIONS = 6
COUNT = 6000
US_BROKER = 2


@pytest.fixture(scope="module")
def plain_kafka(tmp_path_factory):
    """eu:1,us:1,ap:1 real brokers without a replica selector, min.insync.replicas 2."""
    log_dir = str(tmp_path_factory.mktemp("plain-kafka"))
    c = harness.KafkaCluster.start(log_dir, name="plain-kafka", regions="eu:1,us:1,ap:1", min_insync=2,
                                   replica_selector="none")
    yield c
    c.stop()


def produce(k, topic, sent):
    harness.run([harness.kcat_path(), "-b", k.bootstrap, "-P", "-t", topic, "-K", "\t", "-X", "acks=all"],
                input="".join(f"{key}\t{v}\n" for key, v in sent).encode(), env=harness.modern_rdkafka_env(),
                timeout=kafkatest.CLIENT_TIMEOUT_S, what="kcat producer")


def from_region(delta, cluster):
    regions = {b["id"]: b["region"] for b in cluster.brokers}
    out = {}
    for broker, d in delta.items():
        out[regions[broker]] = out.get(regions[broker], 0) + d["from_broker"]
    return out


def test_librdkafka_placed_in_us_follows_kstretchs_redirect_to_the_real_us_follower(plain_kafka, start_kstretch,
                                                                                    fresh_topic):
    topic = fresh_topic(plain_kafka, PARTITIONS)
    k = start_kstretch(plain_kafka, max_node_id=3)
    sent = records.make_records("steer", COUNT)
    produce(k, topic, sent)
    before = kafkatest.relay_snapshot(plain_kafka)
    r = harness.run([harness.kcat_path(), "-b", k.bootstrap, "-G", "steered", "-X", "auto.offset.reset=earliest",
                     "-X", "client.id=app,kstretch_rack=us-a", "-e", "-f", harness.KCAT_FORMAT, topic],
                    env=harness.modern_rdkafka_env(), timeout=kafkatest.CLIENT_TIMEOUT_S, what="kcat consumer")
    records.assert_same_records(sent, records.parse_consumed(r.stdout.decode()), PARTITIONS)
    delta = kafkatest.relay_delta(before, kafkatest.relay_snapshot(plain_kafka))
    kafkatest.assert_only_kstretch_reached_the_brokers(delta, k)
    by_region = from_region(delta, plain_kafka)
    print(f"bytes from brokers by region, steered consumer in us: {by_region}")
    # The us follower served every partition's records (an unsteered consumer
    # gets a third of them from it). The remote leaders still sent their first
    # answer per partition, records included, before kstretch turned it into a
    # redirect: with a topic this small that is all their data once.
    payload = sum(len(key) + len(v) for key, v in sent)
    assert by_region.get("us", 0) > payload, (by_region, payload)
    assert by_region.get("us", 0) > 2 * max(by_region.get("eu", 0), by_region.get("ap", 0)), by_region
    m = k.metrics()
    assert m["kstretch_fetch_redirects"] > 0, m


def start_consumer(client, k, topic, expected, tmp_path):
    """A consumer placed in us by its client.id, reading `expected` records in
    the background; returns (wait(timeout) -> exit code, stop(), its output path)."""
    if client == "java":
        import javaclients
        c = javaclients.java_cmd(["consume", k.bootstrap, topic, "fallback-java", str(expected), "110",
                                  "--client-id", "app,kstretch_rack=us-a"], str(tmp_path), "java-consumer")
        return (lambda timeout: c.wait(timeout, check=False).returncode), c.stop, c.stdout_path
    out_path = str(tmp_path / "kcat.out")
    with open(out_path, "wb") as out, open(tmp_path / "kcat.err", "wb") as err:
        p = subprocess.Popen(
            [harness.kcat_path(), "-b", k.bootstrap, "-G", "fallback", "-X", "auto.offset.reset=earliest",
             "-X", "client.id=app,kstretch_rack=us-a", "-u", "-c", str(expected), "-f", harness.KCAT_FORMAT, topic],
            stdout=out, stderr=err, env=harness.modern_rdkafka_env())

    def stop():
        if p.poll() is None:
            p.kill()
            p.wait()
    return (lambda timeout: p.wait(timeout=timeout)), stop, out_path


@pytest.mark.parametrize("client", ["kcat", "java"])
def test_the_us_follower_stopped_mid_run_loses_nothing_the_consumer_falls_back_to_the_leaders(
        plain_kafka, start_kstretch, fresh_topic, tmp_path, client):
    topic = fresh_topic(plain_kafka, PARTITIONS)
    k = start_kstretch(plain_kafka, max_node_id=3)
    sent = records.make_records("fallback", 2 * COUNT)
    first, second = sent[:COUNT], sent[COUNT:]
    produce(k, topic, first)
    wait, stop, out_path = start_consumer(client, k, topic, 2 * COUNT, tmp_path)
    try:
        lines = harness.LineCounter(out_path)
        harness.wait_until(lambda: lines() >= COUNT, 60, what="the consumer reading the first half")
        assert k.metrics()["kstretch_fetch_redirects"] > 0
        plain_kafka.must(f"down {US_BROKER}")
        produce(k, topic, second)
        rc = wait(kafkatest.CLIENT_TIMEOUT_S)
        assert rc == 0, f"the {client} consumer exited with {rc}"
    finally:
        stop()
        up = plain_kafka.control(f"up {US_BROKER}")
    assert up["ok"], up
    with open(out_path) as f:
        consumed = records.parse_consumed(f.read())
    records.assert_same_records(first + second, consumed, PARTITIONS)
    assert k.metrics()["kstretch_fetch_redirect_fallbacks"] > 0


def test_the_java_consumer_placed_in_us_follows_kstretchs_redirect_to_the_real_us_follower(
        plain_kafka, start_kstretch, fresh_topic):
    import javaclients
    topic = fresh_topic(plain_kafka, PARTITIONS)
    k = start_kstretch(plain_kafka, max_node_id=3)
    sent = records.make_records("steer-java", COUNT)
    produce(k, topic, sent)
    before = kafkatest.relay_snapshot(plain_kafka)
    r = javaclients.java_client(["consume", k.bootstrap, topic, "steered-java", str(COUNT), "90",
                                 "--client-id", "app,kstretch_rack=us-a", "--settle", "1"],
                                timeout=kafkatest.CLIENT_TIMEOUT_S)
    records.assert_same_records(sent, records.parse_consumed(r.stdout.decode()), PARTITIONS)
    delta = kafkatest.relay_delta(before, kafkatest.relay_snapshot(plain_kafka))
    kafkatest.assert_only_kstretch_reached_the_brokers(delta, k)
    by_region = from_region(delta, plain_kafka)
    print(f"bytes from brokers by region, steered Java consumer in us: {by_region}")
    payload = sum(len(key) + len(v) for key, v in sent)
    assert by_region.get("us", 0) > payload, (by_region, payload)
    assert k.metrics()["kstretch_fetch_redirects"] > 0
