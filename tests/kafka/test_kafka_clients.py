"""Real clients through kstretch against real Apache Kafka 4.4 brokers.

Each client is given kstretch's bootstrap address only, produces numbered
records and reads them back in a consumer group; the test checks every record
(none lost, none duplicated, order per partition: records.assert_same_records)
and that every connection the brokers accepted meanwhile came from kstretch
(the relays in front of the brokers name the connecting process).
"""
import os

import harness
import kafkatest
import records

PARTITIONS = 6
COUNT = 3000


def through_kstretch(kafka, start_kstretch, *extra):
    return start_kstretch(kafka, max_node_id=3, extra_args=extra)


def test_kcat_on_librdkafka_2_12_produces_and_consumes_every_record_once_in_order(kafka, start_kstretch,
                                                                                   fresh_topic):
    topic = fresh_topic(kafka, PARTITIONS)
    k = through_kstretch(kafka, start_kstretch)
    env = harness.modern_rdkafka_env()
    sent = records.make_records("kcat", COUNT)
    before = kafkatest.relay_snapshot(kafka)
    harness.run([harness.kcat_path(), "-b", k.bootstrap, "-P", "-t", topic, "-K", "\t", "-X", "acks=all",
                 "-X", "enable.idempotence=true"],
                input="".join(f"{key}\t{v}\n" for key, v in sent).encode(), env=env,
                timeout=kafkatest.CLIENT_TIMEOUT_S, what="kcat producer")
    consumed = harness.kcat_consume(k.bootstrap, topic, "kcat-group", env, timeout=kafkatest.CLIENT_TIMEOUT_S)
    records.assert_same_records(sent, consumed, PARTITIONS)
    kafkatest.assert_only_kstretch_reached_the_brokers(
        kafkatest.relay_delta(before, kafkatest.relay_snapshot(kafka)), k)


def test_kafkajs_produces_and_consumes_every_record_once_in_order(kafka, start_kstretch, fresh_topic):
    topic = fresh_topic(kafka, PARTITIONS)
    k = through_kstretch(kafka, start_kstretch)
    sent = records.make_records("kafkajs", COUNT)
    before = kafkatest.relay_snapshot(kafka)
    r = harness.run(["node", os.path.join(harness.CLIENTS, "kafkajs_roundtrip.js"), k.bootstrap, topic, "kafkajs-group",
                     records.write_tsv(os.path.join(k_tmp(k), "kafkajs.tsv"), sent), str(len(sent)),
                     str(kafkatest.CLIENT_TIMEOUT_S - 10)],
                    env=harness.node_env(), timeout=kafkatest.CLIENT_TIMEOUT_S, what="kafkajs_roundtrip.js")
    assert "kafkajs 2." in harness.client_version(r.stderr)
    records.assert_same_records(sent, records.parse_consumed(r.stdout.decode()), PARTITIONS)
    kafkatest.assert_only_kstretch_reached_the_brokers(
        kafkatest.relay_delta(before, kafkatest.relay_snapshot(kafka)), k)


def k_tmp(k):
    return os.path.dirname(k.proc.log_path)


def test_the_relay_check_catches_a_client_that_reaches_a_broker_without_kstretch(kafka, start_kstretch,
                                                                                   fresh_topic):
    """The check the other tests rely on fails when a client learned a broker's own address."""
    topic = fresh_topic(kafka, 1)
    k = through_kstretch(kafka, start_kstretch)
    before = kafkatest.relay_snapshot(kafka)
    harness.run([harness.kcat_path(), "-b", kafka.bootstrap, "-L", "-t", topic], env=harness.modern_rdkafka_env(),
                timeout=30, what="kcat -L straight to the brokers")
    delta = kafkatest.relay_delta(before, kafkatest.relay_snapshot(kafka))
    try:
        kafkatest.assert_only_kstretch_reached_the_brokers(delta, k)
    except AssertionError as e:
        assert "other than kstretch" in str(e)
    else:
        raise AssertionError(f"a direct client went unnoticed: {delta}")


