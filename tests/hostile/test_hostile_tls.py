"""Hostile clients on kstretch's TLS port (tls.cert): garbage that looks like
TLS, ClientHellos cut short or mutated, clients that finish the handshake and
then send corrupted records, half requests or nothing, and TLS clients that
stop reading their answers. Each closes only its own connection with a log
line; kstretch keeps serving a real TLS client, leaks no descriptor, and a
client that never finished a handshake made no upstream connection.
"""
import os
import random
import socket
import ssl
import struct
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "integration"))
import certs  # noqa: E402
import harness  # noqa: E402
import kafkawire  # noqa: E402
import records  # noqa: E402

TOPIC = "t"
CASES = int(os.environ.get("KSTRETCH_TLS_FUZZ_CASES") or 800)


@pytest.fixture(scope="module")
def tls_certs(tmp_path_factory):
    return certs.make(str(tmp_path_factory.mktemp("hostile-certs").resolve()))


def client_ctx(c):
    ctx = ssl.create_default_context(cafile=c.ca)
    return ctx


def kcat_tls(c):
    return ["-X", "security.protocol=ssl", "-X", f"ssl.ca.location={c.ca}"]


def real_client_round_trip(k, c, tag, count=50):
    env = harness.modern_rdkafka_env()
    sent = records.make_records(tag, count)
    harness.run([harness.kcat_path(), "-b", k.bootstrap, *kcat_tls(c), "-P", "-t", TOPIC, "-K", "\t",
                 "-X", "acks=all"], input="".join(f"{key}\t{v}\n" for key, v in sent).encode(), env=env,
                timeout=60, what=f"kcat producer over TLS ({tag})")
    r = harness.run([harness.kcat_path(), "-b", k.bootstrap, *kcat_tls(c), "-C", "-t", TOPIC, "-o", "beginning",
                     "-e", "-f", harness.KCAT_FORMAT], env=env, timeout=60, what="kcat reader over TLS")
    got = {(key, v) for _, _, key, v in records.parse_consumed(r.stdout.decode())}
    missing = [s for s in sent if s not in got]
    assert not missing, f"{len(missing)} of {len(sent)} records not read back: {missing[:3]}"


def client_hello(c):
    """A real ClientHello's bytes (from Python's TLS stack, through memory BIOs)."""
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = client_ctx(c).wrap_bio(inc, out, server_hostname="127.0.0.1")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def garbage_case(rng, hello):
    kind = rng.randrange(6)
    if kind == 0:  # a record header of a handshake, then random bytes
        return "random-record", b"\x16\x03\x01" + struct.pack(">H", rng.randrange(1, 1 << 14)) + \
            rng.randbytes(rng.randrange(0, 600))
    if kind == 1:  # a real ClientHello cut short
        return "cut-hello", hello[:rng.randrange(1, len(hello))]
    if kind == 2:  # a real ClientHello with bytes flipped
        b = bytearray(hello)
        for _ in range(rng.randrange(1, 8)):
            b[rng.randrange(5, len(b))] = rng.randrange(256)
        return "mutated-hello", bytes(b)
    if kind == 3:  # a record length beyond what TLS allows
        return "huge-record", b"\x16\x03\x03\xff\xff" + rng.randbytes(100)
    if kind == 4:  # an alert or change_cipher_spec first
        return "not-a-hello", bytes([rng.choice([0x14, 0x15, 0x17]), 3, 3, 0, 2, 2, 40])
    return "hello-twice", hello + hello


def run_garbage(port, payload):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        s.sendall(payload)
        if random.random() < 0.5:
            try:
                s.shutdown(socket.SHUT_WR)
            except OSError:
                return True  # kstretch closed it already
        deadline = time.monotonic() + 12
        while time.monotonic() < deadline:
            if not s.recv(65536):
                return True  # kstretch closed it
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False
    finally:
        s.close()
    return False


