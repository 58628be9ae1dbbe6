"""kstretch in regional mode (issue 15, part 1) between real clients and the
stretched-cluster simulator: three regions of two brokers (us 5 ms and ap 10 ms
away), topic `t` of 12 partitions with RF 3, each partition's eu replica the
mock's follower. Two kstretch nodes serve region eu; clients are given one of
them and see a cluster made of exactly those two nodes.
"""
import collections
import socket
import struct
import subprocess
import threading
import time

import pytest

import harness
import kafkawire
import records

REGIONS = "eu:2,us:2,ap:2"
RTT_MS = "us=5,ap=10"
TOPIC = "t"
PARTITIONS = 12
COUNT = 3000
CLIENT_TIMEOUT_S = 90
LOCALHOST = "127.0.0.1"
POOL = 2
WORKERS = 2


def kcat(*args):
    return [harness.kcat_path(), *args]


def regional_pair(start_cluster, start_kstretch, pool=POOL):
    """The simulator, and two regional kstretch nodes for eu (ids 1 and 2) that list each other."""
    c = start_cluster(regions=REGIONS, rtt_ms=RTT_MS, topics=[f"{TOPIC}:{PARTITIONS}:3"], follower_region="eu")
    p1, p2 = harness.free_ports(2, LOCALHOST)
    nodes = f"1@{LOCALHOST}:{p1},2@{LOCALHOST}:{p2}"
    ks = []
    for node_id, port in ((1, p1), (2, p2)):
        args = ("--mode", "regional", "--region", "eu", "--regional-nodes", nodes, "--node-id", str(node_id),
                "--regional-upstream-connections", str(pool))
        k = start_kstretch(c, workers=WORKERS, extra_args=args, listen_port=port)
        ks.append(k)
    return c, ks


def read_frame(s):
    def exactly(n):
        buf = b""
        while len(buf) < n:
            b = s.recv(n - len(buf))
            if not b:
                raise AssertionError("kstretch closed the connection")
            buf += b
        return buf
    (size,) = struct.unpack(">i", exactly(4))
    return exactly(size)


def metadata(k, topics=(TOPIC,)):
    """A Metadata v12 answer from kstretch node k, decoded."""
    with socket.create_connection((LOCALHOST, k.listen_port), timeout=10) as s:
        s.sendall(kafkawire.encode_request(3, 12, 7, kafkawire.metadata_request_v12(list(topics))))
        r = kafkawire.Reader(read_frame(s))
        assert kafkawire.decode_response_header(r, 3, 12) == 7
        return kafkawire.decode_metadata_response_v12(r)


def produce(bootstrap, sent):
    env = harness.modern_rdkafka_env()
    harness.run(kcat("-b", bootstrap, "-P", "-t", TOPIC, "-K", "\t", "-X", "acks=all", "-X",
                     "enable.idempotence=true"),
                input="".join(f"{key}\t{v}\n" for key, v in sent).encode(), env=env, timeout=CLIENT_TIMEOUT_S,
                what="kcat producer")


def consume_partition(bootstrap, partition):
    """Every record of one partition, read with manual assignment (-p) from the beginning to its end."""
    r = harness.run(kcat("-b", bootstrap, "-C", "-t", TOPIC, "-p", str(partition), "-o", "beginning", "-e",
                         "-f", harness.KCAT_FORMAT),
                    env=harness.modern_rdkafka_env(), timeout=CLIENT_TIMEOUT_S, what=f"kcat consumer -p {partition}")
    return records.parse_consumed(r.stdout.decode())


def test_kcat_produces_through_one_regional_node_and_reads_back_through_the_other(start_cluster, start_kstretch):
    c, (k1, k2) = regional_pair(start_cluster, start_kstretch)
    sent = [(f"key-{i % 97}", f"value-{i}") for i in range(COUNT)]
    produce(k1.bootstrap, sent)
    got = []
    for p in range(PARTITIONS):
        got += consume_partition(k2.bootstrap, p)
    # Exactly the records produced, each key on one partition, per-partition order kept.
    assert sorted((k, v) for _, _, k, v in got) == sorted(sent)
    by_key = collections.defaultdict(set)
    for p, _, key, _ in got:
        by_key[key].add(p)
    assert all(len(ps) == 1 for ps in by_key.values()), "a key landed on two partitions"
    for p in range(PARTITIONS):
        offsets = [o for q, o, _, _ in got if q == p]
        values = [int(v.split("-")[1]) for q, _, _, v in got if q == p]
        assert offsets == sorted(offsets) and values == sorted(values), f"partition {p} out of order"
    for k in (k1, k2):
        m = k.metrics()
        assert m["kstretch_protocol_errors"] == 0
        assert m["kstretch_regional_fragments_failed"] == 0
