"""Upgrading kstretch without a gap (upgrade.socket, README "Upgrading without a
gap"): a new process started with the same configuration takes the running
one's listening sockets over a unix socket, serves, and the old one drains
and exits. Clients that connect all the while, and a producer at full rate,
see no refused or reset connection and lose nothing.
"""
import os
import socket
import struct
import threading
import time

import pytest

import harness
import kafkawire
import records

TOPIC = "upgrade"
PARTITIONS = 6
LOCALHOST = "127.0.0.1"
CLIENT_TIMEOUT_S = 120


class ConnectionStorm:
    """Threads that connect, ask ApiVersions, read the answer and close, over
    and over (bounded), to every port given; every failure is kept."""

    def __init__(self, ports, threads_per_port=2, limit_s=120):
        self.ports = ports
        self.ok = 0
        self.failures = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._deadline = time.monotonic() + limit_s
        self._threads = [threading.Thread(target=self._run, args=(p,), daemon=True)
                         for p in ports for _ in range(threads_per_port)]

    def _once(self, port):
        with socket.create_connection((LOCALHOST, port), timeout=10) as s:
            s.sendall(kafkawire.encode_request(kafkawire.API_API_VERSIONS, 0, 1, b""))
            (size,) = struct.unpack(">i", self._exactly(s, 4))
            kafkawire.decode_api_versions_response(0, kafkawire.Reader(self._exactly(s, size), 4))

    @staticmethod
    def _exactly(s, n):
        buf = b""
        while len(buf) < n:
            b = s.recv(n - len(buf))
            if not b:
                raise ConnectionError(f"closed with {n - len(buf)} bytes of the answer to come")
            buf += b
        return buf

    def _run(self, port):
        while not self._stop.is_set() and time.monotonic() < self._deadline:
            try:
                self._once(port)
                with self._lock:
                    self.ok += 1
            except (OSError, kafkawire.WireError) as e:
                with self._lock:
                    self.failures.append((port, time.monotonic(), repr(e)))

    def __enter__(self):
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for t in self._threads:
            t.join(timeout=15)


