"""kstretch-replay (bench/replay.c), the raw load generator that isolates a
proxy: pointed at a simulator broker directly and at kstretch's listener for
that broker, what it sends lands as real records (read back by kcat on the
modern librdkafka with CRC checks on), what it reports adds up, and it says
with its exit status whether the run completed (0), failed (1: an error code,
a lost connection, the timeout — naming what and where) or was given bad
arguments (2).

One region of one broker, topic `perf` with one partition, which that broker
leads. Counts stay small: the mock keeps ~5 MB per partition.
"""
import json
import os
import subprocess
import time

import pytest

import harness

REPLAY = os.path.join(harness.BUILD, "bench", "kstretch-replay")
TOOL_TIMEOUT_S = 60
JSON_KEYS = {"target", "api", "api_version", "connections", "inflight", "acks", "record_size", "batch_records",
             "request_bytes", "requests", "records", "elapsed_s", "requests_per_sec", "records_per_sec", "mb_per_sec",
             "wire_mb_per_sec", "latency_samples", "avg_us", "p50_us", "p99_us", "p999_us", "max_us",
             "requests_total", "bytes_sent", "bytes_received", "errors"}


def replay(*args, timeout=TOOL_TIMEOUT_S, check=True):
    harness.require_executable(REPLAY, "kstretch-replay")
    return harness.run([REPLAY, *args], timeout=timeout, check=check)


def replay_json(*args, **kw):
    r = replay(*args, "--json", **kw)
    out = r.stdout.decode().splitlines()
    assert len(out) == 1, out
    result = json.loads(out[0])
    assert JSON_KEYS <= set(result), JSON_KEYS - set(result)
    return result, r.stderr.decode()


def address(broker):
    return f"{broker['host']}:{broker['port']}"


def read_back(bootstrap, topic="perf"):
    """Every record of partition 0 from the beginning, as [(offset, value size)],
    read by kcat on librdkafka 2.12 with check.crcs=true (a bad CRC-32C fails it)."""
    r = harness.run([harness.kcat_path(), "-b", bootstrap, "-C", "-t", topic, "-p", "0", "-o", "beginning", "-e",
                     "-X", "check.crcs=true", "-f", "%o %S\n"],
                    env=harness.modern_rdkafka_env(), timeout=60, what="kcat consumer")
    err = r.stderr.decode()
    assert "CRC" not in err.upper().replace("CHECK.CRCS", ""), err
    return [tuple(map(int, line.split())) for line in r.stdout.decode().splitlines() if line]


@pytest.fixture
def perf_cluster(start_cluster):
    return start_cluster(regions="eu:1", topics=["perf:1:1"])


def check_produce_result(result, requests, batch, size):
    assert result["api"] == "produce" and result["errors"] == 0
    assert result["requests"] == requests == result["requests_total"]
    assert result["records"] == requests * batch
    assert result["latency_samples"] == requests
    assert 0 < result["p50_us"] <= result["p99_us"] <= result["p999_us"] <= result["max_us"]
    assert result["requests_per_sec"] == pytest.approx(requests / result["elapsed_s"], rel=0.01)
    assert result["mb_per_sec"] == pytest.approx(requests * batch * size / 2**20 / result["elapsed_s"], rel=0.01)
    # Every request went out whole; answers are smaller than requests.
    assert result["bytes_sent"] >= requests * result["request_bytes"]
    assert 0 < result["bytes_received"] < result["bytes_sent"]
    # The broker appended each batch: the last base offset is the log end minus one batch.
    assert result["max_base_offset"] == (requests - 1) * batch


def test_produce_straight_to_a_broker_lands_every_record_with_valid_crcs(perf_cluster):
    b = perf_cluster.brokers[0]
    result, stderr = replay_json("--target", address(b), "--topic", "perf", "--connections", "2", "--inflight", "4",
                                 "--requests", "50", "--batch-records", "10", "--record-size", "100")
    check_produce_result(result, 50, 10, 100)
    assert result["api_version"] == 10  # the highest the simulator offers, within the tool's v7..v12
    assert result["connections"] == 2 and result["inflight"] == 4 and result["acks"] == 1
    assert "50 produce requests (500 records)" in stderr  # the human line, on stderr under --json
    assert read_back(perf_cluster.bootstrap) == [(o, 100) for o in range(500)]


