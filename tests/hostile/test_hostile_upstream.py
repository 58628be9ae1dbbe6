"""Hostile input from the broker side: a scripted broker (fakebroker.py) answers
real requests (the captured vectors) with mutated versions of the real
answers (Metadata, FindCoordinator, Fetch, Produce, ApiVersions). kstretch must
pass an answer on only when it answers the request (its correlation id),
close that connection when it cannot make sense of it (with a log line naming
the peer), never hang a client whose broker has gone, and keep serving every
other connection; at the end it has as many descriptors as before.

    KSTRETCH_FUZZ_SEED=N           replay a run (printed)
    KSTRETCH_UPSTREAM_CASES=N      cases (default 3,000)
"""
import collections
import json
import os
import random
import re
import socket
import struct
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import harness
import kafkawire
import netfuzz
from fakebroker import FakeBroker
from hostilelib import LOCALHOST
from netfuzz import pointing_at, vector_pairs

def listening_sockets(k):
    """kstretch's listening TCP sockets (one per listener per worker, and the admin endpoint's)."""
    out = harness.run(["ss", "-tlnpH"], timeout=10).stdout.decode().splitlines()
    return sum(1 for line in out if f"pid={k.pid}," in line)


def topology_listeners(k):
    with urllib.request.urlopen(f"http://{k.host}:{k.admin_port}/topology", timeout=5) as r:
        brokers = json.loads(r.read().decode("utf-8"))["brokers"]
    return {b["node_id"] for b in brokers if b["listen_port"]}


def with_client_id(request, client_id):
    """The request frame with its client id replaced (header v1/v2: the
    client id follows api key, version and correlation id)."""
    (n,) = struct.unpack(">h", request[12:14])
    rest = request[14 + max(n, 0):]
    cid = client_id.encode()
    payload = request[4:12] + struct.pack(">h", len(cid)) + cid + rest
    return struct.pack(">i", len(payload)) + payload


# ---------------------------------------------------------------- response mutations: (rng, frame) -> (bytes, note)

def r_bitflip(rng, f):
    b = bytearray(f)
    for _ in range(rng.choice((1, 1, 2, 4, 8))):
        pos = rng.randrange(8, len(b)) if len(b) > 8 else 0
        b[pos] ^= 1 << rng.randrange(8)
    return bytes(b)


def r_int(rng, f):
    b = bytearray(f)
    pos = rng.randrange(8, max(9, len(b) - 1))
    v = rng.choice((struct.pack(">h", rng.choice(netfuzz.EDGE_INT16)), struct.pack(">i", rng.choice(netfuzz.EDGE_INT32)),
                    rng.choice(netfuzz.EDGE_UVARINT)))
    b[pos:pos + len(v)] = v
    return bytes(b[:len(f)])


def r_truncate(rng, f):
    cut = rng.randrange(4, len(f))
    if rng.random() < 0.5:
        return struct.pack(">i", cut - 4) + f[4:cut]  # a whole, shorter frame
    return f[:cut]  # the size promises more


def r_size(rng, f):
    size = rng.choice((-1, 0, 1, 3, (1 << 31) - 1, (100 << 20) + 1, len(f) - 4 + rng.randrange(1, 100)))
    return struct.pack(">i", size) + f[4:]


def r_trailing(rng, f):
    extra = bytes(rng.getrandbits(8) for _ in range(rng.choice((1, 2, 7, 100))))
    body = f[4:] + extra
    return struct.pack(">i", len(body)) + body


def r_corr(rng, f):
    return f[:4] + struct.pack(">i", rng.randrange(-(1 << 31), 1 << 31)) + f[8:]


def r_twice(rng, f):
    return f + f  # an answer to a request that was never sent


RESPONSE_MUTATORS = [r_bitflip, r_bitflip, r_int, r_int, r_truncate, r_size, r_trailing, r_corr, r_twice]


class UpstreamFuzz:
    """The scripted broker's side of the fuzzer: answers a fuzz client's
    request with a mutated real answer; answers `healthy-*` clients properly."""

    def __init__(self, fb, pairs, seed):
        self.fb, self.pairs, self.seed = fb, pairs, seed
        self.lock = threading.Lock()
        self.closed_after = {}  # case number -> the broker closed the connection after answering
        self.mutators = collections.Counter()
        for api in {a for a, _ in pairs}:
            fb.handlers[api] = self.answer
        self._metadata = fb.handlers.get(kafkawire.API_METADATA)

    def answer(self, header, body):
        cid = header.client_id or ""
        if not cid.startswith("fuzz-"):
            return self.proper(header, body)
        number = int(cid.split("-")[1])
        rng = random.Random(f"{self.seed}/upstream/{number}")
        frames = self.pairs[(header.api_key, header.api_version)][1]
        f = pointing_at(rng.choice(frames), self.fb.port)
        f = f[:4] + struct.pack(">i", header.correlation_id) + f[8:]
        mut = rng.choice(RESPONSE_MUTATORS)
        close = rng.random() < 0.6
        with self.lock:
            self.closed_after[number] = close
            self.mutators[mut.__name__] += 1
        return FakeBroker.Raw(mut(rng, f), close=close)

    def proper(self, header, body):
        if header.api_key == kafkawire.API_METADATA and header.api_version == 12:
            return kafkawire.metadata_response_v12(self.fb.broker_list)
        if header.api_key == kafkawire.API_API_VERSIONS:
            return kafkawire.api_versions_response_v0(self.fb.api_versions)
        return None


