#!/usr/bin/python3
"""Capture real Produce and Fetch frames between real clients and a broker.

Starts the stretched-cluster simulator (kstretch-testcluster, librdkafka's
mock cluster), puts a TCP relay on 127.0.0.1 in front of each broker and
makes the broker advertise its relay (the simulator's `advertise ID
127.0.0.1 PORT` control command), so that every connection a client opens
after bootstrap comes back through a relay. A relay forwards bytes
unchanged; on the side it cuts both streams into frames (int32 size +
body), logs each one with its API key, version and correlation id, and
matches responses to requests in order. The cluster is --regions
eu:1,us:1 --topic t:2:2 (t-0 led by broker 1 in eu, t-1 by 2 in us).

Clients, all through the relays:
  * kcat on librdkafka 2.12 (LD_LIBRARY_PATH=<node-rdkafka deps>), which
    negotiates the newest versions the mock speaks (Produce v10, Fetch v16);
  * kcat on Debian's librdkafka 2.0.2 (Produce v7, Fetch v11 with RackId);
  * the same kcat without ApiVersions (api.version.request=false,
    broker.version.fallback=0.9.0: librdkafka ignores the first for any
    fallback of 0.10 or later), for the old Produce v1 / Fetch v1.
Each produces a few messages to partitions 0 and 1 and reads everything back
with client.rack set (-C -o beginning -e). The mock refuses messages in the
0.9 format (magic 0) with UNSUPPORTED_VERSION in its Produce v1 response, so
that client's produce fails (as expected) and it reads back the others'.

Then kafka-python and KafkaJS (independent implementations; older
versions), each producing 20 records to a topic of its own and reading them
back in a group; their frames are saved with a -kafka-python / -kafkajs
suffix. And two scenarios on the modern client: follower fetching (the simulator's
`follower t 1 1`, so partition t-1's leader names broker 1 as the preferred
read replica of a client in rack eu-a, KIP-392), and a leader that moves
(`leader t 0 ...`) under a running producer and a running consumer, so the
old leader answers NOT_LEADER_OR_FOLLOWER with the tagged CurrentLeader and
NodeEndpoints (KIP-951).

For every (API, version, direction) seen, the largest frame is saved as hex,
64 digits a line, the frame being int32 size + body as it crossed the wire:

    tests/vectors/produce/produce-v<N>-request.hex   (and -response.hex)
    tests/vectors/fetch/fetch-v<N>-request.hex       (and -response.hex)

and, found by decoding every response with the codec, the first response
with a PreferredReadReplica (-preferred-read-replica.hex) and the first with
CurrentLeader or NodeEndpoints (-not-leader.hex), e.g.
fetch-v16-response-not-leader.hex. Every file is then checked with the
codec, which must decode and re-encode it byte for byte (pass --no-check to
skip):

    build/protocol/kstretch-decode --request --hex --reencode FILE
    build/protocol/kstretch-decode --response --api 1 --version 16 --hex --reencode FILE

Regenerate (after `ninja -C build`), from the repository root:

    /usr/bin/python3 tests/vectors/capture_traffic.py

Options: --build DIR (default build), --out DIR (default tests/vectors),
--rdkafka-modern DIR (default ~/.cache/kstretch/node/node_modules/
node-rdkafka/build/deps), --keep-all (save every frame, numbered, instead
of the largest and the notable ones). Only the standard library is used;
nothing listens or connects anywhere but 127.0.0.1. Record batches carry
client timestamps and CRCs, and responses the mock's random topic ids and
the relays' ephemeral ports, so a rerun differs in those bytes.
"""
import argparse
import itertools
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

HOST = "127.0.0.1"  # the relays listen and connect only here
APIS = {0: "produce", 1: "fetch"}  # what is saved; everything is logged
# Saved too from the independent clients (capture.py covers these for kcat).
LABELED_APIS = {3: "metadata", 10: "findcoordinator", 18: "apiversions"}
API_NAMES = {0: "Produce", 1: "Fetch", 2: "ListOffsets", 3: "Metadata", 10: "FindCoordinator", 18: "ApiVersions"}
CLIENT_TIMEOUT_S = 30


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class Capture:
    """Every frame seen, by (api, version, request?, client label) -> list of frames.
    The label names the client running at the time ("" for kcat); clients run
    one after another, so the frames of each are kept apart."""

    def __init__(self):
        self.lock = threading.Lock()
        self.frames = {}
        self.label = ""

    def add(self, api, version, request, frame):
        with self.lock:
            self.frames.setdefault((api, version, request, self.label), []).append(frame)


