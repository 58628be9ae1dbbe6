"""A network fuzzer for kstretch: mutated Kafka frames, seeded from the real
requests captured in tests/vectors, sent over real connections.

Every case is made from (seed, case number) alone, so one case can be replayed:

    cases = [make_case(seed, i) for i in range(n)]
    run_case(case, host, ports)          # -> CaseResult

Mutations (MUTATORS): bit flips in the body or anywhere, length/count fields
overwritten with edge values, truncation, oversized and negative frame sizes,
frames written in tiny pieces with pauses (interleaved with the other
connections' pieces), random API keys and versions on a real body, valid
headers of the APIs kstretch decodes with garbage bodies, frames shorter than
a header, and several of these pipelined on one connection. After sending,
a case reads what comes back for a while, or closes at once (FIN), or resets
(RST), or half-closes and reads until kstretch closes.

What a case checks on its own: every answer kstretch sent is a whole frame
whose correlation id is one the case sent (kstretch matches each answer to
the oldest request in flight, so nothing else may come back).
"""
import collections
import glob
import os
import random
import re
import socket
import struct
import time
from dataclasses import dataclass, field
from typing import List

HERE = os.path.dirname(os.path.abspath(__file__))
VECTORS = os.path.join(os.path.dirname(HERE), "vectors")

# Request header v1/v2 layout: size(4) api_key(2) api_version(2) correlation_id(4) client_id(2+n) [tags]
DECODED_APIS = {0: (0, 13), 1: (0, 18), 3: (0, 13), 10: (0, 6), 18: (0, 4), 60: (0, 2)}
FIRST_FLEXIBLE = {0: 9, 1: 12, 3: 9, 10: 3, 18: 3, 60: 0}
EDGE_INT16 = [0, 1, -1, -2, 0x7FFF, -0x8000, 0x100, 0xFF]
EDGE_INT32 = [0, 1, -1, -2, 0x7FFFFFFF, -0x80000000, 0x10000, 100 << 20, (100 << 20) + 1, 0x01000000]
EDGE_UVARINT = [b"\x00", b"\x01", b"\x7f", b"\xff\xff\xff\xff\x0f", b"\xff\xff\xff\xff\xff\x01", b"\x80\x80\x80\x80\x80",
                b"\xff\x7f"]


def load_seeds(kind="request"):
    """{name: frame bytes} of every captured frame of `kind` (request or response)."""
    seeds = {}
    for path in sorted(glob.glob(os.path.join(VECTORS, "*", f"*-{kind}*.hex"))):
        with open(path) as f:
            seeds[os.path.basename(path)[:-4]] = bytes.fromhex("".join(f.read().split()))
    if not seeds:
        raise AssertionError(f"no {kind} vectors under {VECTORS}")
    return seeds


SEEDS = None

API_NAMES = {"produce": 0, "fetch": 1, "metadata": 3, "findcoordinator": 10, "apiversions": 18}
VECTOR_RE = re.compile(r"^(?P<api>[a-z]+)-v(?P<version>\d+)-(?P<kind>request|response)(?P<variant>.*)$")


def vector_pairs():
    """{(api key, version): (request frame, [response frames])} from tests/vectors."""
    reqs, resps = {}, collections.defaultdict(list)
    for kind, table in (("request", reqs), ("response", None)):
        for name, data in sorted(load_seeds(kind).items()):
            m = VECTOR_RE.match(name)
            if not m or m["api"] not in API_NAMES:
                continue
            key = (API_NAMES[m["api"]], int(m["version"]))
            if table is not None:
                table.setdefault(key, data)
            else:
                resps[key].append(data)
    return {key: (reqs[key], resps[key]) for key in reqs if key in resps}


def pointing_at(frame, port):
    """The captured answer with every broker address in it (host 127.0.0.1,
    then a 32-bit port, in every version) pointing at `port`: the capture
    cluster's brokers are long gone."""
    b = bytearray(frame)
    at = b.find(b"127.0.0.1")
    while at >= 0:
        if at + 13 <= len(b):
            b[at + 9:at + 13] = struct.pack(">i", port)
        at = b.find(b"127.0.0.1", at + 1)
    return bytes(b)




def seeds():
    global SEEDS
    if SEEDS is None:
        SEEDS = sorted(load_seeds("request").items())
    return SEEDS


def frame(payload):
    return struct.pack(">i", len(payload)) + payload


def header(api_key, api_version, corr, client_id=b"fuzz", flexible=None):
    h = struct.pack(">hhih", api_key, api_version, corr, len(client_id)) + client_id
    if flexible if flexible is not None else api_version >= FIRST_FLEXIBLE.get(api_key, 1 << 15):
        h += b"\x00"
    return h


def with_corr(frame_bytes, corr):
    if len(frame_bytes) >= 12:
        return frame_bytes[:8] + struct.pack(">i", corr) + frame_bytes[12:]
    return frame_bytes


# ---------------------------------------------------------------- mutators: (rng, seed frame, corr) -> [frames]