# ---------------------------------------------------------------- the Java client (kafka-clients 4.4)

def java_roundtrip(kafka, k, topic, sent, tmp_path, group, protocol):
    import javaclients
    before = kafkatest.relay_snapshot(kafka)
    tsv = records.write_tsv(tmp_path / "in.tsv", sent)
    r = javaclients.java_client(["produce", k.bootstrap, topic, tsv, "--acks", "all", "--idempotent", "true",
                                 "--timeout", "90"], timeout=kafkatest.CLIENT_TIMEOUT_S)
    assert "kafka-clients 4.4.0" in harness.client_version(r.stderr)
    r = javaclients.java_client(["consume", k.bootstrap, topic, group, str(len(sent)), "90",
                                 "--group-protocol", protocol, "--settle", "1"], timeout=kafkatest.CLIENT_TIMEOUT_S)
    records.assert_same_records(sent, records.parse_consumed(r.stdout.decode()), PARTITIONS)
    kafkatest.assert_only_kstretch_reached_the_brokers(
        kafkatest.relay_delta(before, kafkatest.relay_snapshot(kafka)), k)


def group_type(kafka, group):
    return {g["id"]: g["type"] for g in kafka.must("groups")["groups"]}.get(group)


def test_java_idempotent_producer_and_a_classic_consumer_group_see_every_record_once_in_order(
        kafka, start_kstretch, fresh_topic, tmp_path):
    topic = fresh_topic(kafka, PARTITIONS)
    k = through_kstretch(kafka, start_kstretch)
    java_roundtrip(kafka, k, topic, records.make_records("java-classic", COUNT), tmp_path, "java-classic", "classic")
    assert group_type(kafka, "java-classic") == "classic"


def test_java_consumer_group_protocol_consumer_kip_848_sees_every_record_once_in_order(
        kafka, start_kstretch, fresh_topic, tmp_path):
    topic = fresh_topic(kafka, PARTITIONS)
    k = through_kstretch(kafka, start_kstretch)
    java_roundtrip(kafka, k, topic, records.make_records("java-848", COUNT), tmp_path, "java-848", "consumer")
    # The brokers ran the group with the KIP-848 protocol (ConsumerGroupHeartbeat through kstretch).
    assert group_type(kafka, "java-848") == "consumer"


def test_java_transactions_commit_and_abort_a_read_committed_consumer_sees_only_committed_records(
        kafka, start_kstretch, fresh_topic, tmp_path):
    import javaclients
    topic = fresh_topic(kafka, PARTITIONS)
    k = through_kstretch(kafka, start_kstretch)
    sent = records.make_records("java-txn", 2000)
    before = kafkatest.relay_snapshot(kafka)
    r = javaclients.java_client(["txn", k.bootstrap, topic, records.write_tsv(tmp_path / "in.tsv", sent),
                                 f"{topic}-txn", "100", "--timeout", "90"], timeout=kafkatest.CLIENT_TIMEOUT_S)
    committed = [tuple(line.split("\t", 1)) for line in r.stdout.decode().splitlines() if line]
    assert len(committed) == 1000, len(committed)  # batches of 100: even ones committed, odd ones aborted
    r = javaclients.java_client(["consume", k.bootstrap, topic, "java-rc", str(len(committed)), "90",
                                 "--isolation", "read_committed", "--settle", "2"], timeout=kafkatest.CLIENT_TIMEOUT_S)
    consumed = records.parse_consumed(r.stdout.decode())
    got = sorted((key, v) for _, _, key, v in consumed)
    assert got == sorted(committed), (f"read_committed read {len(consumed)} records; "
                                      f"{len(set(got) - set(committed))} not committed")
    for p in range(PARTITIONS):  # offsets have gaps (aborted records, markers) but grow
        offsets = [o for q, o, _, _ in consumed if q == p]
        assert offsets == sorted(offsets), f"partition {p} read out of order"
    kafkatest.assert_only_kstretch_reached_the_brokers(
        kafkatest.relay_delta(before, kafkatest.relay_snapshot(kafka)), k)