def test_garbage_and_broken_handshakes_close_only_their_connection(start_cluster, start_kstretch, tls_certs):
    cl = start_cluster(regions="eu:1,us:1,ap:1", topics=[f"{TOPIC}:3:3"])
    k = start_kstretch(cl, max_node_id=3, extra_args=("--tls-cert", tls_certs.server_cert, "--tls-key",
                                                      tls_certs.server_key, "--tls-handshake-timeout-ms", "3000",
                                                      "--log-level", "info"))
    real_client_round_trip(k, tls_certs, "before")
    fd0, _ = harness.quiet(k)
    upstream_before = k.metrics()["kstretch_connections_accepted"]
    seed = int(os.environ.get("KSTRETCH_FUZZ_SEED") or time.time_ns() % (1 << 32))
    print(f"TLS garbage: seed {seed} (KSTRETCH_FUZZ_SEED replays it), {CASES} cases")
    rng = random.Random(seed)
    hello = client_hello(tls_certs)
    cases = [garbage_case(rng, hello) for _ in range(CASES)]
    with ThreadPoolExecutor(16) as pool:
        closed = list(pool.map(lambda c: run_garbage(k.listen_port, c[1]), cases))
    not_closed = [cases[i][0] for i, ok in enumerate(closed) if not ok]
    assert not not_closed, f"{len(not_closed)} connections not closed by kstretch within 12 s: {not_closed[:10]}"
    assert k.proc.proc.poll() is None, "kstretch died"
    fd1, _ = harness.quiet(k)
    assert fd1 <= fd0 + 2, f"descriptors {fd0} -> {fd1}"
    m = k.metrics()
    assert m["kstretch_tls_handshake_failures"] >= CASES * 0.9, m
    # Not one of them got as far as an upstream connection (none finished a handshake).
    assert "accepted, upstream" not in k.log(), "a client that failed its handshake made kstretch connect upstream"
    assert m["kstretch_connections_accepted"] == upstream_before + CASES
    real_client_round_trip(k, tls_certs, "after")


def test_after_the_handshake_corrupted_records_half_requests_and_stalled_readers_are_closed(
        start_cluster, start_kstretch, tls_certs):
    cl = start_cluster(regions="eu:1", topics=[f"{TOPIC}:1:1"])
    k = start_kstretch(cl, max_node_id=1, extra_args=("--tls-cert", tls_certs.server_cert, "--tls-key",
                                                      tls_certs.server_key, "--request-timeout-ms", "1500",
                                                      "--write-timeout-ms", "1500", "--log-level", "info"))
    fd0, _ = harness.quiet(k)
    ctx = client_ctx(tls_certs)

    # 1. A corrupted application record: the MAC fails, the connection closes.
    raw = socket.create_connection(("127.0.0.1", k.listen_port), timeout=10)
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname="127.0.0.1")
    for _ in range(20):
        try:
            obj.do_handshake()
            break
        except ssl.SSLWantReadError:
            raw.sendall(out.read())
            inc.write(raw.recv(65536))
    raw.sendall(out.read())
    obj.write(kafkawire.encode_request(kafkawire.API_API_VERSIONS, 0, 1, b""))
    record = bytearray(out.read())
    record[-3] ^= 0x5A
    raw.sendall(bytes(record))
    raw.settimeout(10)
    try:
        while raw.recv(65536):
            pass
    except ConnectionResetError:
        pass
    raw.close()
    harness.wait_until(lambda: k.log_lines("client error: TLS read"), 5, what="the bad record's log line")

    # 2. Half a request after the handshake: closed by request.timeout.ms.
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", k.listen_port), timeout=10),
                        server_hostname="127.0.0.1")
    s.sendall(kafkawire.encode_request(kafkawire.API_METADATA, 1, 2, b"\xff\xff\xff\xff")[:9])
    t0 = time.monotonic()
    try:
        assert s.recv(1) == b""
    except (ConnectionResetError, ssl.SSLError):
        pass
    assert time.monotonic() - t0 < 8
    s.close()

    # 3. A TLS client that asks for answers and reads none: closed by write.timeout.ms.
    # Its receive buffer is made small before it connects: made small after, the
    # window scale is already agreed, the kernel drops what overflows and both
    # ends back off for seconds (kstretch then closes it by request.timeout.ms,
    # a request half read, which is right but not what this checks).
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.settimeout(10)
    raw.connect(("127.0.0.1", k.listen_port))
    s = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
    # 40,000 ApiVersions answers, ~5.6 MB: more than kstretch's output watermark and the socket buffers hold.
    req = b"".join(kafkawire.encode_request(kafkawire.API_API_VERSIONS, 0, i, b"") for i in range(40000))
    try:
        s.settimeout(15)
        s.sendall(req)
    except (OSError, ssl.SSLError):
        pass
    try:
        harness.wait_until(lambda: k.log_lines("in write.timeout.ms"), 15, what="the stalled reader closed")
    except AssertionError:
        m = k.metrics()
        print({x: m[x] for x in m if "forward" in x or "active" in x or "bytes" in x})
        print("\n".join(k.log().splitlines()[-10:]))
        raise
    s.close()
    fd1, _ = harness.quiet(k)
    assert fd1 <= fd0 + 2, f"descriptors {fd0} -> {fd1}"
    assert k.proc.proc.poll() is None
