#!/usr/bin/python3
"""Capture real Kafka request/response frames as test vectors.

Starts the stretched-cluster simulator (kstretch-testcluster, librdkafka's
mock cluster) on 127.0.0.1, asks it which versions it speaks (ApiVersions
v0), then for every version of Metadata (3), FindCoordinator (10) and
DescribeCluster (60) that both it and kstretch's codec speak, sends one
request over a raw socket and saves the exact bytes of the request and of its
response, each as one frame (int32 size + body) in hex:

    tests/vectors/<api>/<api>-v<N>-request.hex
    tests/vectors/<api>/<api>-v<N>-response.hex

e.g. tests/vectors/metadata/metadata-v12-response.hex. Each file must
round-trip through the codec byte for byte:

    build/protocol/kstretch-decode --request --hex --reencode FILE
    build/protocol/kstretch-decode --response --api 3 --version 12 --hex --reencode FILE

which is what this script checks after writing (pass --no-check to skip).

Regenerate (after `ninja -C build`), from the repository root:

    /usr/bin/python3 tests/vectors/capture.py

Options: --build DIR (default build), --out DIR (default tests/vectors).
The requests are built here from Kafka's message definitions (field by
field, see the build_* functions); only the standard library is used. The
cluster is --regions eu:2,us:2,ap:2 --topic t:12:3, so responses carry six
brokers with racks and one topic of twelve partitions with three replicas.
One correction is made: the mock ends flexible Metadata responses (v9+)
with one extra 0x00 (its top-level tagged fields written twice, see
strip_mock_extra_tags); that byte is removed and the size fixed, so the
vectors are what a broker sends. DescribeCluster is written only for the
versions the simulator speaks (the mock answers none: no vectors).
A rerun differs only in what the mock picks anew each time: the brokers'
ports, the cluster id and the topic ids.
"""
import argparse
import json
import os
import socket
import struct
import subprocess
import sys

HOST = "127.0.0.1"  # only ever connect here

API_METADATA = 3
API_FIND_COORDINATOR = 10
API_API_VERSIONS = 18
API_DESCRIBE_CLUSTER = 60

# name, first flexible version, versions kstretch decodes
APIS = {
    API_METADATA: ("metadata", 9, range(0, 14)),
    API_FIND_COORDINATOR: ("findcoordinator", 3, range(0, 7)),
    API_DESCRIBE_CLUSTER: ("describecluster", 0, range(0, 3)),
}

CLIENT_ID = "kstretch-capture"
TOPIC = "t"
GROUP = "capture-group"


# ---------------------------------------------------------------- encoding

def i8(v):
    return struct.pack(">b", v)


def i16(v):
    return struct.pack(">h", v)


def i32(v):
    return struct.pack(">i", v)


def boolean(v):
    return b"\x01" if v else b"\x00"


def uvarint(v):
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def string(s, flexible):
    """A (nullable) string: int16 length, or uvarint length+1 when flexible."""
    if s is None:
        return uvarint(0) if flexible else i16(-1)
    b = s.encode()
    return uvarint(len(b) + 1) + b if flexible else i16(len(b)) + b


def array(items, flexible):
    """A (nullable) array of already-encoded items."""
    if items is None:
        return uvarint(0) if flexible else i32(-1)
    head = uvarint(len(items) + 1) if flexible else i32(len(items))
    return head + b"".join(items)


NO_TAGS = uvarint(0)


def request_frame(api, version, correlation_id, body, flexible):
    """Request header v1 (v2 when flexible: + tagged fields), then the body, framed."""
    header = i16(api) + i16(version) + i32(correlation_id) + string(CLIENT_ID, False)
    if flexible:
        header += NO_TAGS
    payload = header + body
    return i32(len(payload)) + payload


# ---------------------------------------------------------------- requests

def build_metadata(v, flex):
    # Topics: one topic by name (v10+ entries also carry a zero TopicId).
    entry = (bytes(16) if v >= 10 else b"") + string(TOPIC, flex) + (NO_TAGS if flex else b"")
    body = array([entry], flex)
    if v >= 4:
        body += boolean(False)  # AllowAutoTopicCreation
    if 8 <= v <= 10:
        body += boolean(False)  # IncludeClusterAuthorizedOperations
    if v >= 8:
        body += boolean(False)  # IncludeTopicAuthorizedOperations
    if flex:
        body += NO_TAGS
    return body


def build_find_coordinator(v, flex):
    body = b""
    if v <= 3:
        body += string(GROUP, flex)  # Key
    if v >= 1:
        body += i8(0)  # KeyType: group
    if v >= 4:
        body += array([string(GROUP, flex)], flex)  # CoordinatorKeys
    if flex:
        body += NO_TAGS
    return body


def build_describe_cluster(v, flex):
    body = boolean(False)  # IncludeClusterAuthorizedOperations
    if v >= 1:
        body += i8(1)  # EndpointType: brokers
    if v >= 2:
        body += boolean(False)  # IncludeFencedBrokers
    return body + NO_TAGS


