#!/usr/bin/python3
"""make demo: kstretch in front of a simulated stretched Kafka cluster.

Starts kstretch-testcluster with three regions (eu, us, ap; RTT 0/40/120 ms)
and kstretch (mapped mode) in front of it. A client that knows only kstretch's
bootstrap address produces records to a topic whose partition leaders are
spread over the regions. A consumer in us then reads them back twice through
the same kstretch: once as a client kstretch cannot place (plain mapped mode:
every partition is read from its leader, two thirds of them in other regions)
and once placed in us (by the kstretch_rack= hint in its client.id: kstretch
injects its rack into its fetches, so the brokers' rack-aware replica selector
serves it from the us replicas). The demo prints the broker addresses the
client was told (only kstretch's), the bytes per region from kstretch's
/metrics side by side, and what kstretch forwarded and rewrote.

Then mode=regional: two kstretch nodes for eu present a cluster made of just
themselves; a client that knows only the first produces keyed records (each
split by kstretch to its real leader in any region) and reads them back with
manual assignment, every partition from its eu replica.
"""
import argparse
import json
import os
import re
import socket
import urllib.request
import statistics
import subprocess
import sys
import time

RECORDS = 3000
VALUE_BYTES = 200
TOPIC = "orders"
PARTITIONS = 6


