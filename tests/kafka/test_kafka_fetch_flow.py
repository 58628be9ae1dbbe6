"""Fetch answers of the Java consumer flow through kstretch instead of being
held whole (fetch.cut.through, issue 13).

The Java client 4.4 fetches with Fetch v18, whose answers end with
NodeEndpoints (KIP-951). Held whole to rewrite those, every answer costs
kstretch its full size in memory (up to fetch.max.bytes, 50 MiB by default)
and its full transfer time in latency. With fetch.cut.through (the default)
kstretch sends those requests to the broker as v15 (the same request), whose
answer is v18's without NodeEndpoints: it moves as it arrives, and kstretch's
memory stays at its output watermark. Apache Kafka's own
kafka-consumer-perf-test reads ~48 MiB answers here, through kstretch with
the setting on and off; kstretch's resident memory is sampled all along.
"""
import os

import harness
import javaclients
import kafkatest

RECORD_SIZE = 100_000
RECORDS = 1_500  # 150 MB
FETCH_SIZE = 48 << 20  # max.partition.fetch.bytes: one partition, answers of up to ~48 MiB
TOOL_TIMEOUT_S = 180


def kafka_tool(main, args, tmp_path, what):
    """Runs one of Apache Kafka's tools (org.apache.kafka.tools.*) from the jars `make deps` resolved."""
    argv = ["java", "-Xmx512m", "-XX:+UseSerialGC", f"-Dlog4j2.configurationFile={javaclients.LOG4J2_CONFIG}",
            "-cp", os.path.join(javaclients.kafka_libs(), "*"), f"org.apache.kafka.tools.{main}", *args]
    return harness.run(argv, timeout=TOOL_TIMEOUT_S, what=what)


def consume_sampling_rss(k, topic, group, tmp_path):
    """kafka-consumer-perf-test reads the topic through kstretch; returns the
    tool's output and kstretch's peak resident memory (KiB) meanwhile."""
    with harness.PeakRss(k.pid, interval=0.01) as rss:
        r = kafka_tool("ConsumerPerformance",
                       ["--bootstrap-server", k.bootstrap, "--topic", topic, "--num-records", str(RECORDS),
                        "--group", group, "--timeout", "60000", "--fetch-size", str(FETCH_SIZE),
                        "--command-property", "fetch.max.bytes=52428800"], tmp_path, "kafka-consumer-perf-test")
    return r.stdout.decode(), rss.peak


def test_the_java_consumers_48_mib_fetch_answers_flow_through_kstretch_without_being_held(
        kafka, start_kstretch, fresh_topic, tmp_path):
    topic = fresh_topic(kafka, 1, rf=1)
    kafka_tool("ProducerPerformance",
               ["--topic", topic, "--num-records", str(RECORDS), "--record-size", str(RECORD_SIZE),
                "--throughput", "-1", "--bootstrap-server", kafka.bootstrap,
                "--command-property", "acks=1", "--command-property", "batch.size=1000000",
                "--command-property", "linger.ms=20"], tmp_path, "kafka-producer-perf-test")

    results = {}
    for cut_through in (True, False):
        k = start_kstretch(kafka, max_node_id=3, workers=1,
                           extra_args=("--fetch-cut-through", "true" if cut_through else "false",
                                       "--log-level", "info"))
        base = k.rss_kib()
        before = kafkatest.relay_snapshot(kafka)
        out, peak = consume_sampling_rss(k, topic, f"flow-{cut_through}", tmp_path)
        delta = kafkatest.relay_delta(before, kafkatest.relay_snapshot(kafka))
        kafkatest.assert_only_kstretch_reached_the_brokers(delta, k)
        m = k.metrics()
        fetched = sum(d["from_broker"] for d in delta.values())
        results[cut_through] = dict(base=base, peak=peak, metrics=m, fetched=fetched)
        print(f"fetch.cut.through={cut_through}: kstretch RSS {base} KiB at start, peak {peak} KiB, "
              f"{fetched / 1e6:.0f} MB from the broker, Fetch as v15 {m['kstretch_fetch_requests_as_v15']}, "
              f"bytes copied {m['kstretch_bytes_copied']}\n{out}")
        assert fetched >= RECORDS * RECORD_SIZE, f"the consumer read {fetched} bytes from the broker"
        assert k.stop() == 0

    on, off = results[True], results[False]
    # On: every Fetch went as v15, no answer was held or copied whole, and
    # memory stayed within the 4 MiB output watermark plus a socket read or two.
    assert on["metrics"]["kstretch_fetch_requests_as_v15"] > 0
    assert on["metrics"]["kstretch_bytes_copied"] < 1 << 20, on["metrics"]
    assert on["peak"] - on["base"] < 24 << 10, on
    # Off (the test can fail): answers of ~48 MiB were held whole.
    assert off["metrics"]["kstretch_fetch_requests_as_v15"] == 0
    assert off["peak"] - off["base"] > 40 << 10, off