def fuzz_one(k, pairs, keys, number, seed):
    """One case: a real request with client id fuzz-NUMBER through a random
    kstretch listener; returns (outcome, violation or "")."""
    rng = random.Random(f"{seed}/client/{number}")
    api, version = rng.choice(keys)
    corr = rng.randrange(1, 1 << 30)
    req = with_client_id(netfuzz.with_corr(pairs[(api, version)][0], corr), f"fuzz-{number}")
    port = rng.choice([k.listen_port, k.broker_port(1), k.broker_port(2)])
    s = socket.create_connection((LOCALHOST, port), timeout=5)
    buf = bytearray()
    outcome = "timeout"
    try:
        s.sendall(req)
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            if len(buf) >= 4 and len(buf) >= 4 + struct.unpack(">i", buf[:4])[0] >= 8:
                outcome = "answered"
                break
            s.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                b = s.recv(1 << 16)
            except socket.timeout:
                break
            except ConnectionResetError:
                outcome = "closed"
                break
            if not b:
                outcome = "closed"
                break
            buf += b
    finally:
        s.close()
    if len(buf) >= 8:
        (size,) = struct.unpack(">i", buf[:4])
        got = struct.unpack(">i", buf[4:8])[0]
        if got != corr:
            return outcome, f"case {number}: an answer with correlation id {got} to request {corr} " \
                            f"({api}/v{version}) reached the client"
        if 4 + size <= len(buf) and outcome == "closed":
            outcome = "answered+closed"
    return outcome, ""


def healthy_round(k, fb):
    """Connections that are not fuzzed keep being served, through the bootstrap and a broker listener."""
    for port in (k.listen_port, k.broker_port(1)):
        with kafkawire.Connection(LOCALHOST, port, timeout=5, client_id="healthy-check") as conn:
            assert conn.api_versions(version=0).error_code == 0
            md = conn.metadata_v12()
            assert {b.node_id for b in md.brokers} >= {1, 2}


UPSTREAM_CASES = 3000


def test_mutated_broker_answers_close_only_their_connection_and_kstretch_keeps_serving(start_kstretch,
                                                                                      hostile_results):
    seed = int(os.environ.get("KSTRETCH_FUZZ_SEED") or time.time_ns() % (1 << 32))
    total = int(os.environ.get("KSTRETCH_UPSTREAM_CASES") or UPSTREAM_CASES)
    pairs = vector_pairs()
    keys = sorted(pairs)
    print(f"upstream fuzzer: seed {seed}, {total} cases over {len(keys)} (api, version) pairs: {keys}")
    # Nodes 1-6 (all of them this one listener), as in the captures.
    with FakeBroker(brokers=[(i, "rack-%d" % i) for i in range(1, 7)], api_versions={
            kafkawire.API_PRODUCE: (0, 10), kafkawire.API_FETCH: (0, 16), kafkawire.API_METADATA: (0, 12),
            kafkawire.API_FIND_COORDINATOR: (0, 4), kafkawire.API_API_VERSIONS: (0, 3)}) as fb:
        uf = UpstreamFuzz(fb, pairs, seed)
        # fetch.cut.through off: the Fetch v16 answers are then decoded and
        # rewritten (with it on they would go to the broker as v15 and pass).
        k = start_kstretch(fb.bootstrap, max_node_id=6,
                           extra_args=("--log-level", "info", "--fetch-cut-through", "false"))
        healthy_round(k, fb)
        fd0, _ = harness.quiet(k)
        listeners0 = topology_listeners(k)
        sockets0 = listening_sockets(k)
        outcomes = collections.Counter()
        violations = []
        t0 = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            for first in range(0, total, 100):
                batch = range(first, min(first + 100, total))
                for n, (outcome, bad) in zip(batch, pool.map(lambda n: fuzz_one(k, pairs, keys, n, seed), batch)):
                    if outcome == "timeout" and uf.closed_after.get(n):
                        bad = bad or f"case {n}: the broker closed after a mutated answer, kstretch left the " \
                                     f"client hanging"
                    outcomes[outcome] += 1
                    if bad:
                        violations.append(bad)
                assert k.alive(), f"kstretch died in cases {batch.start}..{batch.stop - 1} (seed {seed})\n" \
                                  f"{k.stderr_tail()}"
                healthy_round(k, fb)
        elapsed = time.monotonic() - t0
        fds, rss = harness.quiet(k)
        learned = topology_listeners(k) - listeners0
        opened = listening_sockets(k) - sockets0
        m = k.metrics()
        malformed = k.log_lines("malformed response")
        figures = (f"{total:,} mutated answers in {elapsed:.0f} s (seed {seed}): {dict(outcomes)}; "
                   f"{m['kstretch_protocol_errors']:,} connections closed as malformed; kstretch fds {fd0} -> {fds}, "
                   f"of which {opened} are listeners (2 workers) for the {len(learned)} node ids learned from "
                   f"mutated answers that still decoded")
        print(figures)
        print("mutations:", dict(uf.mutators))
        hostile_results["upstream fuzzer (broker side)"] = figures
        assert not violations, "\n".join(violations[:10])
        assert malformed and m["kstretch_protocol_errors"] > 0
        assert all(re.search(r"session \d+\.\d+\.\d+\.\d+:\d+ -> (node \d+|bootstrap) ", line) for line in malformed), \
            "a malformed-response line names no peer"
        # Brokers a (decodable) answer names get listeners, by design (one per
        # worker; none when the port is taken); nothing else may stay open.
        assert fds == fd0 + opened, f"kstretch has {fds} descriptors, {fd0} before, and {opened} more listening " \
                                    f"sockets (for nodes {sorted(learned)[:10]})"
        assert opened <= 2 * len(learned)