def test_produce_through_kstretchs_broker_listener(perf_cluster, start_kstretch):
    k = start_kstretch(perf_cluster, max_node_id=1, workers=1)
    result, _ = replay_json("--target", k.broker_address(1), "--topic", "perf", "--requests", "40",
                            "--batch-records", "25", "--record-size", "64", "--acks", "all")
    check_produce_result(result, 40, 25, 64)
    assert result["acks"] == -1
    m = k.metrics()
    assert m["kstretch_requests_forwarded"] == 41  # ApiVersions, then the 40 Produce requests
    assert m["kstretch_responses_forwarded"] >= 40  # Produce answers pass through unchanged
    assert m["kstretch_protocol_errors"] == 0
    # Read back through kstretch too: a client sees exactly what replay wrote.
    assert read_back(k.bootstrap) == [(o, 64) for o in range(1000)]


@pytest.mark.parametrize("through_kstretch", [False, True], ids=["direct", "via kstretch"])
def test_fetch_reads_the_batch_it_produced_again_and_again(perf_cluster, start_kstretch, through_kstretch):
    target = address(perf_cluster.brokers[0])
    if through_kstretch:
        target = start_kstretch(perf_cluster, max_node_id=1, workers=1).broker_address(1)
    result, _ = replay_json("--target", target, "--topic", "perf", "--fetch", "--requests", "30", "--connections", "3",
                            "--batch-records", "20", "--record-size", "512")
    assert result["api"] == "fetch" and result["api_version"] == 12
    assert result["requests"] == 30 and result["records"] == 30 * 20
    # One batch was produced; every answer carried it (replay checks length and CRC of each).
    assert result["fetch_offset"] == 0 and result["high_watermark"] == 20
    assert result["bytes_received"] > 30 * 20 * 512
    assert read_back(perf_cluster.bootstrap) == [(o, 512) for o in range(20)]


def test_duration_bounds_the_run_and_warmup_is_left_out(perf_cluster):
    result, _ = replay_json("--target", address(perf_cluster.brokers[0]), "--topic", "perf", "--duration-s", "1.5",
                            "--warmup-s", "0.5", "--batch-records", "5", "--record-size", "100")
    assert 0.9 <= result["elapsed_s"] <= 3.0  # measured from the end of the warm-up to the last answer
    assert 0 < result["requests"] < result["requests_total"]  # warm-up requests are only in the total
    assert result["latency_samples"] == result["requests"]


def test_acks_0_sends_without_waiting_and_the_records_land(perf_cluster):
    result, stderr = replay_json("--target", address(perf_cluster.brokers[0]), "--topic", "perf", "--acks", "0",
                                 "--requests", "30", "--batch-records", "10", "--record-size", "100")
    assert result["acks"] == 0 and result["requests"] == 30
    assert result["latency_samples"] == 0 and result["p99_us"] is None
    assert "no latency (acks=0" in stderr
    # librdkafka's mock answers acks=0 anyway (a real broker does not); replay drops those bytes.
    deadline = time.monotonic() + 10
    while len(got := read_back(perf_cluster.bootstrap)) < 300 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert got == [(o, 100) for o in range(300)]


def test_non_flexible_produce_v7(perf_cluster):
    result, _ = replay_json("--target", address(perf_cluster.brokers[0]), "--topic", "perf", "--api-version", "7",
                            "--requests", "10", "--batch-records", "3", "--record-size", "10")
    assert result["api_version"] == 7
    check_produce_result(result, 10, 3, 10)
    assert read_back(perf_cluster.bootstrap) == [(o, 10) for o in range(30)]


# ---------------------------------------------------------------- failures: exit 1, naming what and where

def test_a_produce_error_code_fails_the_run_naming_the_partition_and_the_error(perf_cluster):
    b = perf_cluster.brokers[0]
    perf_cluster.must("error 0 87 1")  # the next Produce fails with INVALID_RECORD
    r = replay("--target", address(b), "--topic", "perf", "--requests", "20", check=False)
    assert r.returncode == 1 and r.stdout == b""
    err = r.stderr.decode()
    assert f"connection 1 to {address(b)}: Produce v10" in err
    assert "partition perf-0: error 87 INVALID_RECORD" in err


def test_an_unknown_topic_fails_the_run(perf_cluster):
    r = replay("--target", address(perf_cluster.brokers[0]), "--topic", "nosuch", "--requests", "5", check=False)
    assert r.returncode == 1
    assert "partition nosuch-0: error 3 UNKNOWN_TOPIC_OR_PARTITION" in r.stderr.decode()


