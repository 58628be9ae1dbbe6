"""The perf tools (bench/producer_perf.c, bench/consumer_perf.c) against the
stretched-cluster simulator: they take kafka-producer-perf-test's and
kafka-consumer-perf-test's options, print those tools' lines, count exactly
what they produced and consumed, and say with their exit status whether the
run succeeded (0), failed (1) or was given bad arguments (2).

One region of one broker, topic `perf` with one partition. Counts stay small:
the mock keeps only ~5 MB per partition and drops older records.
"""
import importlib.util
import json
import os
import re

import pytest

import harness

PRODUCER = os.path.join(harness.BUILD, "bench", "kstretch-producer-perf")
CONSUMER = os.path.join(harness.BUILD, "bench", "kstretch-consumer-perf")

COUNT = 20_000
SIZE = 100
MB = 1024 * 1024
TOOL_TIMEOUT_S = 60

WINDOW_LINE = re.compile(r"^(\d+) records sent, (\d+\.\d) records/sec \((\d+\.\d\d) MB/sec\), "
                         r"(\d+\.\d) ms avg latency, (\d+\.\d) ms max latency\.$")
TOTAL_LINE = re.compile(r"^(\d+) records sent, (\d+\.\d{6}) records/sec \((\d+\.\d\d) MB/sec\), "
                        r"(\d+\.\d\d) ms avg latency, (\d+\.\d\d) ms max latency, "
                        r"(\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th, (\d+) ms 99\.9th\.$")
CONSUMER_HEADER = ("start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, "
                   "rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec")
DATE = r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d:\d{3})"
F4 = r"(\d+\.\d{4})"
CONSUMER_LINE = re.compile(rf"^{DATE}, {DATE}, {F4}, {F4}, (\d+), {F4}, (\d+), (-?\d+), {F4}, {F4}$")
PRODUCER_JSON_KEYS = {"records", "records_per_sec", "mb_per_sec", "avg_ms", "max_ms", "p50", "p95", "p99", "p999",
                      "errors"}


def producer(*args, timeout=TOOL_TIMEOUT_S, check=True):
    harness.require_executable(PRODUCER, "kstretch-producer-perf")
    return harness.run([PRODUCER, *args], timeout=timeout, check=check)


def consumer(*args, timeout=TOOL_TIMEOUT_S, check=True):
    harness.require_executable(CONSUMER, "kstretch-consumer-perf")
    return harness.run([CONSUMER, *args], timeout=timeout, check=check)


def produce_args(c, count=COUNT, throughput=-1):
    return ["--topic", "perf", "--num-records", str(count), "--record-size", str(SIZE), "--throughput", str(throughput),
            "--producer-props", f"bootstrap.servers={c.bootstrap}", "acks=1"]


def lines(r):
    return r.stdout.decode().splitlines()


def total(out):
    """The producer's final line, parsed; every line before it must be a 5 s window line."""
    assert out, "no output"
    for line in out[:-1]:
        assert WINDOW_LINE.match(line), f"not a window line: {line!r}"
    m = TOTAL_LINE.match(out[-1])
    assert m, f"not a final line: {out[-1]!r}"
    return m


def consumer_summary(r):
    out = lines(r)
    assert len(out) == 2, out
    assert out[0] == CONSUMER_HEADER
    m = CONSUMER_LINE.match(out[1])
    assert m, f"not a summary line: {out[1]!r}"
    return m


@pytest.fixture
def perf_cluster(start_cluster):
    return start_cluster(regions="eu:1", topics=["perf:1:1"])


def test_unthrottled_producer_delivers_every_record_and_the_consumer_reads_them_back(perf_cluster):
    r = producer(*produce_args(perf_cluster))
    m = total(lines(r))
    assert int(m[1]) == COUNT
    rps, mbps = float(m[2]), float(m[3])
    assert rps > 0
    assert mbps == pytest.approx(rps * SIZE / MB, abs=0.01)
    avg, mx, p50, p95, p99, p999 = float(m[4]), float(m[5]), *map(int, m.group(6, 7, 8, 9))
    assert 0 <= avg <= mx
    assert p50 <= p95 <= p99 <= p999 <= mx

    r = consumer("--bootstrap-server", perf_cluster.bootstrap, "--topic", "perf", "--messages", str(COUNT),
                 "--group", "perf-readers")
    m = consumer_summary(r)
    start, end, mb, msgs = m[1], m[2], float(m[3]), int(m[5])
    assert msgs == COUNT
    assert mb == pytest.approx(COUNT * SIZE / MB, abs=0.0001)
    assert start <= end
    rebalance_ms, fetch_ms = int(m[7]), int(m[8])
    assert rebalance_ms >= 0 and fetch_ms >= 0