# ---------------------------------------------------------------- defects found, as minimal reproductions

def find_coordinator_error_v2_null_host():
    """FindCoordinator v2 error answer as librdkafka 2.12's mock writes it:
    COORDINATOR_NOT_AVAILABLE, node -1, a null Host (-1 length), port -1."""
    w = kafkawire.Writer().int32(0).int16(15).string("Broker: Coordinator not available")
    return w.int32(-1).int16(-1).int32(-1).bytes()


def test_a_find_coordinator_error_answer_with_a_null_host_reaches_the_client(start_kstretch):
    with FakeBroker(brokers=[(1, None)]) as fb:
        fb.handlers[kafkawire.API_FIND_COORDINATOR] = lambda h, r: find_coordinator_error_v2_null_host()
        k = start_kstretch(fb.bootstrap, max_node_id=1)
        with kafkawire.Connection(LOCALHOST, k.listen_port, timeout=5) as conn:
            got = conn.find_coordinator("g", version=2)
        assert (got.error_code, got.node_id, got.host, got.port) == (15, -1, None, -1)


def broker_with_a_rack_that_is_not_utf8():
    """A fake broker whose Metadata names its rack "rack-\\xff"."""
    fb = FakeBroker(brokers=[(1, "rack-Z")])
    good = fb.handlers[kafkawire.API_METADATA]

    def metadata(header, body):
        answer = good(header, body)
        return answer.replace(b"rack-Z", b"rack-\xff") if answer else answer

    fb.handlers[kafkawire.API_METADATA] = metadata
    return fb


def test_topology_is_valid_json_whatever_bytes_a_broker_sends_as_its_rack(start_kstretch):
    with broker_with_a_rack_that_is_not_utf8() as fb:
        k = start_kstretch(fb.bootstrap, max_node_id=1)
        with urllib.request.urlopen(f"http://{k.host}:{k.admin_port}/topology", timeout=5) as r:
            doc = json.loads(r.read().decode("utf-8"))
        assert [(b["node_id"], b["rack"], b["region"]) for b in doc["brokers"]] == [(1, None, None)], \
            "a rack that is not UTF-8 counts as none"
        assert k.log_lines("with a rack that is too long or not UTF-8: taken as no rack")


def test_metrics_are_utf8_whatever_bytes_a_broker_sends_as_its_rack(start_kstretch):
    with broker_with_a_rack_that_is_not_utf8() as fb:
        k = start_kstretch(fb.bootstrap, max_node_id=1)
        with kafkawire.Connection(LOCALHOST, k.broker_port(1), timeout=5) as conn:
            assert conn.api_versions(version=0).error_code == 0
            # through the rewrite: the rack reaches the client as it came
            r = conn.request(kafkawire.API_METADATA, 12, kafkawire.metadata_request_v12())
            assert b"rack-\xff" in r.data
        with urllib.request.urlopen(f"http://{k.host}:{k.admin_port}/metrics", timeout=5) as r:
            text = r.read().decode("utf-8")
        assert "rack-" not in text, "a rack that is not UTF-8 makes no region"
        assert k.log_lines("names node 1 with a rack that is too long or not UTF-8", "learned with no rack")
