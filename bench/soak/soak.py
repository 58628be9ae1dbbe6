#!/usr/bin/env python3
"""Soak: kstretch in front of the stretched-cluster simulator under mixed load
for a long time, a partition leader moved every minute, kstretch's RSS and
descriptor count sampled; at the end, nothing acknowledged may be lost or
read twice, and RSS and descriptors must be flat. Not part of `make test`.

    /usr/bin/python3 bench/soak/soak.py --minutes 30 [--build build] [--out bench/soak/results]

Load, all through kstretch (given only its bootstrap address):
- a transactional, idempotent acks=all producer (confluent-kafka on librdkafka
  2.12, tests/faults/fault_client.py) at --rate records/s for the whole run,
  and a group consumer reading as it goes (the fault suite's pair);
- every --bulk-every seconds, kcat produces 2,000 records of 4 KB to another
  topic and a kcat consumer reads that topic back (big Fetch and Produce
  frames, short-lived clients);
- a poller opening a new connection every 100 ms for Metadata (rewritten)
  and ApiVersions (connection churn).
Every --leader-every seconds (default 60) one partition's leader moves.

Writes OUT/soak.csv as it goes (one row every --sample seconds: elapsed,
kstretch's RSS and fds, open connections, requests forwarded, acknowledged and
consumed records, and the CPU share of kstretch, the simulator and the
consumer over the interval), OUT/soak.png (RSS and fds) and OUT/soak-cpu.png
(CPU shares and consumer lag; gnuplot, `apt-get install gnuplot-nox` when
missing), and prints the verdict.

Exit 0 when nothing was lost or duplicated and RSS and fds are flat (last
quarter's median within 10% + 2 MiB / + 8 fds of the first's).

The simulator is librdkafka's mock cluster: it keeps every batch in a list per
partition and finds a Fetch offset by walking that list from the start, so its
cost per Fetch grows with the log. At 250 records/s (the default) it reaches a
full core about 20 minutes in; the consumer then lags and catches up once the
producer stops, which the end of the run waits for while the consumer reads.
The CPU chart shows which process spends what.
"""
import argparse
import csv
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path[:0] = [os.path.join(REPO, "tests", "integration"), os.path.join(REPO, "tests", "faults")]

import faultlib  # noqa: E402
import harness  # noqa: E402
import kafkawire  # noqa: E402

TOPIC, PARTITIONS, BULK = "soak", 12, "bulk"


def log(msg):
    print(f"{time.strftime('%H:%M:%S')} soak: {msg}", flush=True)


class Poller(threading.Thread):
    """A new connection every `every` seconds: Metadata v12 and ApiVersions."""

    def __init__(self, port, every=0.1):
        super().__init__(daemon=True)
        self.port, self.every = port, every
        self.stop = threading.Event()
        self.ok = self.failed = 0

    def run(self):
        while not self.stop.wait(self.every):
            try:
                with kafkawire.Connection("127.0.0.1", self.port, timeout=5) as c:
                    c.metadata_v12([TOPIC])
                    c.api_versions(version=0)
                self.ok += 1
            except (OSError, kafkawire.WireError):
                self.failed += 1


class Bulk(threading.Thread):
    """Every `every` seconds, kcat produces 2,000 x 4 KB records to BULK and reads the topic back."""

    def __init__(self, bootstrap, every):
        super().__init__(daemon=True)
        self.bootstrap, self.every = bootstrap, every
        self.stop = threading.Event()
        self.rounds = self.failed = 0

    def run(self):
        env = harness.modern_rdkafka_env()
        kcat = harness.kcat_path()
        payload = b"".join(b"k%04d\t%s\n" % (i, b"v" * 4096) for i in range(2000))
        while not self.stop.wait(self.every):
            try:
                subprocess.run([kcat, "-b", self.bootstrap, "-P", "-t", BULK, "-K", "\t", "-X", "acks=all",
                                "-X", "linger.ms=50"], input=payload, env=env, timeout=60, check=True,
                               capture_output=True)
                subprocess.run([kcat, "-b", self.bootstrap, "-C", "-t", BULK, "-o", "-2000", "-e", "-q"],
                               env=env, timeout=60, check=True, capture_output=True)
                self.rounds += 1
            except (subprocess.SubprocessError, OSError) as e:
                self.failed += 1
                log(f"bulk round failed: {e}")