def m_bitflip_body(rng, f, corr):
    b = bytearray(f)
    for _ in range(rng.choice((1, 1, 2, 4, 8, 16))):
        if len(b) > 4:
            pos = rng.randrange(4, len(b))
            b[pos] ^= 1 << rng.randrange(8)
    return [bytes(b)]


def m_bitflip_any(rng, f, corr):
    b = bytearray(f)
    for _ in range(rng.choice((1, 2, 3))):
        pos = rng.randrange(len(b))
        b[pos] ^= 1 << rng.randrange(8)
    return [bytes(b)]


def m_int_corrupt(rng, f, corr):
    """An int16/int32/uvarint field (any position past the header's api key) set to an edge value."""
    b = bytearray(f)
    for _ in range(rng.choice((1, 1, 2, 3))):
        kind = rng.choice(("i16", "i32", "uvarint"))
        pos = rng.randrange(6, max(7, len(b) - 1))
        if kind == "i16":
            v = struct.pack(">h", rng.choice(EDGE_INT16 + [rng.randrange(-0x8000, 0x8000)]))
        elif kind == "i32":
            v = struct.pack(">i", rng.choice(EDGE_INT32 + [rng.randrange(-(1 << 31), 1 << 31)]))
        else:
            v = rng.choice(EDGE_UVARINT)
        b[pos:pos + len(v)] = v
    return [bytes(b[:len(f)]) if len(b) > len(f) and rng.random() < 0.5 else bytes(b)]


def m_truncate(rng, f, corr):
    """Cut short: the size kept (kstretch waits for the rest) or fixed to the cut."""
    cut = rng.randrange(0, len(f))
    part = f[:cut]
    if rng.random() < 0.5 and cut >= 4:
        part = struct.pack(">i", cut - 4) + part[4:]
    return [part]


def m_oversize(rng, f, corr):
    size = rng.choice([-1, -(1 << 31), (1 << 31) - 1, (100 << 20) + 1, 1 << 30, len(f) + rng.randrange(1, 64),
                       rng.randrange(len(f), 1 << 20)])
    rest = f[4:]
    if rng.random() < 0.3:
        rest += os.urandom(rng.randrange(0, 256))
    return [struct.pack(">i", size) + rest]


def m_tiny_sizes(rng, f, corr):
    n = rng.randrange(0, 12)
    return [struct.pack(">i", n) + os.urandom(n) + f]


def m_random_api(rng, f, corr):
    b = bytearray(f)
    if len(b) < 12:
        return [bytes(b)]
    api = rng.choice([rng.randrange(0, 100), rng.randrange(-0x8000, 0x8000), -1, 0x7FFF, 93, 94])
    ver = rng.choice([rng.randrange(-1, 20), rng.randrange(-0x8000, 0x8000), 0x7FFF])
    b[4:8] = struct.pack(">hh", api, ver)
    return [bytes(b)]


def m_garbage_body(rng, f, corr):
    """A valid header of an API kstretch decodes (any version it knows), then garbage."""
    api = rng.choice(sorted(DECODED_APIS))
    lo, hi = DECODED_APIS[api]
    ver = rng.randrange(lo, hi + 1)
    n = rng.choice((0, 1, 2, 5, 16, 64, 300, 2000))
    body = bytes(rng.getrandbits(8) for _ in range(n)) if rng.random() < 0.7 else bytes([0xFF]) * n
    if api == 0 and rng.random() < 0.5:
        # Produce: the acks kstretch reads, behind a TransactionalId of any length
        tid = rng.choice((b"\xff\xff", b"\x00\x00", struct.pack(">h", rng.randrange(-5, 400)), b"\x00", b"\xc8\x01",
                          b"\x80\x80\x80\x80\x10"))
        body = tid + struct.pack(">h", rng.choice((0, 1, -1, 7))) + body
    cid = rng.choice((b"fuzz", b"", b"x" * 300))
    return [frame(header(api, ver, corr, cid) + body)]


def m_header_only(rng, f, corr):
    """The client id's length corrupted, or the header cut inside the client id or tags."""
    api = rng.choice(sorted(DECODED_APIS))
    ver = rng.randrange(*DECODED_APIS[api])
    h = struct.pack(">hhi", api, ver, corr) + struct.pack(">h", rng.choice((-1, -2, 5000, 32767, 3)))
    if rng.random() < 0.5:
        h += b"ab"
    if ver >= FIRST_FLEXIBLE.get(api, 99):
        h += rng.choice((b"", b"\x05", b"\xff\xff\xff\xff\x0f", b"\x02\x00\x7f"))
    return [frame(h)]


def m_pipeline(rng, f, corr):
    """Several frames, well-formed and mutated, in one write."""
    out = []
    all_seeds = seeds()
    for i in range(rng.randrange(2, 8)):
        _, s = rng.choice(all_seeds)
        s = with_corr(s, corr + i)
        if rng.random() < 0.4:
            out += rng.choice(SIMPLE_MUTATORS)(rng, s, corr + i)
        else:
            out.append(s)
    return out


