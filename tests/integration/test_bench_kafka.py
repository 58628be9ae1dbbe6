"""bench/kafka_bench.py, the real-Kafka part of `make bench`, end to end in
its --quick smoke mode (tiny counts, one repetition): it starts one Apache
Kafka broker and every proxy, runs Apache Kafka's own kafka-producer-perf-test
and kafka-consumer-perf-test through each, and writes kafka-latest.md with a
row per record size, acks and contender, kafka-latest.json and the charts.

The figures of a quick run mean nothing; this proves the machinery, not the
performance. Apache Kafka comes with `make deps`; HAProxy, nginx's stream
module and gnuplot with `make bench-deps`, Kroxylicious with `make
deps-kroxylicious`: a contender that is not installed must be absent from
the tables (and for Kroxylicious the results must say why), never present
with made-up figures.
"""
import json
import os
import shutil
import sys

import harness
from test_bench_run import sections, table_rows

KAFKA_BENCH = os.path.join(harness.REPO, "bench", "kafka_bench.py")
KAFKA_LIBS = os.environ.get("KSTRETCH_KAFKA_LIBS") or os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "kstretch", "kafka-4.4.0", "libs")
KROXYLICIOUS_DIR = os.environ.get("KSTRETCH_KROXYLICIOUS") or os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "kstretch", "kroxylicious")
NGINX_STREAM_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so"
CHARTS = ["kafka_producer_throughput.png", "kafka_producer_latency.png", "kafka_proxy_cpu.png",
          "kafka_consumer_throughput.png"]
PRODUCER = "## 1. kafka-producer-perf-test, unthrottled"
CONSUMER = "## 2. kafka-consumer-perf-test"


def expected_contenders():
    labels = ["direct", "kstretch"]
    if shutil.which("haproxy"):
        labels += ["HAProxy", "HAProxy splice"]
    if shutil.which("nginx") and os.path.exists(NGINX_STREAM_MODULE):
        labels += ["nginx stream"]
    if os.path.exists(os.path.join(KROXYLICIOUS_DIR, "classes", "KroxyliciousLauncher.class")):
        labels += ["Kroxylicious"]
    return labels


def test_quick_run_writes_a_row_per_size_acks_and_contender_and_the_charts(tmp_path):
    harness.require(os.path.join(KAFKA_LIBS, "kafka-tools-4.4.0.jar"), "Apache Kafka 4.4.0's tools", "run `make deps`")
    harness.require_executable(os.path.join(harness.BUILD, "proxy", "kstretch"), "kstretch")
    out = tmp_path / "results"
    r = harness.run([sys.executable, KAFKA_BENCH, "--build", harness.BUILD, "--quick", "--out", str(out)],
                    timeout=300, what="bench/kafka_bench.py --quick")
    log = r.stderr.decode()
    assert "wrote " in log, log[-3000:]

    md = (out / "kafka-latest.md").read_text()
    assert "QUICK SMOKE RUN" in md
    got = sections(md)
    for heading in ["## Machine", PRODUCER, CONSUMER, "## How each part was run"]:
        assert heading in got, f"no {heading!r} in kafka-latest.md"
    machine = dict(row[:2] for row in table_rows(got["## Machine"]))
    assert machine["cores"].startswith(str(os.cpu_count()))
    assert machine["Apache Kafka"].startswith("4.4.0")
    for what in ("kernel", "Java", "kstretch", "HAProxy", "nginx", "Kroxylicious"):
        assert machine.get(what), f"machine table has no {what}"

    labels = expected_contenders()
    consumer_labels = labels + ["kstretch, Fetch held"]  # fetch.cut.through=false: consumer runs only
    # The producer's detail table: one row per (record size, acks, contender),
    # each with a positive records/s; the ratio of direct is 1.00 for direct.
    detail = [row for row in table_rows(got[PRODUCER]) if len(row) == 14]
    keys = sorted((row[0], row[1], row[2]) for row in detail)
    assert keys == sorted((f"{size} B", acks, label) for size in (1024, 100) for acks in ("1", "all")
                          for label in labels), keys
    assert all(float(row[3].replace(",", "")) > 0 for row in detail)
    assert all(row[5] == "1.00" for row in detail if row[2] == "direct")
    for label in labels:
        assert f"{label} records/s (ratio)" in got[PRODUCER]
    # The consumer's table: one row per (record size, contender).
    consumer = [row for row in table_rows(got[CONSUMER]) if len(row) == 10]
    assert sorted((row[0], row[1]) for row in consumer) == sorted((f"{size} B", label) for size in (1024, 100)
                                                                  for label in consumer_labels)
    assert all(float(row[2]) > 0 for row in consumer)

    # Kroxylicious: run (a row above), or the results say plainly why not.
    if "Kroxylicious" in labels:
        assert "Kroxylicious 0." in md and "pass-through (no filters)" in md
    else:
        assert "Kroxylicious: **" in md
    assert "io.kroxylicious:kroxylicious-app" in md

    data = json.loads((out / "kafka-latest.json").read_text())
    assert data["params"]["runs"] == 1
    assert sorted(data["contenders"].values()) == sorted(consumer_labels)
    for key in ("1024/1", "1024/all", "100/1", "100/all"):
        assert "kstretch-held" not in data["data"]["producer"][key]
        for name in (n for n in data["contenders"] if n != "kstretch-held"):
            (run,) = data["data"]["producer"][key][name]
            assert run["records"] == data["params"]["producer_records"][key.split("/")[0]]
            assert run["p50_ms"] <= run["p99_ms"] <= run["p999_ms"] <= run["max_ms"]
    for size in ("1024", "100"):
        for name in data["contenders"]:
            (run,) = data["data"]["consumer"][size][name]
            assert run["messages"] >= data["params"]["consumer_records"][size]

    if shutil.which("gnuplot"):
        for chart in CHARTS:
            png = out / chart
            assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{chart} is not a PNG"
            assert f"]({chart})" in md