def start_cluster(build):
    exe = os.path.join(build, "tests", "cluster", "kstretch-testcluster")
    if not os.access(exe, os.X_OK):
        sys.exit(f"demo: {exe} is missing; run `make demo` (it builds it)")
    proc = subprocess.Popen(
        [exe, "--regions", "eu:2,us:2,ap:2", "--rtt-ms", "eu=0,us=40,ap=120",
         "--topic", f"{TOPIC}:{PARTITIONS}:3"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        sys.exit("demo: the simulator exited before it was ready")
    return proc, json.loads(line)


def free_ports(n):
    """n consecutive free TCP ports on 127.0.0.1 (bounded search)."""
    for base in range(30000, 60000, 97):
        socks = []
        try:
            for port in range(base, base + n):
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(("127.0.0.1", port))
                socks.append(s)
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    sys.exit("demo: no free ports on 127.0.0.1")


def start_kstretch(build, bootstrap, brokers):
    base = free_ports(brokers + 3)
    listen, admin, port_base = base, base + 1, base + 1  # node N listens on base + 1 + N
    exe = os.path.join(build, "proxy", "kstretch")
    proc = subprocess.Popen(
        [exe, "--bootstrap-servers", bootstrap.split(",")[0], "--listen", f"127.0.0.1:{listen}",
         "--broker-port-base", str(port_base + 1), "--admin-listen", f"127.0.0.1:{admin}",
         "--workers", "2"],
        stderr=subprocess.PIPE, text=True)
    return proc, f"127.0.0.1:{listen}", f"http://127.0.0.1:{admin}", wait_ready(proc, "kstretch")


def wait_ready(proc, what):
    """Its log lines up to "ready:" (30 s at most); exits the demo if it never gets there."""
    deadline = time.monotonic() + 30
    log = []
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        log.append(line.rstrip())
        if " ready: " in line:
            return log
    proc.kill()
    sys.exit(f"demo: {what} did not get ready:\n" + "\n".join(log))


def start_regional(build, bootstrap, nodes, node_id, admin):
    """A kstretch node of mode=regional for region eu; nodes: [(id, port)] of the region's nodes."""
    listen = dict(nodes)[node_id]
    exe = os.path.join(build, "proxy", "kstretch")
    proc = subprocess.Popen(
        [exe, "--mode", "regional", "--region", "eu", "--node-id", str(node_id),
         "--regional-nodes", ",".join(f"{i}@127.0.0.1:{port}" for i, port in nodes),
         "--bootstrap-servers", bootstrap.split(",")[0], "--listen", f"127.0.0.1:{listen}",
         "--admin-listen", f"127.0.0.1:{admin}", "--workers", "2"],
        stderr=subprocess.PIPE, text=True)
    wait_ready(proc, f"regional kstretch node {node_id}")
    return proc, f"http://127.0.0.1:{admin}"


def admin_get(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.read().decode()


def metrics(admin):
    out = {}
    for line in admin_get(admin + "/metrics").splitlines():
        if line.startswith("kstretch_") and "{" not in line:
            name, value = line.split()
            out[name[len("kstretch_"):]] = int(value)
    return out


def region_metrics(admin):
    """{(client region, broker region, direction): bytes} from kstretch_region_bytes."""
    out = {}
    pat = re.compile(r'kstretch_region_bytes\{client_region="([^"]*)",broker_region="([^"]*)",'
                     r'direction="([^"]*)"\} (\d+)')
    for line in admin_get(admin + "/metrics").splitlines():
        m = pat.fullmatch(line)
        if m:
            out[m.group(1), m.group(2), m.group(3)] = int(m.group(4))
    return out


def command(state, cmd):
    """One command to the simulator (its stdin), checked."""
    proc = state["_proc"]
    proc.stdin.write(cmd + "\n")
    proc.stdin.flush()
    reply = json.loads(proc.stdout.readline())
    if not reply.get("ok"):
        sys.exit(f"demo: the simulator refused {cmd!r}: {reply}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default="build")
    args = ap.parse_args()
    build = os.path.abspath(args.build)

    # The modern librdkafka (2.12) speaks the current protocol; Debian's
    # confluent-kafka binding runs on it through LD_LIBRARY_PATH.
    modern = os.environ.get("KSTRETCH_RDKAFKA_MODERN", "")
    if modern and os.environ.get("LD_LIBRARY_PATH") != modern:
        os.environ["LD_LIBRARY_PATH"] = modern
        os.execv(sys.executable, [sys.executable] + sys.argv)
    from confluent_kafka import Consumer, Producer, libversion

    proc, state = start_cluster(build)
    state["_proc"] = proc
    kproc = None
    try:
        kproc, bootstrap, admin, log = start_kstretch(build, state["bootstrap"], len(state["brokers"]))
        run(build, state, bootstrap, admin, Producer, Consumer, libversion)
        regional(build, state, Producer, Consumer)
        print("\ndemo: done")
    finally:
        if kproc:
            kproc.terminate()
            try:
                rc = kproc.wait(timeout=15)
                if rc != 0:
                    print(f"demo: kstretch exited with {rc}")
            except subprocess.TimeoutExpired:
                kproc.kill()
        proc.stdin.write("quit\n")
        proc.stdin.flush()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def run(build, state, bootstrap, admin, Producer, Consumer, libversion):
    brokers = {b["id"]: b for b in state["brokers"]}
    parts = state["topics"][0]["partitions"]
    leader_region = {p["partition"]: brokers[p["leader"]]["region"] for p in parts}
    client_region = "eu"  # the producer's

    print(f"== A stretched cluster: {len(brokers)} brokers in 3 regions "
          f"(librdkafka mock {libversion()[0]})")
    for b in brokers.values():
        print(f"   broker {b['id']}  rack {b['rack']:<5} region {b['region']}  "
              f"+{b['rtt_ms']:>3} ms  {b['host']}:{b['port']}")
    print(f"   topic {TOPIC}: {PARTITIONS} partitions, RF 3, one replica per region; leaders: " +
          ", ".join(f"p{p}={leader_region[p]}" for p in sorted(leader_region)))
    topo = json.loads(admin_get(admin + "/topology"))
    print(f"\n== kstretch (mapped mode) in front: clients know only {bootstrap}")
    for b in topo["brokers"]:
        print(f"   node {b['node_id']}  {topo['advertised_host']}:{b['listen_port']}  ->  {b['host']}:{b['port']}")
    before = metrics(admin)

    print(f"\n== A client in {client_region} produces {RECORDS} records of {VALUE_BYTES} B (acks=all) through kstretch")

    latencies = {}
    delivered = []

    def on_delivery(err, msg):
        if err is None:
            delivered.append((msg.partition(), msg.offset()))
            latencies.setdefault(leader_region[msg.partition()], []).append(msg.latency() * 1000)

    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5,
                         "client.id": f"demo kstretch_rack={client_region}-a"})
    value = b"x" * VALUE_BYTES
    start = time.monotonic()
    for i in range(RECORDS):
        producer.produce(TOPIC, key=str(i).encode(), value=value, partition=i % PARTITIONS,
                         on_delivery=on_delivery)
        producer.poll(0)
    left = producer.flush(60)
    produce_s = time.monotonic() - start
    if left or len(delivered) != RECORDS:
        sys.exit(f"demo: only {len(delivered)} of {RECORDS} records were acknowledged")
    print(f"   {len(delivered)} acknowledged in {produce_s:.2f} s; median delivery latency by leader region:")
    for region in ("eu", "us", "ap"):
        lat = latencies.get(region, [])
        if lat:
            print(f"     leader in {region}: {statistics.median(lat):7.1f} ms over {len(lat)} records")

    told = producer.list_topics(timeout=10).brokers
    addresses = sorted(f"{b.host}:{b.port}" for b in told.values())
    real = {f"{b['host']}:{b['port']}" for b in state["brokers"]}
    if real & set(addresses):
        sys.exit(f"demo: the client was told a real broker address: {addresses}")
    print(f"   brokers the client was told: {', '.join(addresses)} (all kstretch listeners)")

    def consume(group, client_id):
        """Reads every record in a group; returns (seconds, {broker region: bytes from it})."""
        m0 = region_metrics(admin)
        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "client.id": client_id,
                             "auto.offset.reset": "earliest", "enable.partition.eof": True})
        consumer.subscribe([TOPIC])
        got, eof = 0, set()
        start = time.monotonic()
        deadline = start + 60
        while len(eof) < PARTITIONS and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == -191:  # _PARTITION_EOF
                    eof.add(msg.partition())
                continue
            got += 1
        took = time.monotonic() - start
        consumer.close()
        if got != RECORDS:
            sys.exit(f"demo: {group}: consumed {got} of {RECORDS} records")
        m1 = region_metrics(admin)
        by_region = {}
        for (client, broker, direction), n in m1.items():
            if direction == "from_broker":
                by_region[broker] = by_region.get(broker, 0) + n - m0.get((client, broker, direction), 0)
        return took, by_region

    print("\n== A consumer in us reads them back through kstretch, twice")
    print("   1. kstretch cannot place it (client.id \"demo\"): plain mapped mode")
    plain_s, plain = consume("demo-plain", "demo")
    # The mock broker cannot read a fetch's RackId: its follower mode (set
    # now, for partitions led outside us) stands in for the brokers'
    # rack-aware replica selector answering a fetch that carries rack us-a.
    for p in parts:
        if brokers[p["leader"]]["region"] != "us":
            follower = next(r for r in p["replicas"] if brokers[r]["region"] == "us")
            command(state, f"follower {TOPIC} {p['partition']} {follower}")
    print("   2. placed in us (client.id \"demo,kstretch_rack=us-a\"): kstretch sets the RackId of its fetches,")
    print("      and the brokers' rack-aware replica selector sends each fetch to the us replica")
    print("      (the simulator's mock brokers cannot read a RackId: their follower mode, switched on")
    print("      between the two runs, plays the selector answering a fetch from rack us-a)")
    placed_s, placed = consume("demo-placed", "demo,kstretch_rack=us-a")
    print(f"\n   bytes from brokers, by broker region   {'plain':>10}   {'placed in us':>12}")
    for region in ("eu", "us", "ap"):
        print(f"     {region:<36} {plain.get(region, 0):>10}   {placed.get(region, 0):>12}")
    cross = [sum(n for r, n in d.items() if r != "us") for d in (plain, placed)]
    totals = [sum(d.values()) or 1 for d in (plain, placed)]
    print(f"     {'crossed regions':<36} {100 * cross[0] / totals[0]:>9.0f}%   {100 * cross[1] / totals[1]:>11.0f}%")
    print(f"     {'time to read all':<36} {plain_s:>9.2f}s   {placed_s:>11.2f}s")

    after = metrics(admin)
    d = {k: after[k] - before.get(k, 0) for k in after}
    print("\n== What kstretch did (from its /metrics)")
    print(f"   {d['connections_accepted']} client connections, {d['requests_forwarded']} requests forwarded")
    print(f"   {d['responses_forwarded']} responses passed through untouched, {d['responses_rewritten']} rewritten "
          f"({d['addresses_rewritten']} broker addresses pointed at kstretch)")
    print(f"   {d['bytes_from_brokers']} B from brokers, {d['bytes_copied']} B of them copied in user space "
          f"(responses taken whole to be rewritten; record batches passed through are not copied)")
    print(f"   protocol errors: {d['protocol_errors']}")
    print(f"   Fetch requests given the client's rack: {d['fetch_rack_injected']}; "
          f"partitions kstretch itself pointed at a local replica: {d['fetch_redirects']}")