def test_java_admin_client_sees_kstretch_as_the_cluster_and_creates_lists_and_describes(
        kafka, start_kstretch, tmp_path):
    import json
    import javaclients
    k = through_kstretch(kafka, start_kstretch)
    before = kafkatest.relay_snapshot(kafka)
    r = javaclients.java_client(["admin", k.bootstrap, "admin-made", "4", "3", "--timeout", "90"],
                                timeout=kafkatest.CLIENT_TIMEOUT_S)
    report = json.loads(r.stdout.decode())
    nodes = sorted((n["id"], n["host"], n["port"], n["rack"]) for n in report["nodes"])
    assert nodes == [(b["id"], "127.0.0.1", k.broker_port(b["id"]), b["rack"]) for b in kafka.brokers], nodes
    assert len(report["offsets"]) == 4 and all(v == [0, 0] for v in report["offsets"].values()), report["offsets"]
    assert report["topic_configs"].get("cleanup.policy") == "delete", report["topic_configs"]
    assert report["broker_configs_count"] > 50, report
    kafkatest.assert_only_kstretch_reached_the_brokers(
        kafkatest.relay_delta(before, kafkatest.relay_snapshot(kafka)), k)


# ---------------------------------------------------------------- franz-go, and the latest from PyPI

def roundtrip_program(kafka, k, topic, argv_head, options, tmp_path, what, env=None):
    sent = records.make_records(what, COUNT)
    before = kafkatest.relay_snapshot(kafka)
    r = harness.run([*argv_head, k.bootstrap, topic, f"{what}-group", records.write_tsv(tmp_path / "in.tsv", sent),
                     str(COUNT), str(kafkatest.CLIENT_TIMEOUT_S - 10), *options],
                    env=env, timeout=kafkatest.CLIENT_TIMEOUT_S, what=what)
    records.assert_same_records(sent, records.parse_consumed(r.stdout.decode()), PARTITIONS)
    kafkatest.assert_only_kstretch_reached_the_brokers(
        kafkatest.relay_delta(before, kafkatest.relay_snapshot(kafka)), k)
    return harness.client_version(r.stderr)


def test_franz_go_produces_idempotently_and_consumes_every_record_once_in_order(kafka, start_kstretch, fresh_topic,
                                                                              tmp_path):
    topic = fresh_topic(kafka, PARTITIONS)
    k = through_kstretch(kafka, start_kstretch)
    version = roundtrip_program(kafka, k, topic, [harness.franz_path()], ["--idempotent"], tmp_path, "franz-go")
    assert version.startswith("franz-go v1."), version


def test_pypi_confluent_kafka_produces_idempotently_and_consumes_every_record_once_in_order(
        kafka, start_kstretch, fresh_topic, tmp_path):
    topic = fresh_topic(kafka, PARTITIONS)
    k = through_kstretch(kafka, start_kstretch)
    env = dict(os.environ)
    env.pop("LD_LIBRARY_PATH", None)  # the wheel's own librdkafka
    version = roundtrip_program(kafka, k, topic, [harness.venv_python(), os.path.join(harness.CLIENTS,
                                "python_roundtrip.py"), "confluent-kafka"], ["--idempotent"], tmp_path,
                                "confluent-kafka", env=env)
    assert version.startswith("confluent-kafka 2."), version


def test_pypi_kafka_python_produces_idempotently_and_consumes_every_record_once_in_order(
        kafka, start_kstretch, fresh_topic, tmp_path):
    topic = fresh_topic(kafka, PARTITIONS)
    k = through_kstretch(kafka, start_kstretch)
    version = roundtrip_program(kafka, k, topic, [harness.venv_python(), os.path.join(harness.CLIENTS,
                                "python_roundtrip.py"), "kafka-python"], ["--idempotent"], tmp_path, "kafka-python")
    assert version.startswith("kafka-python 3."), version