def test_nothing_listening_fails_at_connect():
    r = replay("--target", "127.0.0.1:1", "--topic", "perf", "--requests", "5", timeout=20, check=False)
    assert r.returncode == 1
    assert "connection 1: cannot connect to 127.0.0.1:1: Connection refused" in r.stderr.decode()


def test_a_broker_that_goes_away_mid_run_fails_it(perf_cluster):
    b = perf_cluster.brokers[0]
    harness.require_executable(REPLAY, "kstretch-replay")
    p = subprocess.Popen([REPLAY, "--target", address(b), "--topic", "perf", "--duration-s", "20", "--batch-records",
                          "5", "--record-size", "100"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        time.sleep(1.0)
        perf_cluster.must(f"down {b['id']}")  # the mock closes the broker's connections
        _, err = p.communicate(timeout=15)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 1
    err = err.decode()
    assert f"connection 1 to {address(b)}" in err
    assert "closed by the peer" in err or "read failed" in err or "write failed" in err, err


def test_the_overall_timeout_bounds_a_run_that_cannot_finish(perf_cluster):
    started = time.monotonic()
    r = replay("--target", address(perf_cluster.brokers[0]), "--topic", "perf", "--requests", "100000000",
               "--batch-records", "1", "--record-size", "10", "--timeout-s", "1.5", check=False)
    assert r.returncode == 1 and r.stdout == b""
    assert time.monotonic() - started < 5
    err = r.stderr.decode()
    assert "timed out (--timeout-s 1.5): " in err and "requests answered; the rest are still in flight" in err, err


def test_the_overall_timeout_also_bounds_the_setup(perf_cluster):
    b = perf_cluster.brokers[0]
    perf_cluster.must(f"rtt {b['id']} 5000")  # every answer, ApiVersions first, comes 5 s late
    started = time.monotonic()
    r = replay("--target", address(b), "--topic", "perf", "--requests", "4", "--timeout-s", "1", check=False)
    assert r.returncode == 1
    assert time.monotonic() - started < 4
    assert f"{address(b)}: ApiVersions: no answer within" in r.stderr.decode()
    assert "(--timeout-s)" in r.stderr.decode()


# ---------------------------------------------------------------- bad arguments: exit 2

BAD_ARGS = {
    "no --target": ["--topic", "t"],
    "no --topic": ["--target", "127.0.0.1:9092"],
    "target without port": ["--target", "localhost", "--topic", "t"],
    "port out of range": ["--target", "127.0.0.1:70000", "--topic", "t"],
    "bad topic name": ["--target", "127.0.0.1:9092", "--topic", "a/b"],
    "unknown option": ["--target", "127.0.0.1:9092", "--topic", "t", "--bogus"],
    "stray argument": ["--target", "127.0.0.1:9092", "--topic", "t", "extra"],
    "zero connections": ["--target", "127.0.0.1:9092", "--topic", "t", "--connections", "0"],
    "non-numeric inflight": ["--target", "127.0.0.1:9092", "--topic", "t", "--inflight", "many"],
    "acks 2": ["--target", "127.0.0.1:9092", "--topic", "t", "--acks", "2"],
    "both duration and requests": ["--target", "127.0.0.1:9092", "--topic", "t", "--duration-s", "1", "--requests",
                                   "5"],
    "negative duration": ["--target", "127.0.0.1:9092", "--topic", "t", "--duration-s", "-1"],
    "warm-up as long as the run": ["--target", "127.0.0.1:9092", "--topic", "t", "--duration-s", "1", "--warmup-s",
                                   "1"],
    "fetch with acks 0": ["--target", "127.0.0.1:9092", "--topic", "t", "--fetch", "--acks", "0"],
    "produce version outside v7..v12": ["--target", "127.0.0.1:9092", "--topic", "t", "--api-version", "3"],
    "request over 64 MiB": ["--target", "127.0.0.1:9092", "--topic", "t", "--batch-records", "100000",
                            "--record-size", "1000"],
    "missing value": ["--target"],
}


@pytest.mark.parametrize("args", BAD_ARGS.values(), ids=BAD_ARGS.keys())
def test_bad_arguments_exit_2_with_a_message(args):
    r = replay(*args, timeout=10, check=False)
    assert r.returncode == 2
    assert r.stdout == b""
    err = r.stderr.decode()
    assert err.startswith("kstretch-replay: ") and "--help" in err, err


def test_help_exits_0():
    r = replay("--help", timeout=10)
    assert r.stdout.decode().startswith("usage: kstretch-replay --target HOST:PORT --topic TOPIC")
