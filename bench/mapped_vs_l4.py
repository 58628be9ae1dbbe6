#!/usr/bin/python3
"""Producer throughput to one broker: direct vs kstretch (mapped) vs HAProxy (tcp).

    /usr/bin/python3 bench/mapped_vs_l4.py [--build build] [--records 1000000]
        [--record-size 1024] [--acks 1] [--runs 5]

One simulator broker (kstretch-testcluster --regions eu:1, topic perf:1:1).
The contenders run interleaved (A B C A B C ...) and each figure is the
median over --runs runs:

  direct   kstretch-producer-perf -> broker
  kstretch kstretch-producer-perf -> kstretch (1 worker) -> broker
  haproxy  kstretch-producer-perf -> HAProxy 2.6, mode tcp, 1 thread -> broker;
           the broker advertises HAProxy's address (`advertise`), so the
           client's metadata leads it back through HAProxy

For the proxies it also reports CPU seconds per GB forwarded (utime+stime of
the proxy process from /proc/PID/stat, over the bytes produced). This
machine is shared and has 2 cores, which the client, the broker and the proxy
share: read ratios, not absolutes. Everything listens on 127.0.0.1 only, and
every wait is bounded.
"""
import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HOST = "127.0.0.1"


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_port(port, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((HOST, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"bench: nothing listens on {HOST}:{port} after {timeout}s")


class Simulator:
    def __init__(self, build):
        exe = os.path.join(build, "tests", "cluster", "kstretch-testcluster")
        self.proc = subprocess.Popen([exe, "--regions", "eu:1", "--topic", "perf:1:1"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.info = json.loads(self.proc.stdout.readline())
        self.broker = self.info["brokers"][0]

    def command(self, cmd):
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()
        reply = json.loads(self.proc.stdout.readline())
        if not reply.get("ok"):
            sys.exit(f"bench: simulator refused {cmd!r}: {reply}")

    def stop(self):
        try:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.flush()
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()


def produce(build, bootstrap, args):
    exe = os.path.join(build, "bench", "kstretch-producer-perf")
    r = subprocess.run([exe, "--topic", "perf", "--num-records", str(args.records), "--record-size",
                        str(args.record_size), "--throughput", "-1", "--json", "--timeout", "30000",
                        "--producer-props", f"bootstrap.servers={bootstrap}", f"acks={args.acks}"],
                       capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        sys.exit(f"bench: producer-perf via {bootstrap} failed: {r.stderr.strip()[-400:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--record-size", type=int, default=1024)
    ap.add_argument("--acks", default="1")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    if not shutil.which("haproxy"):
        sys.exit("bench: haproxy is not installed (make deps installs it)")

    sim = Simulator(build)
    procs = []
    tmp = tempfile.mkdtemp(prefix="kstretch-bench-")
    try:
        b = sim.broker
        direct = f"{b['host']}:{b['port']}"
        # kstretch, one worker
        kport, kbase, kadmin = free_port(), free_port(), free_port()
        kbase = kbase - 1  # node 1 on this free port
        kstretch = subprocess.Popen(
            [os.path.join(build, "proxy", "kstretch"), "--bootstrap-servers", direct, "--listen",
             f"{HOST}:{kport}", "--broker-port-base", str(kbase), "--admin-listen", f"{HOST}:{kadmin}",
             "--workers", "1", "--log-level", "warn"], stderr=subprocess.DEVNULL)
        procs.append(kstretch)
        wait_port(kport)
        wait_port(kbase + 1)
        # HAProxy, tcp mode, one thread
        hport = free_port()
        cfg = os.path.join(tmp, "haproxy.cfg")
        with open(cfg, "w") as f:
            f.write(f"global\n  nbthread 1\n  maxconn 1000\ndefaults\n  mode tcp\n  timeout connect 5s\n"
                    f"  timeout client 60s\n  timeout server 60s\n"
                    f"listen kafka\n  bind {HOST}:{hport}\n  server b1 {direct}\n")
        haproxy = subprocess.Popen(["haproxy", "-f", cfg, "-db"], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        procs.append(haproxy)
        wait_port(hport)

        contenders = [("direct", direct, None, lambda: sim.command(f"advertise 1 {b['host']} {b['port']}")),
                      ("kstretch", f"{HOST}:{kport}", kstretch,
                       lambda: sim.command(f"advertise 1 {b['host']} {b['port']}")),
                      ("haproxy", f"{HOST}:{hport}", haproxy, lambda: sim.command(f"advertise 1 {HOST} {hport}"))]
        results = {name: [] for name, *_ in contenders}
        cpu = {name: [] for name, *_ in contenders}
        for run in range(args.runs):
            for name, bootstrap, proc, prepare in contenders:
                prepare()
                before = cpu_seconds(proc.pid) if proc else 0
                r = produce(build, bootstrap, args)
                if proc:
                    gb = r["records"] * args.record_size / 1e9
                    cpu[name].append((cpu_seconds(proc.pid) - before) / gb)
                results[name].append(r["records_per_sec"])
                print(f"run {run + 1} {name:8} {r['records_per_sec']:>12,.0f} records/s", file=sys.stderr)
    finally:
        for p in procs:
            p.terminate()
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        sim.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    base = statistics.median(results["direct"])
    print(f"| contender | records/s (median of {args.runs}) | ratio of direct | proxy CPU s per GB |")
    print("|---|---:|---:|---:|")
    for name in results:
        med = statistics.median(results[name])
        c = f"{statistics.median(cpu[name]):.2f}" if cpu[name] else "-"
        print(f"| {name} | {med:,.0f} | {med / base:.2f} | {c} |")
    print(f"\n{args.records:,} records of {args.record_size} B, acks={args.acks}, one simulator broker, "
          f"unthrottled; `{' '.join(sys.argv)}`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
