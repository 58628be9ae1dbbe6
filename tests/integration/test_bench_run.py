"""bench/run, the side-by-side benchmark behind `make bench`, end to end in
its --quick smoke mode (tiny counts, one repetition): it starts the simulator
and every contender, runs all six scenarios, and writes a results file with a
table for each, the machine and versions, the targets, and the charts.

The figures of a quick run mean nothing; this proves the machinery, not the
performance. HAProxy, nginx's stream module and gnuplot come with `make
bench-deps`, not `make deps`: without them the quick run leaves those
contenders or the charts out, and so does this test's check.
"""
import json
import os
import re
import shutil
import sys

import harness

BENCH_RUN = os.path.join(harness.REPO, "bench", "run")
NGINX_STREAM_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so"
CHARTS = ["producer_throughput.png", "producer_latency.png", "replay_throughput.png", "replay_latency.png",
          "replay_cpu.png"]
SCENARIOS = ["## 1. producer-perf, unthrottled, one broker",
             "## 2. producer-perf at 50% of direct's rate: latency",
             "## 3. replay on one broker: throughput and proxy CPU per GB",
             "## 4. consumer-perf through kstretch vs direct",
             "## 5. idle client connections through kstretch",
             "## 6. codec microbenchmark"]


def sections(md):
    """{"## heading": text up to the next ## heading}."""
    out, current = {}, None
    for line in md.splitlines():
        if line.startswith("## "):
            current = line
            out[current] = []
        elif current:
            out[current].append(line)
    return {k: "\n".join(v) for k, v in out.items()}


def table_rows(text):
    """Rows of the markdown tables in text (header and separator lines left out)."""
    rows, lines = [], text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("|") and not re.match(r"^\|[-:|]+\|$", line) and \
                not (i + 1 < len(lines) and re.match(r"^\|[-:|]+\|$", lines[i + 1])):
            rows.append([c.strip() for c in line.strip("|").split("|")])
    return rows


def test_quick_run_writes_every_table_the_targets_and_the_charts(tmp_path):
    harness.require_executable(BENCH_RUN, "bench/run")
    out = tmp_path / "results"
    r = harness.run([sys.executable, BENCH_RUN, "--build", harness.BUILD, "--quick", "--out", str(out)],
                    timeout=150, what="bench/run --quick")
    log = r.stderr.decode()
    assert "wrote " in log, log[-3000:]

    md = (out / "latest.md").read_text()
    assert "QUICK SMOKE RUN" in md
    got = sections(md)
    for heading in ["## Machine"] + SCENARIOS + ["## Targets", "## How each contender was run"]:
        assert heading in got, f"no {heading!r} in latest.md"
    for heading in SCENARIOS:
        assert table_rows(got[heading]), f"{heading}: no table rows"

    machine = dict(row[:2] for row in table_rows(got["## Machine"]))
    assert machine["cores"].startswith(str(os.cpu_count()))
    for what in ("kernel", "kstretch", "HAProxy", "nginx", "librdkafka"):
        assert machine.get(what), f"machine table has no {what}"
    assert machine["librdkafka"].startswith("2.12.")

    contenders = {"direct", "kstretch"}
    if shutil.which("haproxy"):
        contenders |= {"HAProxy", "HAProxy splice"}
    if shutil.which("nginx") and os.path.exists(NGINX_STREAM_MODULE):
        contenders |= {"nginx stream"}
    # Scenario 3: one row per contender, per load (Produce, Fetch), each with a throughput figure.
    replay_rows = table_rows(got[SCENARIOS[2]])
    assert sorted(row[0] for row in replay_rows) == sorted(list(contenders) * 2)
    assert all(float(row[1].replace(",", "")) > 0 for row in replay_rows)
    # Scenario 1: four record size / acks lines, a column per contender.
    assert len([row for row in table_rows(got[SCENARIOS[0]]) if row[1] in ("1", "all")]) >= 4
    for name in contenders:
        assert f"{name} records/s (ratio)" in got[SCENARIOS[0]]
    # Scenario 5: the idle connections, and RSS per connection.
    assert re.search(r"\| \d[\d,]* \| [\d,]+ KiB \| [\d,]+ KiB \| [\d.]+ KiB \| (met|\*\*missed\*\*) \|",
                     got[SCENARIOS[4]])
    # Every target the issue names is checked, met or missed, never silently dropped.
    targets = [row[0] for row in table_rows(got["## Targets"])]
    assert any("added p99 latency" in t for t in targets)
    assert any("RSS per idle connection" in t for t in targets)
    if shutil.which("haproxy"):
        assert any("producer-perf 1 KiB acks=1: kstretch ratio >= HAProxy's" in t for t in targets)
        assert any("CPU per GB <= HAProxy's" in t for t in targets)
    assert all(row[2] in ("met", "**missed**") for row in table_rows(got["## Targets"]))

    data = json.loads((out / "latest.json").read_text())
    assert {"producer", "latency", "replay", "consumer", "idle", "codec"} <= set(data["data"])
    assert data["params"]["runs"] == 1

    if shutil.which("gnuplot"):
        for chart in CHARTS:
            png = out / chart
            assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{chart} is not a PNG"
            assert f"]({chart})" in md