class Connection:
    """One client connection and its broker connection, pumped by two threads."""

    def __init__(self, cid, client, broker, capture):
        self.cid = cid
        self.client = client
        self.broker = broker
        self.capture = capture
        self.inflight = []  # (correlation_id, api, version) in request order
        self.lock = threading.Lock()

    def start(self):
        for src, dst, request in ((self.client, self.broker, True), (self.broker, self.client, False)):
            threading.Thread(target=self.pump, args=(src, dst, request), daemon=True).start()

    def pump(self, src, dst, request):
        pending = b""
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                pending += data
                while len(pending) >= 4:
                    size = struct.unpack(">i", pending[:4])[0]
                    if size < 0 or len(pending) < 4 + size:
                        break
                    frame, pending = pending[:4 + size], pending[4 + size:]
                    self.frame(frame, request)
                # Forwarded unchanged, once any whole request in it is queued
                # for matching (so its response can never be read first).
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def frame(self, frame, request):
        body = frame[4:]
        if request:
            if len(body) < 8:
                log(f"[{self.cid}] -> short request frame of {len(body)} bytes")
                return
            api, version, corr = struct.unpack(">hhi", body[:8])
            acks = None
            if api == 0:
                acks = produce_acks(body, version)
            with self.lock:
                if acks != 0:  # Produce with acks=0 gets no response
                    self.inflight.append((corr, api, version))
            log(f"[{self.cid}] -> {API_NAMES.get(api, api)} v{version} corr={corr} {len(frame)} bytes")
            self.capture.add(api, version, True, frame)
            return
        if len(body) < 4:
            log(f"[{self.cid}] <- short response frame of {len(body)} bytes")
            return
        corr = struct.unpack(">i", body[:4])[0]
        with self.lock:
            while self.inflight and self.inflight[0][0] != corr:
                lost = self.inflight.pop(0)
                log(f"[{self.cid}] no response to corr={lost[0]}")
            if not self.inflight:
                log(f"[{self.cid}] <- response corr={corr} to no request")
                return
            _, api, version = self.inflight.pop(0)
        log(f"[{self.cid}] <- {API_NAMES.get(api, api)} v{version} corr={corr} {len(frame)} bytes")
        self.capture.add(api, version, False, frame)


def produce_acks(body, version):
    """Acks of a Produce request (None when the header cannot be walked)."""
    try:
        pos = 8
        (n,) = struct.unpack(">h", body[pos:pos + 2])  # client_id, int16 length even when flexible
        pos += 2 + max(n, 0)
        if version >= 9:
            pos += 1  # an empty header tag section (what clients send)
            (tlen, pos) = read_uvarint(body, pos)  # TransactionalId, compact
            pos += max(tlen - 1, 0)
        elif version >= 3:
            (tlen,) = struct.unpack(">h", body[pos:pos + 2])
            pos += 2 + max(tlen, 0)
        return struct.unpack(">h", body[pos:pos + 2])[0]
    except (struct.error, IndexError):
        return None


def read_uvarint(b, pos):
    v, shift = 0, 0
    while True:
        c = b[pos]
        pos += 1
        v |= (c & 0x7F) << shift
        if not c & 0x80:
            return v, pos
        shift += 7


