#!/usr/bin/python3
"""Regional mode's benchmark: direct vs kstretch mapped vs kstretch regional.

    bench/regional_bench.py [--build build] [--runs 5] [--backends mock,kafka] [--out bench/results] [--quick]

Two clusters of three regions, eu, us and ap, every topic with RF 3 (each
partition has a replica in every region):

  mock    the stretched-cluster simulator (librdkafka's mock brokers,
          tests/cluster), eu:2,us:2,ap:2, eu replicas as followers; no
          added round trip, so what is measured is the proxies' cost
  kafka   real Apache Kafka 4.4 (tests/cluster/kafkacluster.py, no relays):
          brokers 1=eu, 2=us, 3=ap, RackAwareReplicaSelector; small heaps
          and the serial collector, as in the test suite: three JVMs share
          2 cores with the clients and the proxy

and three ways for a client in region eu to reach it:

  direct    the brokers themselves
  mapped    kstretch in mapped mode, rack eu-a (one listener per broker,
            metadata rewritten, one upstream connection per client
            connection; Fetch steered to eu replicas)
  regional  kstretch in regional mode, one eu node: clients see one broker
            (the node); Produce split by real leader, Fetch sent to each
            partition's eu replica, over a pool of regional.upstream.connections
            (2) per worker per broker

Scenarios, each run for every contender in one repetition, the order
rotated every repetition, figures the medians of --runs repetitions:

  producer  one producer, 1 KiB records, acks=all, unthrottled: Apache
            Kafka's kafka-producer-perf-test on real Kafka, its librdkafka
            twin kstretch-producer-perf on the mock
  consumer  kstretch-consumer-perf --assign (every partition by hand from
            the beginning, no group: regional mode has no consumer groups
            yet, and the Java kafka-consumer-perf-test only subscribes) over
            a topic filled once beforehand; on real Kafka only (full runs):
            librdkafka's mock, sending a direct consumer to its follower
            replicas, stalled it (27,427 of 300,000 records, then nothing for
            30 s), so the mock cannot serve as the reference
  clients   20 producers at once (kstretch-producer-perf, acks=1, each
            at 1,000 records/s for 5 s, its own connections): the same
            offered load for every contender, so what differs is the most
            TCP connections to the brokers seen at once, the proxy's CPU
            and the producers' p99 latency (the median of theirs)

Measured: throughput, the proxy's CPU (utime+stime from /proc) per GB of
record bytes, and the connections to the brokers' client ports (sampled
from /proc/net/tcp every 50 ms, established or connecting, all processes:
for direct these are the clients' own). Split and merge per request are
measured apart, without sockets, by kstretch-bench-codec (`make
bench-codec`). Writes OUT/regional-latest.md and OUT/regional-latest.json.
--quick is a smoke run (tiny counts, one repetition; figures mean nothing)
that writes to BUILD/bench-regional-quick unless --out says otherwise.
Every wait is bounded; every process started here is stopped here.
"""
import argparse
import collections
import datetime
import importlib.util
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

import harness  # noqa: E402  (the clusters and kstretch processes of the test suite)


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


kb = _load("kstretch_kafka_bench", os.path.join(REPO, "bench", "kafka_bench.py"))
br = kb.br
BenchError = br.BenchError
median = br.median

CONTENDERS = ("direct", "mapped", "regional")
REGION = "eu"
PARTITIONS = 6
SIZE = 1024
WORKERS = 1
POOL = 2
MB = 1024 * 1024

FULL = dict(runs=5, producer_records={"mock": 400_000, "kafka": 300_000},
            consumer_records={"mock": 300_000, "kafka": 600_000}, clients=20, client_records=5_000, client_rate=1_000,
            tool_timeout=600)
QUICK = dict(runs=1, producer_records={"mock": 5_000, "kafka": 5_000}, consumer_records={"mock": 5_000, "kafka": 5_000},
             clients=4, client_records=1_000, client_rate=1_000, tool_timeout=180)


def log(msg):
    print(f"regional-bench: {msg}", file=sys.stderr, flush=True)


class BrokerConnections:
    """The most TCP connections to the brokers' ports seen at once in
    /proc/net/tcp (any process; established or connecting) while running."""

    STATES = {"01", "02"}  # ESTABLISHED, SYN_SENT

    def __init__(self, ports, interval=0.05, limit=900.0):
        self.ports, self.interval, self.limit = set(ports), interval, limit
        self.most, self.samples = 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def count(self):
        return sum(1 for _, port, state in harness.proc_net_tcp().values()
                   if port in self.ports and state in self.STATES)

    def _run(self):
        deadline = time.monotonic() + self.limit
        while not self._stop.is_set() and time.monotonic() < deadline:
            self.most = max(self.most, self.count())
            self.samples += 1
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)

    def opened(self, baseline):
        return max(0, self.most - baseline)