def test_throttled_producer_keeps_to_the_target_rate_and_reports_every_5_seconds(perf_cluster):
    rate = 3500  # 20,000 records take ~5.7 s: one window line, then the total
    r = producer(*produce_args(perf_cluster, COUNT, rate))
    m = total(lines(r))
    assert int(m[1]) == COUNT
    assert float(m[2]) == pytest.approx(rate, rel=0.05)
    windows = lines(r)[:-1]
    assert len(windows) >= 1
    w = WINDOW_LINE.match(windows[0])
    assert float(w[2]) == pytest.approx(rate, rel=0.1)


def test_json_results_are_one_line_each_for_scripts(perf_cluster):
    r = producer(*produce_args(perf_cluster, 5000), "--json")
    out = lines(r)
    assert len(out) == 1, out
    result = json.loads(out[0])
    assert PRODUCER_JSON_KEYS <= set(result)
    assert result["records"] == 5000 and result["errors"] == 0
    assert result["p50"] <= result["p95"] <= result["p99"] <= result["p999"] <= result["max_ms"]

    r = consumer("--bootstrap-server", perf_cluster.bootstrap, "--topic", "perf", "--messages", "5000", "--json")
    out = lines(r)
    assert len(out) == 1, out
    result = json.loads(out[0])
    assert result["messages"] == 5000 and result["expected"] == 5000 and result["complete"] is True
    assert result["mb"] == pytest.approx(5000 * SIZE / MB, abs=0.0001)


def test_consumer_with_assign_reads_every_partition_without_a_group(start_cluster):
    """--assign (what bench/regional_bench.py uses: regional mode has no groups
    yet): every partition of a 4-partition topic by hand, from the beginning."""
    c = start_cluster(regions="eu:1", topics=["perf4:4:1"])
    producer("--topic", "perf4", "--num-records", str(COUNT), "--record-size", str(SIZE), "--throughput", "-1",
             "--producer-props", f"bootstrap.servers={c.bootstrap}", "acks=1")
    r = consumer("--bootstrap-server", c.bootstrap, "--topic", "perf4", "--messages", str(COUNT), "--assign",
                 "--json")
    result = json.loads(lines(r)[0])
    assert result["messages"] == COUNT and result["complete"] is True
    # One more than the topic holds: times out, as with a group.
    r = consumer("--bootstrap-server", c.bootstrap, "--topic", "perf4", "--messages", str(COUNT + 1), "--assign",
                 "--timeout", "2000", "--json", check=False)
    assert r.returncode == 1 and json.loads(lines(r)[0])["messages"] == COUNT
    r = consumer("--bootstrap-server", c.bootstrap, "--topic", "perf4", "--messages", "1", "--assign", "--group",
                 "g", check=False)
    assert r.returncode == 2 and b"--assign consumes without a group" in r.stderr
    r = consumer("--bootstrap-server", c.bootstrap, "--topic", "no-such-topic", "--messages", "1", "--assign",
                 "--timeout", "2000", check=False)
    assert r.returncode == 1 and b"cannot assign the partitions of no-such-topic" in r.stderr


def test_payload_file_and_producer_config_file(perf_cluster, tmp_path):
    payloads = [f"line-{i:03d}-".ljust(50, "x") for i in range(100)]
    payload_file = tmp_path / "payloads.txt"
    payload_file.write_text("\n".join(payloads) + "\n")
    config = tmp_path / "producer.properties"
    config.write_text(f"# the Java tool's file format\nbootstrap.servers = {perf_cluster.bootstrap}\nacks: 1\n"
                      "linger.ms \\\n  2\n")
    r = producer("--topic", "perf", "--num-records", "3000", "--payload-file", str(payload_file), "--throughput", "-1",
                 "--producer.config", str(config), "--print-metrics")
    out = lines(r)
    assert out[0] == f"Reading payloads from: {payload_file}"
    assert out[1] == "Number of messages read: 100"
    m = total(out[2:])
    assert int(m[1]) == 3000
    assert float(m[3]) == pytest.approx(float(m[2]) * 50 / MB, abs=0.01)

    r = consumer("--bootstrap-server", perf_cluster.bootstrap, "--topic", "perf", "--messages", "3000")
    m = consumer_summary(r)
    assert int(m[5]) == 3000
    assert float(m[3]) == pytest.approx(3000 * 50 / MB, abs=0.0001)