class Relay:
    """Accepts on 127.0.0.1:<ephemeral> and relays each connection to one broker."""

    def __init__(self, broker_id, broker_port, capture, counter):
        self.broker_id = broker_id
        self.broker_port = broker_port
        self.capture = capture
        self.counter = counter
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((HOST, 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            broker = socket.create_connection((HOST, self.broker_port), timeout=10)
            broker.settimeout(None)
            cid = f"{next(self.counter)}@{self.broker_id}"
            Connection(cid, client, broker, self.capture).start()

    def close(self):
        self.sock.close()


class Simulator:
    def __init__(self, path):
        self.proc = subprocess.Popen([path, "--regions", "eu:1,us:1", "--topic", "t:2:2"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        self.info = json.loads(self.readline())

    def readline(self):
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the simulator exited")
        return line

    def command(self, cmd):
        log(f"== simulator: {cmd}")
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()
        reply = json.loads(self.readline())
        if not reply.get("ok"):
            raise RuntimeError(f"simulator: {cmd}: {reply}")
        return reply

    def stop(self):
        try:
            self.command("quit")
        except (RuntimeError, OSError, ValueError):
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            self.proc.wait(timeout=5)


def run_client(name, args, env, stdin=None, must_succeed=True):
    log(f"== {name}: kcat {' '.join(args)}")
    r = subprocess.run(["kcat"] + args, input=stdin, env=env, capture_output=True, text=True,
                       timeout=CLIENT_TIMEOUT_S)
    if r.returncode != 0 and not must_succeed:
        log(f"{name}: kcat exited {r.returncode} as expected: {r.stderr.strip().splitlines()[-1]}")
    elif r.returncode != 0:
        raise RuntimeError(f"{name}: kcat exited {r.returncode}: {r.stderr.strip()}")
    return r.stdout


def stop_client(proc):
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def clients(sim, bootstrap, modern_env, old_env, capture, node_modules):
    """The scenarios; the cluster starts with t-0 led by 1 (eu), t-1 by 2 (us)."""
    # 1. Produce to both partitions, then read everything back, per client kind.
    old_proto = ["-X", "api.version.request=false", "-X", "broker.version.fallback=0.9.0"]
    kinds = [("librdkafka 2.12", modern_env, [], True), ("librdkafka 2.0.2", old_env, [], True),
             ("librdkafka 2.0.2, no ApiVersions", old_env, old_proto, False)]
    expect = 0
    for name, env, extra, kept in kinds:
        for part in (0, 1):
            msgs = "".join(f"{name} message {i} to partition {part}\n" for i in range(3))
            run_client(name, ["-b", bootstrap, "-P", "-t", "t", "-p", str(part)] + extra, env, msgs, kept)
            expect += 3 if kept else 0
        out = run_client(name, ["-b", bootstrap, "-C", "-t", "t", "-o", "beginning", "-e", "-X",
                                "client.rack=eu-a"] + extra, env)
        got = len(out.splitlines())
        if got != expect:
            raise RuntimeError(f"{name}: read back {got} messages, expected {expect}")

    # 2. Follower fetching (KIP-392): t-1's leader (2, us) names 1 (eu) as the
    #    preferred read replica of an eu client, which then fetches from it.
    sim.command("follower t 1 1")
    for name, env in (("librdkafka 2.12", modern_env), ("librdkafka 2.0.2", old_env)):
        out = run_client(name, ["-b", bootstrap, "-C", "-t", "t", "-p", "1", "-o", "beginning", "-e", "-X",
                                "client.rack=eu-a"], env)
        log(f"{name}: read {len(out.splitlines())} messages of t-1 via the follower")

    # 3. The leader moves under a running producer and a running consumer: the
    #    old leader answers NOT_LEADER_OR_FOLLOWER with CurrentLeader and
    #    NodeEndpoints (KIP-951; Produce v10+, Fetch v16+).
    log("== librdkafka 2.12: kcat -P -t t -p 0, leader of t-0 moved from 1 to 2 in between")
    prod = subprocess.Popen(["kcat", "-b", bootstrap, "-P", "-t", "t", "-p", "0"], stdin=subprocess.PIPE,
                            env=modern_env, text=True, stderr=subprocess.DEVNULL)
    try:
        prod.stdin.write("before the move\n")
        prod.stdin.flush()
        time.sleep(1.5)
        sim.command("leader t 0 2")
        prod.stdin.write("after the move\n")
        prod.stdin.flush()
        time.sleep(2)
        prod.stdin.close()
        prod.wait(timeout=CLIENT_TIMEOUT_S)
    finally:
        if prod.poll() is None:
            stop_client(prod)
    log("== librdkafka 2.12: kcat -C -t t -p 0 -o end, leader of t-0 moved from 2 to 1 while it fetches")
    cons = subprocess.Popen(["kcat", "-b", bootstrap, "-C", "-t", "t", "-p", "0", "-o", "end"],
                            env=modern_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(2)
        sim.command("leader t 0 1")
        time.sleep(2.5)
    finally:
        stop_client(cons)

    # 4. Two independent implementations of the protocol, older versions:
    #    kafka-python and KafkaJS each produce to a topic of their own (the
    #    mock creates it on first use) and read it back in a group.
    here = os.path.dirname(os.path.abspath(__file__))
    client_dir = os.path.join(os.path.dirname(here), "integration", "clients")
    lines = "".join(f"key-{i}\tvalue {i} from an independent client\n" for i in range(20))
    with tempfile.NamedTemporaryFile("w", suffix=".tsv", delete=False) as f:
        f.write(lines)
        input_path = f.name
    runs = [("kafka-python", [sys.executable, os.path.join(client_dir, "python_roundtrip.py"), "kafka-python",
                              bootstrap, "kp-topic", "kp-group", input_path, "20", str(CLIENT_TIMEOUT_S)], old_env),
            ("kafkajs", ["node", os.path.join(client_dir, "kafkajs_roundtrip.js"), bootstrap, "kjs-topic",
                         "kjs-group", input_path, "20", str(CLIENT_TIMEOUT_S)],
             dict(old_env, NODE_PATH=node_modules))]
    try:
        for label, cmd, env in runs:
            capture.label = label
            log(f"== {label}: produce 20 records and read them back in a group")
            r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=CLIENT_TIMEOUT_S + 10)
            if r.returncode != 0:
                raise RuntimeError(f"{label} exited {r.returncode}: {r.stderr.strip()[-500:]}")
            log(f"{label}: read back {len(r.stdout.splitlines())} records")
    finally:
        capture.label = ""
        os.unlink(input_path)


def classify(decoder, api, version, request, frames):
    """Names for notable frames, from the codec's JSON of each: {suffix: frame}."""
    if request:
        return {}
    cmd = [decoder, "--response", "--api", str(api), "--version", str(version), "--compact"]
    r = subprocess.run(cmd, input=b"".join(frames), capture_output=True)
    lines = r.stdout.decode().splitlines()
    if r.returncode != 0 or len(lines) != len(frames):
        log(f"classify: {APIS[api]} v{version}: {r.stderr.decode().strip()}")
        return {}
    found = {}
    for frame, line in zip(frames, lines):
        body = json.loads(line)["body"] or {}
        text = json.dumps(body)
        if "NodeEndpoints" in body or '"CurrentLeader"' in text:
            found.setdefault("not-leader", frame)
        if any(p.get("PreferredReadReplica", -1) >= 0
               for t in body.get("Responses", []) for p in t.get("Partitions", [])):
            found.setdefault("preferred-read-replica", frame)
    return found


def write_hex(path, frame):
    with open(path, "w") as f:
        hexs = frame.hex()
        for i in range(0, len(hexs), 64):
            f.write(hexs[i:i + 64] + "\n")


def check(decoder, path, request, api, version):
    cmd = [decoder, "--hex", "--reencode"]
    cmd += ["--request"] if request else ["--response", "--api", str(api), "--version", str(version)]
    r = subprocess.run(cmd + [path], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        log(f"FAIL {path}: {r.stderr.strip()}")
        return False
    return True


def main():
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(repo, "build"))
    ap.add_argument("--out", default=os.path.join(repo, "tests", "vectors"))
    ap.add_argument("--rdkafka-modern",
                    default=os.path.join(cache, "kstretch", "node", "node_modules", "node-rdkafka", "build", "deps"))
    ap.add_argument("--keep-all", action="store_true")
    ap.add_argument("--no-check", action="store_true")
    opts = ap.parse_args()

    simulator = os.path.join(opts.build, "tests", "cluster", "kstretch-testcluster")
    decoder = os.path.join(opts.build, "protocol", "kstretch-decode")
    if not os.path.exists(os.path.join(opts.rdkafka_modern, "librdkafka.so.1")):
        sys.exit(f"capture_traffic: no librdkafka 2.12 in {opts.rdkafka_modern} (run `make deps`)")
    old_env = dict(os.environ)
    old_env.pop("LD_LIBRARY_PATH", None)
    modern_env = dict(old_env, LD_LIBRARY_PATH=opts.rdkafka_modern)

    capture = Capture()
    counter = itertools.count(1)
    sim = Simulator(simulator)
    relays = []
    try:
        for b in sim.info["brokers"]:
            relay = Relay(b["id"], b["port"], capture, counter)
            relays.append(relay)
            sim.command(f"advertise {b['id']} {HOST} {relay.port}")
            log(f"relay 127.0.0.1:{relay.port} -> broker {b['id']} ({b['rack']}) at 127.0.0.1:{b['port']}")
        node_modules = os.path.dirname(os.path.dirname(os.path.dirname(opts.rdkafka_modern)))
        clients(sim, ",".join(f"{HOST}:{r.port}" for r in relays), modern_env, old_env, capture, node_modules)
        time.sleep(0.5)  # let the last responses cross the relays
    finally:
        for relay in relays:
            relay.close()
        sim.stop()

    ok = True
    saved = 0
    for (api, version, request, label), frames in sorted(capture.frames.items()):
        name = APIS.get(api) or (LABELED_APIS.get(api) if label else None)
        if not name:
            continue
        outdir = os.path.join(opts.out, name)
        os.makedirs(outdir, exist_ok=True)
        kind = "request" if request else "response"
        if opts.keep_all:
            chosen = [(f"-{i}", frame, "") for i, frame in enumerate(frames)]
        else:
            notable = classify(decoder, api, version, request, frames)
            plain = [f for f in frames if f not in notable.values()] or frames
            chosen = [("", max(plain, key=len), f", largest of {len(plain)}")]
            chosen += [(f"-{what}", frame, "") for what, frame in notable.items()]
        for suffix, frame, note in chosen:
            by = f"-{label}" if label else ""
            path = os.path.join(outdir, f"{name}-v{version}-{kind}{suffix}{by}.hex")
            write_hex(path, frame)
            saved += 1
            log(f"saved {os.path.relpath(path, repo)} ({len(frame)} bytes{note})")
            if not opts.no_check:
                ok = check(decoder, path, request, api, version) and ok
    log(f"{saved} vectors saved" + ("" if opts.no_check else (", all re-encode byte for byte" if ok else "")))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