BUILDERS = {
    API_METADATA: build_metadata,
    API_FIND_COORDINATOR: build_find_coordinator,
    API_DESCRIBE_CLUSTER: build_describe_cluster,
}


# ---------------------------------------------------------------- transport

def recv_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError(f"connection closed after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)


def exchange(port, frame):
    """Sends one request frame, returns the response frame (size + body)."""
    with socket.create_connection((HOST, port), timeout=10) as s:
        s.sendall(frame)
        size_bytes = recv_exact(s, 4)
        (size,) = struct.unpack(">i", size_bytes)
        if size < 4 or size > 64 << 20:
            raise ValueError(f"implausible response size {size}")
        return size_bytes + recv_exact(s, size)


def api_versions(port):
    """{api_key: (min, max)} from an ApiVersions v0 request."""
    resp = exchange(port, request_frame(API_API_VERSIONS, 0, 1, b"", False))
    body = resp[8:]  # size, correlation_id
    (err,) = struct.unpack(">h", body[:2])
    if err:
        raise RuntimeError(f"ApiVersions error {err}")
    (n,) = struct.unpack(">i", body[2:6])
    out = {}
    for k in range(n):
        key, lo, hi = struct.unpack(">hhh", body[6 + 6 * k:12 + 6 * k])
        out[key] = (lo, hi)
    return out


# ---------------------------------------------------------------- main

def start_cluster(binary):
    proc = subprocess.Popen(
        [binary, "--regions", "eu:2,us:2,ap:2", "--topic", f"{TOPIC}:12:3"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        raise RuntimeError("kstretch-testcluster printed nothing")
    info = json.loads(line)
    return proc, info


def bootstrap_port(info):
    """The port of the first bootstrap address; refuses anything but 127.0.0.1."""
    boot = info.get("bootstrap") or info.get("bootstrap_servers")
    first = boot.split(",")[0] if isinstance(boot, str) else boot[0]
    host, port = first.rsplit(":", 1)
    if host != HOST:
        raise RuntimeError(f"simulator listens on {host}, not {HOST}")
    return int(port)


def strip_mock_extra_tags(frame):
    """librdkafka's mock (rdkafka_mock_handlers.c) ends a flexible Metadata
    response with the top-level tagged-field section twice: the handler
    writes it and rd_kafka_mock_connection_send_response() writes another
    (tags_written is false). Kafka clients ignore the extra 0x00; a strict
    decoder does not. The saved vector is the response as a broker sends it:
    without that byte, with the size fixed."""
    if len(frame) < 6 or frame[-2:] != b"\x00\x00":
        raise RuntimeError("flexible Metadata response without the mock's extra tag byte")
    body = frame[4:-1]
    return i32(len(body)) + body


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
        print(f"FAIL {path}: {r.stderr.strip()}", file=sys.stderr)
    return r.returncode == 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--out", default=os.path.join("tests", "vectors"))
    ap.add_argument("--no-check", action="store_true")
    args = ap.parse_args()

    binary = os.path.join(args.build, "tests", "cluster", "kstretch-testcluster")
    decoder = os.path.join(args.build, "protocol", "kstretch-decode")
    proc, info = start_cluster(binary)
    ok = True
    try:
        port = bootstrap_port(info)
        ranges = api_versions(port)
        correlation_id = 100
        for api, (name, flex_since, ours) in APIS.items():
            lo, hi = ranges.get(api, (0, -1))
            versions = [v for v in ours if lo <= v <= hi]
            if not versions:
                print(f"{name}: the simulator does not speak it, nothing captured")
                continue
            print(f"{name}: simulator speaks {lo}-{hi}, capturing {versions}")
            os.makedirs(os.path.join(args.out, name), exist_ok=True)
            for v in versions:
                flex = flex_since >= 0 and v >= flex_since
                correlation_id += 1
                req = request_frame(api, v, correlation_id, BUILDERS[api](v, flex), flex)
                resp = exchange(port, req)
                (cid,) = struct.unpack(">i", resp[4:8])
                if cid != correlation_id:
                    raise RuntimeError(f"{name} v{v}: correlation id {cid}, sent {correlation_id}")
                if api == API_METADATA and flex:
                    resp = strip_mock_extra_tags(resp)
                for kind, frame in (("request", req), ("response", resp)):
                    path = os.path.join(args.out, name, f"{name}-v{v}-{kind}.hex")
                    write_hex(path, frame)
                    if not args.no_check:
                        ok &= check(decoder, path, kind == "request", api, v)
    finally:
        try:
            proc.stdin.write(b"quit\n")
            proc.stdin.close()
            proc.wait(timeout=5)
        except Exception:
            proc.kill()
            proc.wait()
    print("all vectors round-trip" if ok else "some vectors do not round-trip", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
