"""Hostile clients of a regional node that requires SASL (sasl.users), in
front of the scripted broker of tests/integration/test_regional_sasl.py.

Each case opens a connection and sends, before authenticating, a sequence
made from valid SaslHandshake/SaslAuthenticate requests and mutated ones:
bit flips, truncations, lying lengths, random AuthBytes of up to 64 KiB,
oversized frames, a second handshake, pipelined requests after a failed
login, raw garbage, and SCRAM exchanges whose client-final message is
mutated. Every case ends with the node closing the connection or answering
(never a hang past the case's deadline); afterwards the node is alive, a
valid client still logs in and is served, no request of a client reached the
broker unauthenticated, and RSS stayed bounded.

    KSTRETCH_FUZZ_SEED=N     replay a run (the seed is printed)
    KSTRETCH_FUZZ_CASES=N    cases (default 2000)
"""
import base64
import os
import random
import socket
import struct
import time
from concurrent.futures import ThreadPoolExecutor

import hostilelib
import kafkawire
from test_regional_sasl import USERS, SaslBroker, handshake, metadata, scram, start_node

import pytest

LOCALHOST = "127.0.0.1"
CASES = int(os.environ.get("KSTRETCH_FUZZ_CASES", "2000"))
THREADS = 8
CASE_DEADLINE_S = 1.0
RSS_GROWTH_BOUND_KIB = 16 << 10


@pytest.fixture
def broker():
    b = SaslBroker()
    yield b
    b.fb.stop()


def request(api, version, corr, body):
    return kafkawire.encode_request(api, version, corr, body)


def handshake_req(corr, mechanism, version=1):
    return request(kafkawire.API_SASL_HANDSHAKE, version, corr, kafkawire.Writer().string(mechanism).bytes())


def auth_req(corr, auth, version):
    w = kafkawire.Writer()
    if version >= 2:
        w.compact_bytes(auth).empty_tags()
    else:
        w.int32(len(auth)).raw(auth)
    return request(kafkawire.API_SASL_AUTHENTICATE, version, corr, w.bytes())


def mutate(rng, data):
    kind = rng.randrange(5)
    b = bytearray(data)
    if kind == 0 and b:
        for _ in range(rng.randint(1, 4)):
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
    elif kind == 1 and len(b) > 1:
        b = b[:rng.randrange(1, len(b))]
    elif kind == 2 and len(b) >= 4:
        at = rng.randrange(0, len(b) - 3)
        b[at:at + 4] = struct.pack(">i", rng.choice([-1, 0, 0x7fffffff, len(b) * 2, rng.randrange(1 << 20)]))
    elif kind == 3:
        b += os.urandom(rng.randrange(1, 64))
    else:
        b = bytearray(os.urandom(rng.randrange(1, 256)))
    return bytes(b)


def case_bytes(rng):
    """One case's bytes: the opening of a login, mangled somewhere."""
    version = rng.randrange(3)
    mech = rng.choice(["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN", "GSSAPI", "", "x" * 300])
    first = f"n,,n={rng.choice(['app', 'nobody', 'a=2Cb', ''])},r={base64.b64encode(os.urandom(9)).decode()}"
    steps = [handshake_req(1, mech, rng.choice([0, 1, 1, 1]))]
    choice = rng.randrange(8)
    if choice == 0:
        steps.append(auth_req(2, os.urandom(rng.randrange(0, 65536)), version))
    elif choice == 1:
        steps.append(mutate(rng, auth_req(2, first.encode(), version)))
    elif choice == 2:
        steps.append(handshake_req(2, mech))
    elif choice == 3:
        steps.append(auth_req(2, b"\0app\0wrong", version) + request(kafkawire.API_METADATA, 12, 3,
                                                                      kafkawire.metadata_request_v12([])))
    elif choice == 4:
        steps.append(struct.pack(">i", rng.choice([600000, 1 << 30, -5])) + os.urandom(32))
    elif choice == 5:
        steps = [mutate(rng, steps[0])]
    elif choice == 6:
        steps.append(request(rng.randrange(0, 70), rng.randrange(0, 20), 2, os.urandom(rng.randrange(0, 64))))
    else:
        steps.append(struct.pack(">i", rng.randrange(0, 4096)) + os.urandom(rng.randrange(0, 64)))  # raw, after v0
    return b"".join(steps)


def run_case(port, data):
    """Sends data and reads until the node closes or CASE_DEADLINE_S passes; True when it closed or answered."""
    deadline = time.monotonic() + CASE_DEADLINE_S
    with socket.create_connection((LOCALHOST, port), timeout=CASE_DEADLINE_S) as s:
        try:
            s.sendall(data)
        except OSError:
            return "closed while sending"
        got = 0
        while time.monotonic() < deadline:
            s.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                b = s.recv(65536)
            except socket.timeout:
                return "answered, then waiting" if got else "no answer"
            except OSError:
                return "reset"
            if not b:
                return "closed"
            got += len(b)
    return "answered, then waiting" if got else "no answer"


def test_mutated_sasl_logins_close_only_their_connection(broker, start_kstretch, tmp_path, hostile_results):
    k, port = start_node(start_kstretch, broker, tmp_path, "--workers", "2")
    seed = int(os.environ.get("KSTRETCH_FUZZ_SEED", str(int(time.time()))))
    print(f"KSTRETCH_FUZZ_SEED={seed}")
    rng = random.Random(seed)
    cases = [case_bytes(rng) for _ in range(CASES)]
    rss0 = k.rss_kib()
    start = time.monotonic()
    with ThreadPoolExecutor(THREADS) as pool:
        outcomes = list(pool.map(lambda data: run_case(port, data), cases))
    took = time.monotonic() - start
    counts = {o: outcomes.count(o) for o in set(outcomes)}
    assert k.alive(), k.stderr_tail()
    # A case the node neither answered nor closed waits for the rest of a frame it announced: the client's
    # own business (idle.timeout.ms and request.timeout.ms close it), never the node's.
    assert counts.get("closed", 0) + counts.get("reset", 0) > CASES // 2, counts
    with kafkawire.Connection(LOCALHOST, port, timeout=10) as c:
        assert scram(c, "app", USERS["app"]) == (0, None)
        assert [b.node_id for b in metadata(c).brokers] == [1]
    with kafkawire.Connection(LOCALHOST, port, timeout=10) as c:
        assert handshake(c, "PLAIN")[0] == 0
    assert not broker.unauthenticated_requests, broker.unauthenticated_requests[:10]
    requests = [h.api_key for h, _ in broker.fb.requests]
    assert requests.count(kafkawire.API_SASL_AUTHENTICATE) == broker.authenticated, "a client's SASL went upstream"
    growth = k.rss_kib() - rss0
    hostilelib.assert_rss_within(growth, RSS_GROWTH_BOUND_KIB, "RSS growth over the cases")
    m = k.metrics()
    hostile_results["regional SASL logins, mutated"] = (
        f"{CASES} cases in {took:.1f} s (seed {seed}): {counts}; {m['kstretch_regional_sasl_refused']} refused, "
        f"{m['kstretch_protocol_errors']} protocol errors, RSS +{growth} KiB")