class Producer:
    """An idempotent librdkafka producer (confluent-kafka, acks=all) producing
    `sent` in chunks over about `spread_s`, so that it produces all through
    what the test does meanwhile; every delivery report is kept."""

    def __init__(self, bootstrap, sent, spread_s, topic=TOPIC):
        import confluent_kafka
        self.topic = topic
        self.p = confluent_kafka.Producer({"bootstrap.servers": bootstrap, "acks": "all",
                                           "enable.idempotence": True, "message.timeout.ms": 60000,
                                           "linger.ms": 5})
        self.sent = sent
        self.spread_s = spread_s
        self.delivered = 0
        self.errors = []
        self.left = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _report(self, err, msg):
        if err is None:
            self.delivered += 1
        else:
            self.errors.append(str(err))

    def _run(self):
        chunks = 40
        size = -(-len(self.sent) // chunks)
        for i in range(chunks):
            for k, v in self.sent[i * size:(i + 1) * size]:
                while True:
                    try:
                        self.p.produce(self.topic, key=k, value=v, on_delivery=self._report)
                        break
                    except BufferError:  # the local queue is full: let deliveries drain
                        self.p.poll(0.05)
            self.p.poll(0)
            time.sleep(self.spread_s / chunks)
        self.left = self.p.flush(CLIENT_TIMEOUT_S)

    def __enter__(self):
        self.thread.start()
        return self

    def wait(self):
        self.thread.join(CLIENT_TIMEOUT_S + 10)
        return self.left

    def __exit__(self, *exc):
        self.thread.join(1)


def consume_all(bootstrap, count):
    r = harness.run([harness.kcat_path(), "-b", bootstrap, "-C", "-t", TOPIC, "-o", "beginning", "-e",
                     "-f", harness.KCAT_FORMAT], env=harness.modern_rdkafka_env(), timeout=CLIENT_TIMEOUT_S,
                    what="kcat consumer")
    got = records.parse_consumed(r.stdout.decode())
    assert len(got) >= count
    return got


@pytest.mark.parametrize("mode", ["mapped", "regional"])
def test_a_new_kstretch_takes_the_listeners_over_and_no_connection_is_refused_nor_a_record_lost(
        start_cluster, start_kstretch, tmp_path, mode):
    """The old process (2 workers: a socket per worker and port) hands its
    bootstrap, broker and admin sockets to a new one with 1 worker (which
    adopts them all), keeps accepting until the new one says it serves,
    then drains and exits 0. Meanwhile threads connect to the bootstrap port
    and a broker port as fast as they can and a producer writes 60,000
    records: no connection fails, every record is read back through the
    new process, and the new one takes over in turn from itself's successor
    with more workers (3)."""
    # regional: the simulator serves reads from its eu followers, as the regional tests have it
    c = start_cluster(regions="eu:1,us:1,ap:1", topics=[f"{TOPIC}:{PARTITIONS}:3"],
                      follower_region="eu" if mode == "regional" else None)
    sock = str(tmp_path / "kstretch.upgrade")
    args = ("--upgrade-socket", sock, "--shutdown-drain-ms", "3000")
    port = None  # mapped: the harness's
    if mode == "regional":  # one node, listening on its own entry of regional.nodes
        (port,) = harness.free_ports(1, LOCALHOST)
        args += ("--mode", "regional", "--region", "eu", "--regional-nodes", f"1@{LOCALHOST}:{port}", "--node-id", "1")
    old = start_kstretch(c, workers=2, extra_args=args, listen_port=port)
    ports = [old.listen_port] + ([old.broker_port(1)] if mode == "mapped" else [])
    sent = records.make_records("upgrade", 200_000)
    with ConnectionStorm(ports) as storm, \
            Producer(old.bootstrap, sent, spread_s=5.0) as producer:
        time.sleep(1.0)
        before = storm.ok
        t0 = time.monotonic()
        new = start_kstretch(c, workers=1, extra_args=args, ports_of=old)
        assert old.wait(30) == 0, "the old process did not drain and exit 0 after the handover"
        handed = time.monotonic() - t0
        during = storm.ok - before
        time.sleep(1.0)
        newer = start_kstretch(c, workers=3, extra_args=args, ports_of=new)
        assert new.wait(30) == 0
        left = producer.wait()
        time.sleep(0.5)
    assert left == 0 and not producer.errors and producer.delivered == len(sent), \
        (left, producer.delivered, producer.errors[:5])
    print(f"{mode}: connections: {storm.ok} answered ({during} while the first process handed over, {handed:.1f} s), "
          f"{len(storm.failures)} failed")
    assert not storm.failures, storm.failures[:5]
    assert before > 0 and during > 0
    got = consume_all(newer.bootstrap, len(sent))
    assert sorted((k, v) for _, _, k, v in got) == sorted(sent)
    took = [line for line in new.log_lines("upgrade: took over")]
    assert took, "the new process did not say what it took over"
    assert old.log_lines("listening sockets handed to a new process")
    assert newer.metrics()["kstretch_connections_accepted"] > 0
    # The admin port came along: the newest process answers on it.
    assert newer.metrics()["kstretch_protocol_errors"] == 0


def test_a_successor_that_fails_before_it_is_ready_leaves_the_old_process_serving(start_cluster, start_kstretch,
                                                                                    tmp_path):
    """A connection to the upgrade socket that does not ask for the listeners,
    or asks and goes away before saying READY, changes nothing: the old
    process logs it and serves on."""
    c = start_cluster(regions="eu:1,us:1,ap:1", topics=[f"{TOPIC}:{PARTITIONS}:3"])
    sock = str(tmp_path / "kstretch.upgrade")
    old = start_kstretch(c, workers=1, extra_args=("--upgrade-socket", sock))
    for message in (b"GIVE ME EVERYTHING", b"TAKE 1"):
        with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as s:
            s.settimeout(5)
            s.connect(sock)
            s.send(message)
            if message == b"TAKE 1":
                header = s.recv(64)
                assert header.startswith(b"FDS "), header
                # take the descriptors and leave without READY
                for _ in range(int(header.split()[1])):
                    _, anc, _, _ = s.recvmsg(64, socket.CMSG_SPACE(4))
                    for level, kind, data in anc:
                        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                            os.close(struct.unpack("i", data[:4])[0])
    old.wait_log(lambda t: "went away or answered out of turn" in t, 10, "the abandoned handover logged")
    assert old.log_lines("did not ask for the listeners")
    with ConnectionStorm([old.listen_port], threads_per_port=1, limit_s=2) as storm:
        time.sleep(1.0)
    assert storm.ok > 0 and not storm.failures, storm.failures[:3]
    assert old.alive()