def test_failed_deliveries_are_counted_and_exit_1(perf_cluster):
    # The broker rejects the next Produce request with INVALID_RECORD (87), which is not retried.
    perf_cluster.must("error 0 87 1")
    r = producer(*produce_args(perf_cluster), "--json", check=False)
    assert r.returncode == 1, r.stderr.decode()
    result = json.loads(lines(r)[-1])
    assert result["errors"] > 0
    assert result["records"] + result["errors"] == COUNT
    err = r.stderr.decode()
    assert f"{result['errors']} of {COUNT} records failed delivery" in err
    assert "INVALID_RECORD" in err


def test_consumer_that_runs_out_of_messages_times_out_with_exit_1(perf_cluster):
    producer(*produce_args(perf_cluster, 1000))
    r = consumer("--bootstrap-server", perf_cluster.bootstrap, "--topic", "perf", "--messages", "2000", "--timeout",
                 "4000", check=False)
    assert r.returncode == 1
    m = consumer_summary(r)
    assert int(m[5]) == 1000
    assert "timed out: no message for 4000 ms; consumed 1000 of 2000 messages" in r.stderr.decode()


def test_producer_gives_up_on_an_unreachable_cluster_within_its_timeout(tmp_path):
    # Port 1 on loopback: nothing listens there, every connection is refused.
    r = producer("--topic", "perf", "--num-records", "100", "--record-size", "10", "--throughput", "-1",
                 "--producer-props", "bootstrap.servers=127.0.0.1:1", "--timeout", "1500", "--json", timeout=20,
                 check=False)
    assert r.returncode == 1
    result = json.loads(lines(r)[-1])
    assert result["records"] == 0 and result["errors"] == 100
    assert "gave up: no delivery report for 1500 ms" in r.stderr.decode()


BAD_PRODUCER_ARGS = {
    "unknown option": ["--topic", "t", "--num-records", "1", "--record-size", "1", "--throughput", "-1",
                       "--producer-props", "bootstrap.servers=x", "--bogus"],
    "missing --topic": ["--num-records", "1", "--record-size", "1", "--throughput", "-1", "--producer-props",
                        "bootstrap.servers=x"],
    "non-numeric --num-records": ["--topic", "t", "--num-records", "many", "--record-size", "1", "--throughput", "-1",
                                  "--producer-props", "bootstrap.servers=x"],
    "--throughput 0": ["--topic", "t", "--num-records", "1", "--record-size", "1", "--throughput", "0",
                       "--producer-props", "bootstrap.servers=x"],
    "both --record-size and --payload-file": ["--topic", "t", "--num-records", "1", "--record-size", "1",
                                              "--payload-file", "/dev/null", "--throughput", "-1",
                                              "--producer-props", "bootstrap.servers=x"],
    "property without =": ["--topic", "t", "--num-records", "1", "--record-size", "1", "--throughput", "-1",
                           "--producer-props", "bootstrap.servers=x", "acks"],
    "unknown property": ["--topic", "t", "--num-records", "1", "--record-size", "1", "--throughput", "-1",
                         "--producer-props", "bootstrap.servers=x", "no.such.property=1"],
    "no bootstrap.servers": ["--topic", "t", "--num-records", "1", "--record-size", "1", "--throughput", "-1",
                             "--producer-props", "acks=1"],
    "missing value": ["--topic"],
}

BAD_CONSUMER_ARGS = {
    "unknown option": ["--bootstrap-server", "x", "--topic", "t", "--messages", "1", "--bogus"],
    "missing --messages": ["--bootstrap-server", "x", "--topic", "t"],
    "missing --bootstrap-server": ["--topic", "t", "--messages", "1"],
    "negative --timeout": ["--bootstrap-server", "x", "--topic", "t", "--messages", "1", "--timeout", "-5"],
    "unreadable --consumer.config": ["--bootstrap-server", "x", "--topic", "t", "--messages", "1",
                                     "--consumer.config", "/nonexistent/consumer.properties"],
}


