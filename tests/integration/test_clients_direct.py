"""Real Kafka clients against the stretched-cluster simulator, no kstretch in
between: each produces 10,000 records with acks=all and reads them back in a
consumer group, and what it read must be exactly what it wrote.

These prove the harness (and the mock) with every client the proxy will
later stand in front of. Three regions of two brokers, one topic of 12
partitions with RF 3, no added latency.
"""
import os
import shutil

import pytest

import harness
import records

COUNT = 10_000
PARTITIONS = 12
REGIONS = "eu:2,us:2,ap:2"
CLIENT_TIMEOUT_S = 60
KCAT_FORMAT = "%p\t%o\t%k\t%s\n"

LIBRDKAFKA = {
    # Debian's build, linked by kcat and confluent-kafka: older protocol versions.
    "debian-librdkafka-2.0.2": ("2.0.2", False),
    # node-rdkafka's 2.12 build through LD_LIBRARY_PATH: modern protocol versions.
    "librdkafka-2.12": ("2.12.", True),
}


def start(start_cluster, topic):
    c = start_cluster(regions=REGIONS, topics=[f"{topic}:{PARTITIONS}:3"])
    leaders = {c.broker(p["leader"])["region"] for p in c.topic(topic)["partitions"]}
    assert leaders == {"eu", "us", "ap"}, f"leaders of {topic} are all in {leaders}"
    return c


def kcat_path():
    path = shutil.which("kcat")
    if not path:
        pytest.fail("kcat is not installed (run `make deps`)", pytrace=False)
    return path


def librdkafka_env(build):
    if LIBRDKAFKA[build][1]:
        return harness.modern_rdkafka_env()
    env = dict(os.environ)
    env.pop("LD_LIBRARY_PATH", None)
    return env


def node_env():
    harness.require(os.path.join(harness.NODE_MODULES, "kafkajs", "package.json"), "kafkajs", "run `make deps`")
    if not shutil.which("node"):
        pytest.fail("node is not installed (run `make deps`)", pytrace=False)
    return dict(os.environ, NODE_PATH=harness.NODE_MODULES, KSTRETCH_NODE_MODULES=harness.NODE_MODULES)


def kcat_consume(bootstrap, topic, group, env):
    """A kcat balanced consumer (-G) from the earliest offset that exits once
    every assigned partition reached its end (-e)."""
    r = harness.run([kcat_path(), "-b", bootstrap, "-G", group, "-X", "auto.offset.reset=earliest", "-e",
                     "-f", KCAT_FORMAT, topic],
                    env=env, timeout=CLIENT_TIMEOUT_S, what="kcat consumer")
    return records.parse_consumed(r.stdout.decode())


def client_version(stderr):
    for line in stderr.decode("utf-8", "replace").splitlines():
        if line.startswith("client-version: "):
            return line[len("client-version: "):]
    return ""


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