# Both charts: minutes along x, two y axes from 0; {title}, {y1}, {y2}, {key}
# and the plot line are each chart's own.
CHART = """
set terminal pngcairo size 1100,520 font ",10"
set output "{png}"
set datafile separator ","
set title "{title}"
set xlabel "minutes"
set ylabel "{y1}"
set y2label "{y2}"
set ytics nomirror
set y2tics
set yrange [0:*]
set y2range [0:*]
set key {key}
set grid
plot {plot}
"""

PLOT_MEMORY = '''"{csv}" using ($2/60):($3/1024) skip 1 with lines lw 2 title "RSS (MiB)", \\
     "{csv}" using ($2/60):4 skip 1 axes x1y2 with lines lw 2 title "fds", \\
     "{csv}" using ($2/60):5 skip 1 axes x1y2 with lines lw 1 dt 2 title "client connections open"'''

PLOT_CPU = '''"{csv}" using ($2/60):9 skip 1 with lines lw 2 title "kstretch", \\
     "{csv}" using ($2/60):10 skip 1 with lines lw 2 title "simulator (librdkafka mock)", \\
     "{csv}" using ($2/60):11 skip 1 with lines lw 1 title "consumer (confluent-kafka)", \\
     "{csv}" using ($2/60):($7-$8) skip 1 axes x1y2 with lines lw 1 dt 2 title "consumer lag"'''

COLUMNS = ["time", "elapsed_s", "rss_kib", "fds", "connections_open", "requests_forwarded", "acked", "consumed",
           "kstretch_cpu_pct", "simulator_cpu_pct", "consumer_cpu_pct"]


class CpuShare:
    """A process's CPU use between two calls, in percent of one core."""

    def __init__(self, pid):
        self.pid, self.last = pid, None

    def __call__(self, now):
        try:
            used = harness.cpu_seconds(self.pid)
        except OSError:
            return 0.0
        prev, self.last = self.last, (now, used)
        if prev is None or now <= prev[0]:
            return 0.0
        return round(100.0 * (used - prev[1]) / (now - prev[0]), 1)


def chart(png, csv_path, title, y1, y2, key, plot):
    script = CHART.format(png=png, title=title, y1=y1, y2=y2, key=key, plot=plot.format(csv=csv_path))
    subprocess.run(["gnuplot"], input=script.encode(), check=True)