BAD_ARGS = ([pytest.param(PRODUCER, a, id=f"producer: {k}") for k, a in BAD_PRODUCER_ARGS.items()] +
            [pytest.param(CONSUMER, a, id=f"consumer: {k}") for k, a in BAD_CONSUMER_ARGS.items()])


@pytest.mark.parametrize("tool,args", BAD_ARGS)
def test_bad_arguments_exit_2_with_a_message(tool, args):
    harness.require_executable(tool, os.path.basename(tool))
    r = harness.run([tool, *args], timeout=10, check=False)
    assert r.returncode == 2
    assert r.stdout == b""
    err = r.stderr.decode()
    assert err.startswith(os.path.basename(tool) + ": ") and "--help" in err, err


# ---------------------------------------------------------------- parsers written for the Java tools

# Output of Apache Kafka's kafka-producer-perf-test and kafka-consumer-perf-test
# (ProducerPerformance / ConsumerPerformance), in their printf formats: 5 s
# window lines, the final line (with " steady state" when --warmup-records is
# given), the consumer's header and summary line.
JAVA_PRODUCER_OUTPUT = """\
249935 records sent, 49977.0 records/sec (48.81 MB/sec), 511.3 ms avg latency, 829.0 ms max latency.
250125 records sent, 50015.0 records/sec (48.84 MB/sec), 602.8 ms avg latency, 784.0 ms max latency.
1000000 records sent, 49962.528104 records/sec (48.79 MB/sec), 566.61 ms avg latency, 829.00 ms max latency, \
584 ms 50th, 761 ms 95th, 802 ms 99th, 822 ms 99.9th.
900000 steady state records sent, 49971.890304 records/sec (48.80 MB/sec), 569.12 ms avg latency, \
829.00 ms max latency, 586 ms 50th, 762 ms 95th, 803 ms 99th, 822 ms 99.9th.
"""
JAVA_CONSUMER_OUTPUT = """\
start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, \
fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec
2024-03-04 10:15:02:118, 2024-03-04 10:15:14:407, 976.5625, 79.4664, 1000000, 81373.5862, 3037, 9252, \
105.5515, 108084.7384
"""

# The kind of regular expressions scripts use to scrape the Java tools: loose
# about digits, strict about the words and punctuation the Java formats print.
JAVA_WINDOW_RE = re.compile(r"^(?P<records>\d+) records sent, (?P<rps>\d+(?:\.\d+)?) records/sec "
                            r"\((?P<mbps>\d+(?:\.\d+)?) MB/sec\), (?P<avg>\d+(?:\.\d+)?) ms avg latency, "
                            r"(?P<max>\d+(?:\.\d+)?) ms max latency\.$")
JAVA_TOTAL_RE = re.compile(r"^(?P<records>\d+)(?: steady state)? records sent, (?P<rps>\d+(?:\.\d+)?) records/sec "
                           r"\((?P<mbps>\d+(?:\.\d+)?) MB/sec\), (?P<avg>\d+(?:\.\d+)?) ms avg latency, "
                           r"(?P<max>\d+(?:\.\d+)?) ms max latency, (?P<p50>\d+) ms 50th, (?P<p95>\d+) ms 95th, "
                           r"(?P<p99>\d+) ms 99th, (?P<p999>\d+) ms 99\.9th\.$")
JAVA_CONSUMER_RE = re.compile(r"^(?P<start>[\d\- :]+), (?P<end>[\d\- :]+), (?P<mb>[\d.]+), (?P<mbps>[\d.]+), "
                              r"(?P<msgs>\d+), (?P<msgps>[\d.]+), (?P<rebalance_ms>-?\d+), (?P<fetch_ms>-?\d+), "
                              r"(?P<fetch_mbps>[\d.]+), (?P<fetch_msgps>[\d.]+)$")


