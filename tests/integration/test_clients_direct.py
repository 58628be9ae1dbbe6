"""Real Kafka clients against the stretched-cluster simulator, no kstretch in
between: each produces 10,000 records with acks=all and reads them back in a
consumer group, and what it read must be exactly what it wrote.

These prove the harness (and the mock) with every client the proxy will
later stand in front of. Three regions of two brokers, one topic of 12
partitions with RF 3, no added latency.
"""
import os

import pytest

import harness
import records

COUNT = 10_000
PARTITIONS = 12
REGIONS = "eu:2,us:2,ap:2"
CLIENT_TIMEOUT_S = 60
KCAT_FORMAT = harness.KCAT_FORMAT
LIBRDKAFKA = harness.LIBRDKAFKA
kcat_path = harness.kcat_path
librdkafka_env = harness.librdkafka_env
node_env = harness.node_env
client_version = harness.client_version


def start(start_cluster, topic):
    c = start_cluster(regions=REGIONS, topics=[f"{topic}:{PARTITIONS}:3"])
    leaders = {c.broker(p["leader"])["region"] for p in c.topic(topic)["partitions"]}
    assert leaders == {"eu", "us", "ap"}, f"leaders of {topic} are all in {leaders}"
    return c


def kcat_consume(bootstrap, topic, group, env):
    return harness.kcat_consume(bootstrap, topic, group, env, timeout=CLIENT_TIMEOUT_S)


@pytest.mark.parametrize("build", list(LIBRDKAFKA))
def test_kcat_produces_and_consumes_10000_records_in_a_group(start_cluster, tmp_path, build):
    topic = f"kcat-{build}"
    c = start(start_cluster, topic)
    env = librdkafka_env(build)
    version = harness.run([kcat_path(), "-V"], env=env, timeout=10).stdout.decode()
    assert f"librdkafka {LIBRDKAFKA[build][0]}" in version, version

    producer = [kcat_path(), "-b", c.bootstrap, "-P", "-t", topic, "-K", "\t", "-X", "acks=all"]
    dump = harness.run(producer + ["-X", "dump"], env=env, timeout=10).stdout.decode()
    assert "request.required.acks = -1" in dump.splitlines(), "kcat did not take -X acks=all"

    sent = records.make_records(topic, COUNT)
    data = "".join(f"{k}\t{v}\n" for k, v in sent).encode()
    harness.run(producer, input=data, env=env, timeout=CLIENT_TIMEOUT_S, what="kcat producer")

    records.assert_same_records(sent, kcat_consume(c.bootstrap, topic, f"{topic}-group", env), PARTITIONS)


def python_roundtrip(client, c, topic, tmp_path, env=None):
    sent = records.make_records(topic, COUNT)
    inp = records.write_tsv(tmp_path / "records.tsv", sent)
    r = harness.run([harness.PYTHON, os.path.join(harness.CLIENTS, "python_roundtrip.py"), client, c.bootstrap,
                     topic, f"{topic}-group", inp, str(COUNT), str(CLIENT_TIMEOUT_S - 10)],
                    env=env, timeout=CLIENT_TIMEOUT_S, what=client)
    records.assert_same_records(sent, records.parse_consumed(r.stdout.decode()), PARTITIONS)
    return client_version(r.stderr)


def test_kafka_python_produces_and_consumes_10000_records_in_a_group(start_cluster, tmp_path):
    topic = "kafka-python"
    c = start(start_cluster, topic)
    version = python_roundtrip("kafka-python", c, topic, tmp_path)
    assert version.startswith("kafka-python 2."), version


@pytest.mark.parametrize("build", list(LIBRDKAFKA))
def test_confluent_kafka_python_produces_and_consumes_10000_records_in_a_group(start_cluster, tmp_path, build):
    topic = f"confluent-{build}"
    c = start(start_cluster, topic)
    version = python_roundtrip("confluent-kafka", c, topic, tmp_path, env=librdkafka_env(build))
    assert f"librdkafka {LIBRDKAFKA[build][0]}" in version, version


def test_kafkajs_produces_and_consumes_10000_records_in_a_group(start_cluster, tmp_path):
    topic = "kafkajs"
    c = start(start_cluster, topic)
    env = node_env()
    sent = records.make_records(topic, COUNT)
    inp = records.write_tsv(tmp_path / "records.tsv", sent)
    r = harness.run(["node", os.path.join(harness.CLIENTS, "kafkajs_roundtrip.js"), c.bootstrap, topic,
                     f"{topic}-group", inp, str(COUNT), str(CLIENT_TIMEOUT_S - 10)],
                    env=env, timeout=CLIENT_TIMEOUT_S, what="kafkajs_roundtrip.js")
    assert client_version(r.stderr).startswith("kafkajs 2."), r.stderr[-2000:]
    records.assert_same_records(sent, records.parse_consumed(r.stdout.decode()), PARTITIONS)


def test_platformatic_kafka_produces_10000_records_that_kcat_reads_back_in_a_group(start_cluster, tmp_path):
    topic = "platformatic"
    c = start(start_cluster, topic)
    env = node_env()
    harness.require(os.path.join(harness.NODE_MODULES, "@platformatic", "kafka", "package.json"),
                    "@platformatic/kafka", "run `make deps`")
    sent = records.make_records(topic, COUNT)
    inp = records.write_tsv(tmp_path / "records.tsv", sent)
    r = harness.run(["node", os.path.join(harness.CLIENTS, "platformatic_produce.mjs"), c.bootstrap, topic, inp,
                     str(CLIENT_TIMEOUT_S - 10)],
                    env=env, timeout=CLIENT_TIMEOUT_S, what="platformatic_produce.mjs")
    assert client_version(r.stderr).startswith("@platformatic/kafka 2."), r.stderr[-2000:]
    acked = [tuple(map(int, line.split("\t"))) for line in r.stdout.decode().splitlines()]

    consumed = kcat_consume(c.bootstrap, topic, f"{topic}-group", harness.modern_rdkafka_env())
    records.assert_same_records(sent, consumed, PARTITIONS)

    # Each send() of 1,000 records got, per partition, the offset of its first
    # record there: it must be where that record was read back.
    first = {}
    for p, o, _, v in sorted(consumed):  # by partition, then offset
        first.setdefault((records.sequence_of(v) // 1000, p), o)
    expected = sorted((send, p, o) for (send, p), o in first.items())
    assert sorted(acked) == expected, \
        "base offsets acknowledged to the producer differ from where the records were read back"
