#!/usr/bin/python3
"""make demo: kstretch in front of a simulated stretched Kafka cluster.

Starts kstretch-testcluster with three regions (eu, us, ap; RTT 0/40/120 ms)
and kstretch (mapped mode) in front of it. A client that lives in eu and knows
only kstretch's bootstrap address produces records to a topic whose partition
leaders are spread over the regions and consumes them back in a group. The
demo prints the broker addresses the client was told (only kstretch's), what
kstretch forwarded and rewrote (from its /metrics), and where the bytes and the
waiting went: the cross-region cost that rack awareness (next) removes.
"""
import argparse
import json
import os
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
         "--rack", "eu-a", "--workers", "2"],
        stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    log = []
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        log.append(line.rstrip())
        if " ready: " in line:
            return proc, f"127.0.0.1:{listen}", f"http://127.0.0.1:{admin}", log
    proc.kill()
    sys.exit("demo: kstretch did not get ready:\n" + "\n".join(log))


def admin_get(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.read().decode()


def metrics(admin):
    out = {}
    for line in admin_get(admin + "/metrics").splitlines():
        if line.startswith("kstretch_"):
            name, value = line.split()
            out[name[len("kstretch_"):]] = int(value)
    return out


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
    kproc = None
    try:
        kproc, bootstrap, admin, log = start_kstretch(build, state["bootstrap"], len(state["brokers"]))
        run(build, state, bootstrap, admin, Producer, Consumer, libversion)
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
    client_region = "eu"

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

    print(f"\n== The same client consumes them back in a consumer group, through kstretch")
    told = producer.list_topics(timeout=10).brokers
    addresses = sorted(f"{b.host}:{b.port}" for b in told.values())
    real = {f"{b['host']}:{b['port']}" for b in state["brokers"]}
    if real & set(addresses):
        sys.exit(f"demo: the client was told a real broker address: {addresses}")
    print(f"   brokers the client was told: {', '.join(addresses)} (all kstretch listeners)")

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "demo",
                         "auto.offset.reset": "earliest", "enable.partition.eof": True,
                         "client.id": f"demo kstretch_rack={client_region}-a"})
    consumer.subscribe([TOPIC])
    got, bytes_by_region, eof = 0, {}, set()
    deadline = time.monotonic() + 60
    while len(eof) < PARTITIONS and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is None:
            continue
        if msg.error():
            if msg.error().code() == -191:  # _PARTITION_EOF
                eof.add(msg.partition())
            continue
        got += 1
        region = leader_region[msg.partition()]
        bytes_by_region[region] = bytes_by_region.get(region, 0) + len(msg.value()) + len(msg.key())
    consumer.close()
    if got != RECORDS:
        sys.exit(f"demo: consumed {got} of {RECORDS} records")
    total = sum(bytes_by_region.values())
    remote = total - bytes_by_region.get(client_region, 0)
    print(f"   {got} records consumed; record bytes fetched by leader region:")
    for region in ("eu", "us", "ap"):
        print(f"     from {region}: {bytes_by_region.get(region, 0):>8} B")
    print(f"   => {remote} of {total} B ({100 * remote / total:.0f}%) crossed regions to reach a "
          f"client in {client_region},\n      although every partition has an in-sync replica in "
          f"{client_region}.")

    after = metrics(admin)
    d = {k: after[k] - before.get(k, 0) for k in after}
    print("\n== What kstretch did (from its /metrics)")
    print(f"   {d['connections_accepted']} client connections, {d['requests_forwarded']} requests forwarded")
    print(f"   {d['responses_forwarded']} responses passed through untouched, {d['responses_rewritten']} rewritten "
          f"({d['addresses_rewritten']} broker addresses pointed at kstretch)")
    print(f"   {d['bytes_from_brokers']} B from brokers, {d['bytes_copied']} B of them copied in user space "
          f"(rewritten responses only; record batches pass through uncopied)")
    print(f"   protocol errors: {d['protocol_errors']}")
    print("   Next: rack awareness, so this eu client reads from eu replicas and the remote share drops.")
    print("\ndemo: done")


if __name__ == "__main__":
    main()