def split_producer_total(line):
    """The final line read field by field after splitting on commas, as Apache
    Kafka's own system tests (kafkatest's ProducerPerformanceService) read it."""
    parts = line.split(",")
    return {"records": int(parts[0].split()[0]), "records_per_sec": float(parts[1].split()[0]),
            "mbps": float(parts[1].split("(")[1].split()[0]), "avg_ms": float(parts[2].split()[0]),
            "max_ms": float(parts[3].split()[0]), "p50": float(parts[4].split()[0]), "p95": float(parts[5].split()[0]),
            "p99": float(parts[6].split()[0]), "p999": float(parts[7].split()[0])}


def split_consumer_summary(line):
    """The summary line as kafkatest's ConsumerPerformanceService reads it: comma fields 2, 3 and 5."""
    parts = line.split(",")
    return {"total_mb": float(parts[2]), "mbps": float(parts[3]), "records_per_sec": float(parts[5])}


def test_the_parsers_read_the_java_tools_output():
    """The parsers below are parsers of the Java tools' output (checked on its formats)."""
    lines = JAVA_PRODUCER_OUTPUT.splitlines()
    assert all(JAVA_WINDOW_RE.match(line) for line in lines[:2])
    assert [int(JAVA_TOTAL_RE.match(line)["p999"]) for line in lines[2:]] == [822, 822]
    assert split_producer_total(lines[2])["records_per_sec"] == 49962.528104
    assert split_producer_total(lines[3])["records"] == 900000
    header, summary = JAVA_CONSUMER_OUTPUT.splitlines()
    assert header == CONSUMER_HEADER
    assert JAVA_CONSUMER_RE.match(summary)["msgs"] == "1000000"
    assert split_consumer_summary(summary) == {"total_mb": 976.5625, "mbps": 79.4664, "records_per_sec": 81373.5862}


def test_the_perf_tools_output_parses_with_the_java_tools_parsers(perf_cluster):
    # 4,000 records/s for 24,000 records: one 5 s window line, then the total.
    r = producer(*produce_args(perf_cluster, 24_000, 4000))
    out = lines(r)
    assert len(out) >= 2
    for line in out[:-1]:
        m = JAVA_WINDOW_RE.match(line)
        assert m, f"the Java tools' window regex does not match {line!r}"
        assert float(m["rps"]) == pytest.approx(4000, rel=0.1)
    m = JAVA_TOTAL_RE.match(out[-1])
    assert m, f"the Java tools' final-line regex does not match {out[-1]!r}"
    split = split_producer_total(out[-1])
    assert split["records"] == int(m["records"]) == 24_000
    assert split["records_per_sec"] == float(m["rps"]) == pytest.approx(4000, rel=0.05)
    assert split["mbps"] == float(m["mbps"])
    assert split["p50"] <= split["p95"] <= split["p99"] <= split["p999"] <= split["max_ms"]

    r = consumer("--bootstrap-server", perf_cluster.bootstrap, "--topic", "perf", "--messages", "24000")
    header, summary = lines(r)
    assert header == JAVA_CONSUMER_OUTPUT.splitlines()[0]
    m = JAVA_CONSUMER_RE.match(summary)
    assert m, f"the Java tools' consumer regex does not match {summary!r}"
    split = split_consumer_summary(summary)
    assert int(m["msgs"]) == 24_000
    assert split["total_mb"] == float(m["mb"]) == pytest.approx(24_000 * SIZE / MB, abs=0.0001)
    assert split["records_per_sec"] == float(m["msgps"]) > 0


# ---------------------------------------------------------------- bench/kafka_bench.py's parsers

# The real-Kafka benchmark (bench/kafka_bench.py) runs the Java tools and reads
# their output with its own parsers: they must read what the regexes above
# read, from the Java tools' formats and from the work-alikes' real output.

