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