def flat(values, slack):
    q = max(1, len(values) // 4)
    first, last = statistics.median(values[:q]), statistics.median(values[-q:])
    return last <= first * 1.10 + slack, first, last


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--build", default=os.environ.get("KSTRETCH_BUILD") or os.path.join(REPO, "build"))
    ap.add_argument("--out", default=os.path.join(REPO, "bench", "soak", "results"))
    ap.add_argument("--rate", type=float, default=250.0, help="transactional records per second")
    ap.add_argument("--sample", type=float, default=5.0, help="seconds between samples")
    ap.add_argument("--leader-every", type=float, default=60.0)
    ap.add_argument("--bulk-every", type=float, default=20.0)
    args = ap.parse_args()
    os.environ["KSTRETCH_BUILD"] = os.path.abspath(args.build)
    harness.BUILD = os.path.abspath(args.build)
    harness.TESTCLUSTER = os.path.join(harness.BUILD, "tests", "cluster", "kstretch-testcluster")
    harness.KSTRETCH = os.environ.get("KSTRETCH_BIN") or os.path.join(harness.BUILD, "proxy", "kstretch")
    os.makedirs(args.out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="kstretch-soak-")
    duration = args.minutes * 60
    log(f"{args.minutes:g} min, logs in {work}, results in {args.out}")

    c = harness.Cluster.start(work, regions="eu:2,us:2,ap:2", rtt_ms="us=5,ap=10",
                              topics=[f"{TOPIC}:{PARTITIONS}:3", f"{BULK}:3:3"])
    k = harness.Kstretch.start(work, c.bootstrap, log_level="info")
    w = faultlib.Workload(_Path(work), k.bootstrap, TOPIC, "soak", count=int(args.rate * duration), rate=args.rate,
                          deadline_s=duration + 300)
    poller, bulk = Poller(k.listen_port), Bulk(k.bootstrap, args.bulk_every)
    rows = []
    moves = 0
    path = os.path.join(args.out, "soak.csv")
    sheet = open(path, "w", newline="")
    out = csv.writer(sheet)
    out.writerow(COLUMNS)
    try:
        w.start_consumer("soak")
        w.start_producer()
        poller.start()
        bulk.start()
        parts = {p["partition"]: p for p in c.topic(TOPIC)["partitions"]}
        leaders = c.leaders(TOPIC)
        cpu = [CpuShare(k.pid), CpuShare(c.proc.pid), CpuShare(w.consumers["soak"].pid)]
        t0 = time.monotonic()
        next_sample, next_move = t0, t0 + args.leader_every
        while w.producer.poll() is None and time.monotonic() - t0 < duration + 300:
            now = time.monotonic()
            if now >= next_move and now - t0 < duration:
                p = moves % PARTITIONS
                replicas = parts[p]["replicas"]
                leaders[p] = replicas[(replicas.index(leaders[p]) + 1) % len(replicas)]
                c.must(f"leader {TOPIC} {p} {leaders[p]}")
                moves += 1
                log(f"leader of {TOPIC}[{p}] -> node {leaders[p]}")
                next_move += args.leader_every
            if now >= next_sample:
                if not k.alive():
                    raise SystemExit(f"kstretch died:\n{k.stderr_tail()}")
                m = k.metrics()
                rows.append([time.strftime("%H:%M:%S"), round(now - t0, 1), harness.rss_kib(k.pid),
                             harness.fd_count(k.pid), m["kstretch_connections_active"],
                             m["kstretch_requests_forwarded"], w.acked_count(), w.consumed_count("soak"),
                             *(share(now) for share in cpu)])
                out.writerow(rows[-1])
                sheet.flush()
                next_sample += args.sample
            time.sleep(0.2)
        poller.stop.set()
        bulk.stop.set()
        w.wait_producer()
        log(f"producer done; consumer {w.consumed_count('soak')} of {w.acked_count()} acknowledged")
        # A lagging consumer gets as long as it keeps reading (up to 20 min).
        w.finish_consumer("soak", timeout=1200, stall=60)
        poller.join(timeout=10)
        bulk.join(timeout=120)
        outcome = w.check("soak", PARTITIONS)
        alive = k.alive()
    finally:
        sheet.close()
        w.close()
        rc = k.stop()
        c.stop()
        png, png_cpu = os.path.join(args.out, "soak.png"), os.path.join(args.out, "soak-cpu.png")
        if rows and shutil.which("gnuplot"):
            chart(png, path, f"kstretch soak: {args.minutes:.0f} min, {args.rate:.0f} records/s transactional + bulk"
                  f" + connection churn, a leader moved every {args.leader_every:.0f} s",
                  "RSS (MiB)", "open file descriptors", "bottom right", PLOT_MEMORY)
            chart(png_cpu, path, "kstretch soak: CPU share of each process (100% = one core) and consumer lag",
                  "CPU (% of one core)", "consumer lag (records)", "top left", PLOT_CPU)
        elif rows:
            log("gnuplot is not installed (apt-get install gnuplot-nox): no chart")

    warm = rows[max(1, len(rows) // 10):] or rows
    rss_flat, rss_a, rss_b = flat([r[2] for r in warm], 2048)
    fd_flat, fd_a, fd_b = flat([r[3] for r in warm], 8)
    ps = w.producer_stats()
    verdict = {
        "minutes": args.minutes, "produced": ps.get("produced"), "acknowledged": outcome["acked"],
        "consumed": outcome["consumed"], "lost": outcome["lost"], "duplicates": outcome["duplicates"],
        "order_violations": outcome["order_violations"], "leader_moves": moves,
        "bulk_rounds": bulk.rounds, "bulk_failures": bulk.failed, "metadata_connections": poller.ok,
        "metadata_failures": poller.failed, "rss_mib_first_quarter": round(rss_a / 1024, 1),
        "rss_mib_last_quarter": round(rss_b / 1024, 1), "fds_first_quarter": fd_a, "fds_last_quarter": fd_b,
        "kstretch_cpu_pct_median": statistics.median(r[8] for r in warm),
        "simulator_cpu_pct_first_last_quarter": [round(statistics.median(r[9] for r in part), 1)
                                                 for part in (warm[:max(1, len(warm) // 4)],
                                                              warm[-max(1, len(warm) // 4):])],
        "kstretch_exit": rc, "csv": path, "png": [png, png_cpu] if shutil.which("gnuplot") else None,
    }
    for key, value in verdict.items():
        print(f"  {key}: {value}")
    ok = (alive and rc == 0 and outcome["lost"] == 0 and outcome["duplicates"] == 0 and outcome["unexpected"] == 0
          and outcome["order_violations"] == 0 and rss_flat and fd_flat and bulk.failed == 0)
    log("PASS" if ok else "FAIL")
    return 0 if ok else 1


class _Path(str):
    """The bit of pathlib Workload uses (tmp_path / name) on a plain directory."""

    def __truediv__(self, name):
        return _Path(os.path.join(self, name))


if __name__ == "__main__":
    sys.exit(main())
