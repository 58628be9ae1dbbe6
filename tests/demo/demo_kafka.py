#!/usr/bin/python3
"""make demo-kafka: kstretch in front of a stretched cluster of real Apache Kafka brokers.

The story of `make demo`, on the real thing: three Apache Kafka 4.4 brokers
(KRaft) in eu, us and ap (tests/cluster/kafkacluster.py), running Kafka's own
RackAwareReplicaSelector, with kstretch in us in front of them and region
latency from the delay relays (us -> eu 40 ms, us -> ap 120 ms round trip). A
producer that knows only kstretch's bootstrap writes records to a topic whose
leaders are spread over the regions; a consumer in us that sets no
client.rack reads them back twice: unplaced (every partition from its leader)
and placed in us by the kstretch_rack= hint in its client.id (kstretch injects
the rack into its Fetch requests, and the real brokers' selector answers with
the us replica). The bytes each broker sent are counted by its relay: the
brokers' side of the story, not kstretch's.
"""
import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import demo  # noqa: E402  (kstretch start-up and /metrics, shared with `make demo`)

RECORDS = 20000
VALUE_BYTES = 200
TOPIC = "orders"
PARTITIONS = 6
KCAT_TIMEOUT_S = 120


class Launcher:
    """tests/cluster/kafkacluster.py as a child: its JSON line, then commands."""

    def __init__(self):
        argv = [sys.executable, os.path.join(REPO, "tests", "cluster", "kafkacluster.py"),
                "--regions", "eu:1,us:1,ap:1", "--topic", f"{TOPIC}:{PARTITIONS}:3",
                "--replica-selector", "rack", "--client-region", "us", "--rtt-ms", "us>eu=40,us>ap=120"]
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(timeout=60)
            sys.exit("demo-kafka: the Kafka cluster did not start (see the lines above)")
        self.state = json.loads(line)

    def ask(self, cmd):
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()
        reply = json.loads(self.proc.stdout.readline())
        if not reply.get("ok"):
            sys.exit(f"demo-kafka: the cluster refused {cmd!r}: {reply}")
        return reply

    def stop(self):
        try:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.flush()
            self.proc.wait(timeout=120)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()


def kcat(args, env, stdin=None):
    r = subprocess.run(["kcat"] + args, input=stdin, capture_output=True, env=env, timeout=KCAT_TIMEOUT_S)
    if r.returncode != 0:
        sys.exit(f"demo-kafka: kcat {' '.join(args)} failed: {r.stderr.decode()[-2000:]}")
    return r.stdout.decode()


def by_region(cluster, before, after):
    regions = {b["id"]: b["region"] for b in cluster.state["brokers"]}
    out = {}
    for broker, a in after.items():
        region = regions[int(broker)]
        out[region] = out.get(region, 0) + a["from_broker"] - before[broker]["from_broker"]
    return out