def regional(build, state, Producer, Consumer):
    """mode=regional: two kstretch nodes for eu present eu's clients a cluster of just themselves."""
    brokers = {b["id"]: b for b in state["brokers"]}
    parts = state["topics"][0]["partitions"]
    # The mock serves a fetch from a follower only where told to (and an eu
    # leader told to send readers to us would): the eu replicas now.
    for p in parts:
        eu_led = brokers[p["leader"]]["region"] == "eu"
        follower = -1 if eu_led else next(r for r in p["replicas"] if brokers[r]["region"] == "eu")
        command(state, f"follower {TOPIC} {p['partition']} {follower}")
    base = free_ports(4)  # two nodes, then their admin ports
    nodes = [(1, base), (2, base + 1)]
    procs = []
    try:
        for node_id, port in nodes:
            procs.append(start_regional(build, state["bootstrap"], nodes, node_id, port + 2))
        admins = [a for _, a in procs]
        bootstrap = f"127.0.0.1:{base}"
        print(f"\n== mode=regional: two kstretch nodes for eu ({bootstrap}, 127.0.0.1:{base + 1}); "
              "the client knows only the first")
        producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                             "linger.ms": 5})
        md = producer.list_topics(TOPIC, timeout=10)
        print("   the cluster the client sees: " +
              ", ".join(f"node {b.id} {b.host}:{b.port}" for b in sorted(md.brokers.values(), key=lambda b: b.id)))
        print("   partition leaders it is told (jump hash, the same on both nodes): " +
              ", ".join(f"p{p}=node {t.leader}" for p, t in sorted(md.topics[TOPIC].partitions.items())))
        acked = []
        for i in range(RECORDS):
            producer.produce(TOPIC, key=f"r{i}".encode(), value=b"y" * VALUE_BYTES,
                             on_delivery=lambda err, msg: err is None and acked.append(msg.partition()))
            producer.poll(0)
        if producer.flush(60) or len(acked) != RECORDS:
            sys.exit(f"demo: regional: only {len(acked)} of {RECORDS} records were acknowledged")
        print(f"   {RECORDS} keyed records produced (acks=all, idempotent): each split by kstretch to its real "
              "leader in eu, us or ap")
        m0 = [metrics(a) for a in admins]
        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "demo-regional",
                             "enable.partition.eof": True, "auto.offset.reset": "earliest"})
        from confluent_kafka import TopicPartition
        consumer.assign([TopicPartition(TOPIC, p, 0) for p in range(PARTITIONS)])
        got, eof = 0, set()
        deadline = time.monotonic() + 60
        while len(eof) < PARTITIONS and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == -191:  # _PARTITION_EOF
                    eof.add(msg.partition())
                continue
            got += msg.key().startswith(b"r")
        consumer.close()
        m1 = [metrics(a) for a in admins]
        d = {k: sum(b[k] - a.get(k, 0) for a, b in zip(m0, m1)) for k in m1[0]}
        if got != RECORDS:
            sys.exit(f"demo: regional: read back {got} of {RECORDS} records")
        print(f"   read back through the eu nodes with manual assignment: all {got}")
        print(f"   Fetch bytes from eu brokers: {d['fetch_bytes_local']}, from other regions: "
              f"{d['fetch_bytes_remote']} (kstretch reads each partition from its eu replica)")
        del producer, consumer  # closed before the nodes stop
        conns = sum(m["regional_upstream_connections"] for m in m1)
        print(f"   upstream connections of both nodes: {conns} (shared by all their clients: "
              "regional.upstream.connections per broker per worker, and as many for Fetch)")
    finally:
        for proc, _ in procs:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    main()