class Backend:
    """A cluster and the three contenders in front of it."""

    def __init__(self, kind, build, tmp, p):
        self.kind, self.build, self.tmp, self.p = kind, build, tmp, p
        self.cluster, self.ks = None, {}

    def start(self):
        topics = [f"perf:{PARTITIONS}:3", f"fill:{PARTITIONS}:3"]
        if self.kind == "mock":
            self.cluster = harness.Cluster.start(self.tmp, regions="eu:2,us:2,ap:2", topics=topics,
                                                 follower_region=REGION, name="mock-cluster")
        else:
            self.cluster = harness.KafkaCluster.start(self.tmp, regions="eu:1,us:1,ap:1", min_insync=2,
                                                      replica_selector="rack", relay=False, name="kafka-cluster")
            for t in topics:
                self.cluster.must(f"create {t}")
            self.cluster.refresh()
        self.broker_ports = {b["port"] for b in self.cluster.brokers}
        # Connections to the brokers' client ports before any contender runs (none
        # expected: the brokers replicate over ports of their own); the regional
        # node's pool, once open, stays open and is counted in every run.
        self.baseline = BrokerConnections(self.broker_ports).count()
        self.ks["mapped"] = harness.Kstretch.start(self.tmp, self.cluster.bootstrap, workers=WORKERS,
                                                   max_node_id=len(self.cluster.brokers), log_level="info",
                                                   extra_args=("--rack", f"{REGION}-a"), name="kstretch-mapped")
        (port,) = harness.free_ports(1, "127.0.0.1")
        self.ks["regional"] = harness.Kstretch.start(
            self.tmp, self.cluster.bootstrap, workers=WORKERS, max_node_id=1, log_level="info", listen_port=port,
            extra_args=("--mode", "regional", "--region", REGION, "--regional-nodes", f"1@127.0.0.1:{port}",
                        "--node-id", "1", "--regional-upstream-connections", str(POOL)),
            name="kstretch-regional")
        return self

    def bootstrap(self, name):
        return self.cluster.bootstrap if name == "direct" else self.ks[name].bootstrap

    def proxy_cpu(self, name):
        return br.cpu_seconds([self.ks[name].pid]) if name in self.ks else 0.0

    def stop(self):
        for k in self.ks.values():
            try:
                k.stop()
            except Exception as e:  # noqa: BLE001 - stopping everything matters more
                log(f"stopping {k.proc.name}: {e}")
        if self.cluster:
            self.cluster.stop()


class Tools:
    def __init__(self, build, tmp, timeout):
        self.producer = os.path.join(build, "bench", "kstretch-producer-perf")
        self.consumer = os.path.join(build, "bench", "kstretch-consumer-perf")
        for exe in (self.producer, self.consumer):
            if not os.access(exe, os.X_OK):
                raise BenchError(f"{exe} is missing: build first (make build)")
        self.timeout = timeout
        self.java = kb.JavaTools(kb.KAFKA_LIBS, tmp, timeout)

    def c_produce(self, bootstrap, topic, records, acks, throughput=-1):
        return [self.producer, "--topic", topic, "--num-records", str(records), "--record-size", str(SIZE),
                "--throughput", str(throughput), "--json", "--timeout", "30000",
                "--producer-props", f"bootstrap.servers={bootstrap}", f"acks={acks}"]

    def produce(self, backend, bootstrap, records):
        if backend == "kafka":
            r = self.java.produce(bootstrap, "perf", records, SIZE, "all")
            return {"records": r["records"], "mb_per_sec": r["mb_per_sec"], "p50_ms": r["p50_ms"],
                    "p99_ms": r["p99_ms"], "bytes": r["bytes"], "tool": "kafka-producer-perf-test"}
        r = br.run_json(self.c_produce(bootstrap, "perf", records, "all"), self.timeout,
                        f"kstretch-producer-perf via {bootstrap}")
        if r["records"] != records or r.get("errors"):
            raise BenchError(f"kstretch-producer-perf via {bootstrap}: {r}")
        return {"records": r["records"], "mb_per_sec": r["mb_per_sec"], "p50_ms": r["p50"], "p99_ms": r["p99"],
                "bytes": records * SIZE, "tool": "kstretch-producer-perf"}

    def consume(self, bootstrap, records):
        r = br.run_json([self.consumer, "--bootstrap-server", bootstrap, "--topic", "fill", "--messages",
                         str(records), "--assign", "--timeout", "30000", "--json"], self.timeout,
                        f"kstretch-consumer-perf via {bootstrap}")
        if r["messages"] != records or not r["complete"]:
            raise BenchError(f"kstretch-consumer-perf via {bootstrap}: {r}")
        return {"records": records, "mb_per_sec": r["mb_per_sec"], "bytes": int(r["mb"] * MB),
                "tool": "kstretch-consumer-perf --assign"}

    def many(self, bootstrap, clients, records, rate):
        argv = self.c_produce(bootstrap, "perf", records, "1", throughput=rate)
        started = time.monotonic()
        procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(clients)]
        outs = []
        try:
            for proc in procs:
                left = max(1.0, self.timeout - (time.monotonic() - started))
                out, err = proc.communicate(timeout=left)
                if proc.returncode != 0:
                    raise BenchError(f"kstretch-producer-perf via {bootstrap} exited with {proc.returncode}: "
                                     f"{err.strip()[-600:]}")
                outs.append(json.loads(out.strip().splitlines()[-1]))
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(10)
        wall = time.monotonic() - started
        total = sum(o["records"] for o in outs)
        if total != clients * records or any(o.get("errors") for o in outs):
            raise BenchError(f"{clients} producers via {bootstrap}: {total} of {clients * records} records")
        return {"records": total, "mb_per_sec": total * SIZE / MB / wall, "bytes": total * SIZE,
                "p50_ms": median([o["p50"] for o in outs]), "p99_ms": median([o["p99"] for o in outs]),
                "tool": f"{clients} x kstretch-producer-perf at {rate:,}/s"}