def kafka_bench():
    spec = importlib.util.spec_from_file_location("kafka_bench", os.path.join(harness.REPO, "bench", "kafka_bench.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def assert_same_total(parsed, line):
    m = JAVA_TOTAL_RE.match(line)
    assert m, line
    split = split_producer_total(line)
    assert parsed["records"] == int(m["records"]) == split["records"]
    assert parsed["records_per_sec"] == float(m["rps"]) == split["records_per_sec"]
    assert parsed["mb_per_sec"] == float(m["mbps"]) == split["mbps"]
    assert parsed["avg_ms"] == float(m["avg"]) == split["avg_ms"]
    assert parsed["max_ms"] == float(m["max"]) == split["max_ms"]
    for q in ("p50", "p95", "p99", "p999"):
        assert parsed[f"{q}_ms"] == int(m[q]) == split[q]


def assert_same_summary(parsed, line):
    m = JAVA_CONSUMER_RE.match(line)
    assert m, line
    split = split_consumer_summary(line)
    assert parsed["mb"] == float(m["mb"]) == split["total_mb"]
    assert parsed["mb_per_sec"] == float(m["mbps"]) == split["mbps"]
    assert parsed["messages"] == int(m["msgs"])
    assert parsed["messages_per_sec"] == float(m["msgps"]) == split["records_per_sec"]
    assert parsed["rebalance_ms"] == int(m["rebalance_ms"]) and parsed["fetch_ms"] == int(m["fetch_ms"])
    assert parsed["fetch_mb_per_sec"] == float(m["fetch_mbps"])
    assert parsed["fetch_messages_per_sec"] == float(m["fetch_msgps"])
    assert (parsed["start"], parsed["end"]) == (m["start"], m["end"])


def test_kafka_bench_reads_the_java_tools_output_as_the_regexes_do():
    kb = kafka_bench()
    lines = JAVA_PRODUCER_OUTPUT.splitlines()
    parsed = kb.parse_producer_output(JAVA_PRODUCER_OUTPUT)
    assert_same_total(parsed, lines[2])
    assert_same_total(parsed["steady_state"], lines[3])
    assert parsed["steady_state"]["records"] == 900000
    assert [w["records_per_sec"] for w in parsed["windows"]] == [float(JAVA_WINDOW_RE.match(line)["rps"])
                                                                 for line in lines[:2]] == [49977.0, 50015.0]
    # Without --warmup-records there is no steady-state line.
    assert kb.parse_producer_output("\n".join(lines[:3]) + "\n")["steady_state"] is None

    parsed = kb.parse_consumer_output(JAVA_CONSUMER_OUTPUT)
    assert_same_summary(parsed, JAVA_CONSUMER_OUTPUT.splitlines()[1])
    assert parsed["messages"] == 1000000 and parsed["warnings"] == []
    # ConsumerPerformance warns on stdout when --timeout ends it early; the warning is kept.
    warned = ("WARNING: Exiting before consuming the expected number of records: timeout (30000 ms) exceeded. "
              "You can use the --timeout option to increase the timeout.\n" + JAVA_CONSUMER_OUTPUT)
    parsed = kb.parse_consumer_output(warned)
    assert parsed["messages"] == 1000000 and parsed["warnings"][0].startswith("WARNING: Exiting before")


def test_kafka_bench_refuses_output_without_its_summary():
    kb = kafka_bench()
    lines = JAVA_PRODUCER_OUTPUT.splitlines()
    bad_producer = {"window lines only": lines[:2], "steady state only": lines[3:], "two totals": lines[2:3] * 2,
                    "truncated total": [lines[2][:-20]], "nothing": []}
    for what, text in bad_producer.items():
        with pytest.raises(ValueError):
            kb.parse_producer_output("\n".join(text))
            pytest.fail(f"parsed: {what}")
    header, summary = JAVA_CONSUMER_OUTPUT.splitlines()
    bad_consumer = {"header only": [header], "summary only": [summary],
                    "a field short": [header, summary.rsplit(",", 1)[0]],
                    "a number that is not": [header, summary.replace("976.5625", "976,5625")]}
    for what, text in bad_consumer.items():
        with pytest.raises(ValueError):
            kb.parse_consumer_output("\n".join(text))
            pytest.fail(f"parsed: {what}")


def test_kafka_bench_reads_the_perf_tools_real_output(perf_cluster):
    kb = kafka_bench()
    r = producer(*produce_args(perf_cluster, 24_000, 4000))
    out = r.stdout.decode()
    parsed = kb.parse_producer_output(out)
    assert_same_total(parsed, out.splitlines()[-1])
    assert parsed["records"] == 24_000 and len(parsed["windows"]) == len(out.splitlines()) - 1 >= 1

    r = consumer("--bootstrap-server", perf_cluster.bootstrap, "--topic", "perf", "--messages", "24000")
    out = r.stdout.decode()
    parsed = kb.parse_consumer_output(out)
    assert_same_summary(parsed, out.splitlines()[1])
    assert parsed["messages"] == 24_000