SIMPLE_MUTATORS = [m_bitflip_body, m_bitflip_any, m_int_corrupt, m_truncate, m_oversize, m_tiny_sizes, m_random_api,
                   m_garbage_body, m_header_only]
MUTATORS = SIMPLE_MUTATORS + [m_pipeline, m_pipeline]


# ---------------------------------------------------------------- cases

@dataclass
class Case:
    number: int
    seed_name: str
    mutator: str
    data: bytes
    chunks: List[int]          # write sizes (the last chunk takes the rest)
    pause_s: float             # between chunks
    close: str                 # "read", "fin", "rst", "half"
    read_s: float
    listener: int              # index into the ports given to run_case
    corr_ids: List[int] = field(default_factory=list)


def corr_ids_of(data):
    """Correlation ids of the frames in `data`, as kstretch would cut them."""
    ids, pos = [], 0
    while pos + 12 <= len(data):
        (size,) = struct.unpack(">i", data[pos:pos + 4])
        if size < 8:
            break
        ids.append(struct.unpack(">i", data[pos + 8:pos + 12])[0])
        pos += 4 + size
    return ids


def make_case(seed, number, listeners, extra_seeds=()):
    """Case `number` of run `seed`; extra_seeds ([(name, frame)]) join the
    captured ones as frames to mutate (the same cases without them)."""
    rng = random.Random(f"{seed}/{number}")
    name, s = rng.choice(seeds() + list(extra_seeds))
    corr = rng.randrange(0, 1 << 20)
    s = with_corr(s, corr)
    mut = rng.choice(MUTATORS)
    frames = mut(rng, s, corr)
    if rng.random() < 0.2:  # a well-formed request first: an answer may be on its way when the bad part comes
        _, good = rng.choice(seeds())
        frames = [with_corr(good, corr - 1)] + frames
    data = b"".join(frames)
    chunks = []
    if rng.random() < 0.35:  # partial writes
        left = len(data)
        while left > 0 and len(chunks) < 40:
            c = rng.choice((1, 1, 2, 3, 4, 5, 7, 12, 64))
            chunks.append(c)
            left -= c
    close = rng.choice(("read", "read", "fin", "rst", "half"))
    return Case(number, name, mut.__name__, data, chunks, rng.choice((0.0, 0.0005, 0.002)), close,
                rng.choice((0.05, 0.1, 0.3)), rng.randrange(listeners), corr_ids_of(data))


@dataclass
class CaseResult:
    answers: int = 0
    closed_by_kstretch: bool = False
    bad: str = ""                     # a violation of what the case checks


def _frames(buf):
    out, pos = [], 0
    while pos + 4 <= len(buf):
        (size,) = struct.unpack(">i", buf[pos:pos + 4])
        if size < 4 or size > (100 << 20):
            return out, f"answer frame size {size}"
        if pos + 4 + size > len(buf):
            break
        out.append(buf[pos + 4:pos + 4 + size])
        pos += 4 + size
    return out, ""


def run_case(case, host, ports, connect_timeout=5.0):
    res = CaseResult()
    s = socket.create_connection((host, ports[case.listener]), timeout=connect_timeout)
    received = bytearray()
    try:
        s.settimeout(2.0)
        try:
            if case.chunks:
                pos = 0
                for c in case.chunks:
                    s.sendall(case.data[pos:pos + c])
                    pos += c
                    if case.pause_s:
                        time.sleep(case.pause_s)
                if pos < len(case.data):
                    s.sendall(case.data[pos:])
            else:
                s.sendall(case.data)
        except (BrokenPipeError, ConnectionResetError):
            res.closed_by_kstretch = True
            return res
        except socket.timeout:  # kstretch stopped reading (backpressure): fine, the case is over
            return res
        if case.close == "rst":
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return res
        if case.close == "fin":
            return res
        if case.close == "half":
            try:
                s.shutdown(socket.SHUT_WR)
            except OSError:  # ENOTCONN: kstretch reset the connection already
                res.closed_by_kstretch = True
                return res
        deadline = time.monotonic() + case.read_s
        while time.monotonic() < deadline:
            s.settimeout(max(0.005, deadline - time.monotonic()))
            try:
                b = s.recv(1 << 16)
            except socket.timeout:
                break
            except ConnectionResetError:
                res.closed_by_kstretch = True
                break
            if not b:
                res.closed_by_kstretch = True
                break
            received += b
    finally:
        s.close()
    frames, bad = _frames(bytes(received))
    res.answers = len(frames)
    res.bad = bad
    sent = set(case.corr_ids)
    for fr in frames:
        corr = struct.unpack(">i", fr[:4])[0] if len(fr) >= 4 else None
        if corr not in sent:
            res.bad = f"answer with correlation id {corr}, not one the case sent ({sorted(sent)[:8]})"
            break
    return res


def describe(case):
    return (f"case {case.number}: {case.mutator} of {case.seed_name}, {len(case.data)} bytes in "
            f"{len(case.chunks) or 1} writes, then {case.close}; listener #{case.listener}; data {case.data[:64].hex()}"
            f"{'...' if len(case.data) > 64 else ''}")