def measure(backend, tools, name, scenario, p):
    bootstrap = backend.bootstrap(name)
    cpu0 = backend.proxy_cpu(name)
    with BrokerConnections(backend.broker_ports) as conns:
        if scenario == "producer":
            r = tools.produce(backend.kind, bootstrap, p["producer_records"][backend.kind])
        elif scenario == "consumer":
            r = tools.consume(bootstrap, p["consumer_records"][backend.kind])
        else:
            r = tools.many(bootstrap, p["clients"], p["client_records"], p["client_rate"])
    cpu = backend.proxy_cpu(name) - cpu0
    r.update(proxy_cpu_s=cpu, cpu_s_per_gb=(cpu / (r["bytes"] / 1e9)) if name in backend.ks else None,
             broker_connections=conns.opened(backend.baseline))
    return r


def fill(backend, tools, p):
    """The consumer scenario's topic, filled once, directly."""
    n = p["consumer_records"][backend.kind]
    r = br.run_json(tools.c_produce(backend.cluster.bootstrap, "fill", n, "all"), tools.timeout,
                    "filling the consumer topic")
    if r["records"] != n or r.get("errors"):
        raise BenchError(f"filling the consumer topic: {r}")


def run_backend(kind, args, p, tmp, results):
    log(f"{kind}: starting the cluster and both kstretch nodes")
    backend = Backend(kind, args.build, os.path.join(tmp, kind), p)
    os.makedirs(backend.tmp)
    try:
        backend.start()
        tools = Tools(args.build, backend.tmp, p["tool_timeout"])
        fill(backend, tools, p)
        scenarios = ("producer", "consumer", "clients")
        if kind == "mock" and not args.quick:  # see the docstring: the mock stalls a direct consumer
            scenarios = ("producer", "clients")
        for scenario in scenarios:
            for rep in range(p["runs"]):
                order = CONTENDERS[rep % 3:] + CONTENDERS[:rep % 3]
                for name in order:
                    r = measure(backend, tools, name, scenario, p)
                    log(f"{kind} {scenario} #{rep + 1} {name}: {r['mb_per_sec']:.1f} MB/s, proxy CPU "
                        f"{r['proxy_cpu_s']:.2f} s, {r['broker_connections']} broker connections")
                    results.append(dict(backend=kind, scenario=scenario, rep=rep, contender=name, **r))
        for name, k in backend.ks.items():
            m = k.metrics()
            results.append(dict(backend=kind, scenario="metrics", contender=name,
                                **{key: m.get(key) for key in (
                                    "kstretch_bytes_copied", "kstretch_bytes_from_clients",
                                    "kstretch_bytes_from_brokers", "kstretch_regional_upstream_connections",
                                    "kstretch_fetch_bytes_local", "kstretch_fetch_bytes_remote",
                                    "kstretch_protocol_errors")}))
    finally:
        backend.stop()