def run(cluster, bootstrap, admin, env):
    s = cluster.state
    print(f"== A stretched cluster of real Apache Kafka {s['kafka_version']} brokers (KRaft), "
          f"replica selector: Kafka's RackAwareReplicaSelector")
    for b in s["brokers"]:
        print(f"   broker {b['id']}  rack {b['rack']:<5} region {b['region']}  round trip from us {b['rtt_ms']:>3} ms")
    leaders = {p["partition"]: p["leader"] for t in s["topics"] if t["name"] == TOPIC for p in t["partitions"]}
    print(f"   topic {TOPIC}: {PARTITIONS} partitions, RF 3, one replica per region; leaders: " +
          ", ".join(f"p{p}->{leaders[p]}" for p in sorted(leaders)))
    print(f"\n== kstretch (mapped mode) in us, in front: clients know only {bootstrap}")

    payload = "".join(f"key-{i % 500:03d}\t{'v' * (VALUE_BYTES - 8)}{i:08d}\n" for i in range(RECORDS))
    t0 = time.monotonic()
    kcat(["-b", bootstrap, "-P", "-t", TOPIC, "-K", "\t", "-X", "acks=all"], env, payload.encode())
    print(f"   a producer wrote {RECORDS} records of {VALUE_BYTES} B (acks=all) in {time.monotonic() - t0:.1f} s")
    listed = kcat(["-b", bootstrap, "-L", "-J"], env)
    addresses = sorted({f"{b['name']}" for b in json.loads(listed)["brokers"]})
    print(f"   brokers the clients were told: {', '.join(addresses)} (all kstretch listeners)")

    def consume(group, client_id):
        before = cluster.ask("stats")["bytes"]
        t = time.monotonic()
        out = kcat(["-b", bootstrap, "-G", group, "-X", f"client.id={client_id}", "-X", "auto.offset.reset=earliest",
                    "-e", "-f", "%p\n", TOPIC], env)
        took = time.monotonic() - t
        n = len(out.splitlines())
        if n != RECORDS:
            sys.exit(f"demo-kafka: the consumer read {n} records, not {RECORDS}")
        return by_region(cluster, before, cluster.ask("stats")["bytes"]), took

    print("\n== A consumer in us (no client.rack) reads them back through kstretch, twice")
    print("   1. kstretch cannot place it (client.id \"demo\"): every partition is read from its leader")
    plain, plain_s = consume("demo-plain", "demo")
    print("   2. placed in us (client.id \"demo,kstretch_rack=us-a\"): kstretch sets the RackId of its")
    print("      fetches, and the real brokers' selector sends each fetch to the us replica")
    placed, placed_s = consume("demo-placed", "demo,kstretch_rack=us-a")
    print(f"\n   bytes the brokers sent (their relays' count)  {'plain':>10}   {'placed in us':>12}")
    for region in ("eu", "us", "ap"):
        print(f"     from {region:<40} {plain.get(region, 0):>10}   {placed.get(region, 0):>12}")
    cross = [sum(v for r, v in d.items() if r != "us") for d in (plain, placed)]
    totals = [max(1, sum(d.values())) for d in (plain, placed)]
    print(f"     {'crossed regions':<45} {100 * cross[0] / totals[0]:>9.0f}%   {100 * cross[1] / totals[1]:>11.0f}%")
    print(f"     {'time to read all':<45} {plain_s:>9.2f}s   {placed_s:>11.2f}s")

    m = demo.metrics(admin)
    print("\n== What kstretch did (from its /metrics)")
    print(f"   {m['connections_accepted']} client connections, {m['requests_forwarded']} requests forwarded, "
          f"{m['responses_rewritten']} responses rewritten, {m['addresses_rewritten']} broker addresses rewritten")
    print(f"   Fetch requests given the client's rack: {m['fetch_rack_injected']}")
    print(f"   {m['bytes_from_brokers']} B from brokers, {m['bytes_copied']} B of them copied in user space")
    print("\ndemo-kafka: done")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default="build")
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    modern = os.environ.get("KSTRETCH_RDKAFKA_MODERN") or os.path.join(
        os.path.expanduser("~/.cache/kstretch"), "node", "node_modules", "node-rdkafka", "build", "deps")
    env = dict(os.environ, LD_LIBRARY_PATH=modern)  # kcat on librdkafka 2.12

    print("demo-kafka: starting three Apache Kafka brokers and a controller (JVMs: about 30 s on 2 cores)")
    cluster = Launcher()
    kproc = None
    try:
        kproc, bootstrap, admin, _ = demo.start_kstretch(build, cluster.state["bootstrap"], len(cluster.state["brokers"]))
        run(cluster, bootstrap, admin, env)
    finally:
        if kproc:
            kproc.terminate()
            try:
                rc = kproc.wait(timeout=15)
                if rc != 0:
                    print(f"demo-kafka: kstretch exited with {rc}")
            except subprocess.TimeoutExpired:
                kproc.kill()
        cluster.stop()


if __name__ == "__main__":
    main()
