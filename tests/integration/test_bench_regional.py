"""bench/regional_bench.py (`make bench-regional`, part of `make bench`) end to
end in its --quick smoke mode: the simulator and real Apache Kafka, each with
direct, kstretch mapped and kstretch regional, every scenario. A quick run's
figures mean nothing, except the one the scenario exists to show and that
does not depend on speed: with several clients at once, kstretch regional
holds at most its pool per broker, where the clients direct hold their own.
"""
import json
import os

import harness

BENCH = os.path.join(harness.REPO, "bench", "regional_bench.py")
SCENARIOS = ("producer", "consumer", "clients")
CONTENDERS = ("direct", "mapped", "regional")
QUICK_CLIENTS = 4
POOL, WORKERS = 2, 1  # what the bench gives the regional node


def test_quick_run_measures_every_contender_and_regional_holds_its_pool_per_broker(tmp_path):
    out = tmp_path / "out"
    r = harness.run([harness.PYTHON, BENCH, "--build", harness.BUILD, "--quick", "--out", str(out)], timeout=900,
                    what="bench/regional_bench.py --quick")
    report = (out / "regional-latest.md").read_text()
    data = json.loads((out / "regional-latest.json").read_text())
    assert data["meta"]["backends"] == ["mock", "kafka"]
    runs = [x for x in data["results"] if x["scenario"] != "metrics"]
    seen = {(x["backend"], x["scenario"], x["contender"]) for x in runs}
    assert seen == {(b, s, c) for b in ("mock", "kafka") for s in SCENARIOS for c in CONTENDERS}, seen
    for x in runs:
        assert x["mb_per_sec"] > 0 and x["bytes"] > 0, x
        assert (x["cpu_s_per_gb"] is None) == (x["contender"] == "direct"), x
    for backend, brokers in (("mock", 6), ("kafka", 3)):
        assert f"## {backend}:" in report
        clients = {x["contender"]: x["broker_connections"] for x in runs
                   if x["backend"] == backend and x["scenario"] == "clients"}
        assert 0 < clients["regional"] <= 2 * POOL * WORKERS * brokers, clients  # Fetch has its own
        assert clients["direct"] >= QUICK_CLIENTS and clients["mapped"] >= QUICK_CLIENTS, clients
        assert clients["regional"] < clients["direct"], clients
        metrics = {x["contender"]: x for x in data["results"]
                   if x["backend"] == backend and x["scenario"] == "metrics"}
        assert metrics["regional"]["kstretch_protocol_errors"] == 0
        assert metrics["regional"]["kstretch_fetch_bytes_remote"] == 0, "regional read outside eu"
    print(r.stdout.decode()[-3000:])