def summarize(results):
    """{(backend, scenario, contender): {median figures}}"""
    groups = collections.defaultdict(list)
    for r in results:
        if r["scenario"] != "metrics":
            groups[(r["backend"], r["scenario"], r["contender"])].append(r)
    out = {}
    for key, runs in groups.items():
        cpu = [r["cpu_s_per_gb"] for r in runs if r["cpu_s_per_gb"] is not None]
        out[key] = {"mb_per_sec": median([r["mb_per_sec"] for r in runs]),
                    "cpu_s_per_gb": median(cpu) if cpu else None,
                    "broker_connections": median([r["broker_connections"] for r in runs]),
                    "p99_ms": median([r["p99_ms"] for r in runs]) if "p99_ms" in runs[0] else None,
                    "runs": len(runs), "tool": runs[0]["tool"]}
    return out


def fmt(v, digits=1):
    return "—" if v is None else f"{v:,.{digits}f}"


def report(out, results, summary, meta):
    lines = [f"# Regional mode: direct vs kstretch mapped vs kstretch regional ({meta['date']})", "",
             f"`{meta['command']}` on {meta['machine']}. Medians of {meta['runs']} repetitions, contenders "
             "interleaved, order rotated each repetition; the machine is shared and noisy: read the ratios. "
             "What each scenario runs, and why the consumer uses `--assign`: bench/regional_bench.py's docstring.",
             ""]
    for backend in meta["backends"]:
        lines += [f"## {backend}: {meta['cluster'][backend]}", "",
                  "| scenario | contender | MB/s | vs direct | proxy CPU s/GB | broker connections (most at once) "
                  "| p99 ms |", "|---|---|---:|---:|---:|---:|---:|"]
        for scenario in ("producer", "consumer", "clients"):
            d = summary.get((backend, scenario, "direct"))
            for name in CONTENDERS:
                s = summary.get((backend, scenario, name))
                if not s:
                    continue
                ratio = s["mb_per_sec"] / d["mb_per_sec"] if d and d["mb_per_sec"] else None
                lines.append(f"| {scenario} ({s['tool']}) | {name} | {fmt(s['mb_per_sec'])} | {fmt(ratio, 2)} | "
                             f"{fmt(s['cpu_s_per_gb'], 2)} | {s['broker_connections']:.0f} | "
                             f"{fmt(s['p99_ms'], 0)} |")
        lines.append("")
        for r in results:
            if r["backend"] == backend and r["scenario"] == "metrics":
                counters = ", ".join(f"{k.replace('kstretch_', '')} {v:,}" for k, v in r.items()
                                     if k.startswith("kstretch_") and v is not None)
                lines.append(f"- kstretch {r['contender']}, counters at the end: {counters}")
        lines.append("")
    lines += ["Split and merge per request without sockets: `make bench-codec` (kstretch-bench-codec).", ""]
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "regional-latest.md"), "w") as f:
        f.write("\n".join(lines))
    with open(os.path.join(out, "regional-latest.json"), "w") as f:
        json.dump({"meta": meta, "results": results}, f, indent=1)
    return os.path.join(out, "regional-latest.md")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--runs", type=int)
    ap.add_argument("--backends", default="mock,kafka")
    ap.add_argument("--out")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    args.build = os.path.abspath(args.build)
    p = dict(QUICK if args.quick else FULL)
    if args.runs:
        p["runs"] = args.runs
    backends = [b for b in args.backends.split(",") if b]
    for b in backends:
        if b not in ("mock", "kafka"):
            ap.error(f"--backends: {b!r} is neither mock nor kafka")
    out = args.out or (os.path.join(args.build, "bench-regional-quick") if args.quick
                       else os.path.join(REPO, "bench", "results"))
    harness.TESTCLUSTER = os.path.join(args.build, "tests", "cluster", "kstretch-testcluster")
    harness.KSTRETCH = os.environ.get("KSTRETCH_BIN") or os.path.join(args.build, "proxy", "kstretch")
    br.raise_nofile()
    results = []
    with tempfile.TemporaryDirectory(prefix="kstretch-regional-bench-") as tmp:
        for kind in backends:
            run_backend(kind, args, p, tmp, results)
    meta = {"date": datetime.date.today().isoformat(), "runs": p["runs"], "backends": backends,
            "command": "bench/regional_bench.py " + " ".join(sys.argv[1:]),
            "machine": "{cores} cores ({cpu}), {memory}, {os}".format(**br.machine()),
            "params": {k: v for k, v in p.items()},
            "cluster": {"mock": "simulator eu:2,us:2,ap:2, eu follower replicas",
                        "kafka": "Apache Kafka 4.4, brokers 1=eu 2=us 3=ap, RackAwareReplicaSelector, "
                                 "min.insync.replicas 2"}}
    path = report(out, results, summarize(results), meta)
    print(open(path).read())
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        log(f"failed: {e}")
        sys.exit(1)
