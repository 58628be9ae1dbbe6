"""The session defects of issue 13, each proved by the scenario that showed it.

Every test drives kstretch in front of fakebroker.py with raw sockets, so the
timing and the bytes are the test's own.
"""
import os
import socket
import struct
import threading
import time

import pytest

import harness
import hostilelib
import kafkawire
from fakebroker import FakeBroker
from test_rack_aware import fetch_v12_rack_id

LOCALHOST = "127.0.0.1"
OFFSET_FETCH = 9  # a request kstretch neither parses nor rewrites: pure pass-through


def pipe_fds(pid):
    n = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("pipe:"):
                n += 1
        except OSError:
            pass
    return n


def read_frame(sock):
    def exact(n):
        buf = b""
        while len(buf) < n:
            b = sock.recv(n - len(buf))
            if not b:
                raise AssertionError(f"connection closed after {len(buf)} of {n} bytes")
            buf += b
        return buf
    (size,) = struct.unpack(">i", exact(4))
    return exact(size)


def pipe_quota_pipes():
    """Pipes of KX_PIPE_SIZE (256 KiB = 64 pages) an unprivileged user gets before
    Linux makes 8 KiB pipes and refuses to grow them (fs.pipe-user-pages-soft)."""
    with open("/proc/sys/fs/pipe-user-pages-soft") as f:
        soft = int(f.read())
    return soft // 64


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run kstretch as the unprivileged user nobody")
def test_past_the_pipe_quota_an_unprivileged_kstretch_reads_instead_of_splicing_and_frees_idle_pipes(
        start_kstretch, process_log_dir):
    """kstretch runs as `nobody` under the machine's own pipe quota (nothing
    machine-wide is changed). More clients than the quota has 256 KiB pipes
    for each stop in the middle of a large request, so each session wants a
    pipe at once: no session may hold a pipe smaller than the splice threshold
    (past the quota Linux gives 8 KiB ones), the shortage is logged once, every
    request still arrives whole, and once the frames are through no session
    keeps a pipe."""
    quota = pipe_quota_pipes()
    if not 0 < quota <= 400:
        pytest.skip(f"fs.pipe-user-pages-soft allows {quota} pipes of 256 KiB: too many to exceed in a test")
    clients = quota + 40
    frame_body = 1 << 20  # cut through: its rest goes through a pipe when there is one
    first_part = 200 << 10
    with FakeBroker(backlog=clients + 16) as fb:
        fb.handlers[OFFSET_FETCH] = lambda h, r: b"\x00\x00"
        prefix = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
        k = hostilelib.start_kstretch_under(prefix, start_kstretch, process_log_dir, fb.bootstrap,
                                            "kstretch-nobody", max_node_id=1, workers=2)
        base_pipes = pipe_fds(k.pid)
        socks, frames = [], []
        try:
            for i in range(clients):
                frame = kafkawire.encode_request(OFFSET_FETCH, 1, i, bytes([i % 251]) * frame_body)
                s = socket.create_connection((LOCALHOST, k.listen_port), timeout=20)
                s.sendall(frame[:first_part])
                socks.append(s)
                frames.append(frame)
            sent = clients * first_part
            harness.wait_until(lambda: k.metrics()["kstretch_bytes_from_clients"] >= sent, 30,
                               what="kstretch has read the first part of every request")
            held = pipe_fds(k.pid) - base_pipes
            assert held <= 2 * quota, (
                f"{held // 2} pipes held by {clients} sessions: past the quota of {quota}, pipes are 8 KiB "
                "and must not be used")
            assert k.wait_log(lambda t: "pipes of" in t, 5, "the short-pipe warning")
            assert len(k.log_lines("splice: pipes of")) == 1, "the short-pipe warning is logged once"
            for s, frame in zip(socks, frames):
                s.sendall(frame[first_part:])
            for i, s in enumerate(socks):
                body = read_frame(s)
                assert struct.unpack(">i", body[:4])[0] == i, f"client {i}: answer to another request"
            got = fb.requests_of(OFFSET_FETCH)
            assert len(got) == clients
            for h, body in got:
                assert body == bytes([h.correlation_id % 251]) * frame_body, \
                    f"request {h.correlation_id} arrived altered"
            assert k.metrics()["kstretch_bytes_spliced"] > 0, "frames within the quota are still spliced"
            harness.wait_until(lambda: pipe_fds(k.pid) - base_pipes == 0, 5,
                               what="no pipe kept by a session between frames")
        finally:
            for s in socks:
                s.close()


def test_a_pipe_full_by_slots_under_backpressure_does_not_make_kstretch_spin(start_kstretch):
    """Cross-region backpressure: the broker's answer arrives in many small
    TCP segments while the client reads nothing. Each spliced segment takes
    one of the pipe's 64 slots, so the pipe is full long before its byte
    size, and splice answers EAGAIN while the broker's socket stays readable:
    kstretch must stop reading the broker until the pipe drains, not spin on
    it (its CPU over 3 s stays under a tenth of a core)."""
    segments, seg_size = 4000, 2000  # 64 of them fill the pipe by slots at half its bytes
    declared = 32 << 20  # the frame is cut through; its end never comes in this test
    head = struct.pack(">ii", declared, 7)
    with FakeBroker() as fb:
        trickle = FakeBroker.Trickle([head] + [b"x" * seg_size] * segments, gap_s=0.0005)
        fb.handlers[OFFSET_FETCH] = lambda h, r: trickle
        k = start_kstretch(fb.bootstrap, max_node_id=1, workers=1)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # full after a few KiB: backpressure
        try:
            s.settimeout(10)
            s.connect((LOCALHOST, k.listen_port))
            s.sendall(kafkawire.encode_request(OFFSET_FETCH, 1, 7, b"\x00" * 16))
            harness.wait_until(lambda: k.metrics()["kstretch_bytes_from_brokers"] >= len(head) + 64 * seg_size, 20,
                               what="the first segments of the answer read by kstretch")
            time.sleep(segments * 0.0005 + 1.0)  # the broker has sent its segments, or most of them
            cpu0 = harness.cpu_seconds(k.pid)
            time.sleep(3.0)
            cpu = harness.cpu_seconds(k.pid) - cpu0
            assert k.alive()
            assert cpu < 0.3, f"kstretch used {cpu:.2f} s of CPU in 3 s with a client that reads nothing: it spins"
            m = k.metrics()
            assert m["kstretch_bytes_spliced"] > 0, "the answer was spliced (the case under test)"
            assert m["kstretch_bytes_from_brokers"] < len(head) + seg_size * segments, \
                "the client's socket took the whole answer: no backpressure, nothing tested"
            # The client reads again: kstretch reads the broker again, and every byte sent arrives, in order.
            want = head + b"x" * (seg_size * segments)
            got = bytearray()
            deadline = time.monotonic() + 30
            while len(got) < len(want) and time.monotonic() < deadline:
                got += s.recv(1 << 20)
            assert bytes(got) == want, f"the client got {len(got)} of the {len(want)} bytes sent"
        finally:
            s.close()


def test_a_placed_clients_huge_fetch_request_is_passed_on_as_it_arrives_not_held_whole(start_kstretch):
    """A placed client's Fetch gets its RackId set, so kstretch holds it whole
    to rewrite it. One of 2 MiB (a client may declare up to max.frame.bytes,
    100 MiB) is over max.held.request.bytes (1 MiB by default): kstretch passes
    it on as it arrives, unchanged and uncopied, instead of waiting for its
    last byte and copying it; the next small Fetch still gets its RackId."""
    partitions = [("t", p, 0) for p in range(64000)]
    big = kafkawire.encode_request(kafkawire.API_FETCH, 12, 1, kafkawire.fetch_request(12, partitions))
    assert len(big) > 2 << 20
    small = kafkawire.encode_request(kafkawire.API_FETCH, 12, 2, kafkawire.fetch_request(12, [("t", 0, 0)]))
    empty = kafkawire.Writer().raw(struct.pack(">ihi", 0, 0, 0)).uvarint(1).empty_tags().bytes()
    with FakeBroker(brokers=[(1, "eu-b")]) as fb:
        fb.api_versions[kafkawire.API_FETCH] = (0, 12)
        fb.handlers[kafkawire.API_FETCH] = lambda h, body: empty
        k = start_kstretch(fb.bootstrap, max_node_id=1, extra_args=("--rack", "eu-b"))
        with socket.create_connection((LOCALHOST, k.broker_port(1)), timeout=20) as s:
            m0 = k.metrics()
            s.sendall(big[:-1000])
            harness.wait_until(
                lambda: k.metrics()["kstretch_bytes_from_clients"] - m0["kstretch_bytes_from_clients"] >= len(big) - 1000,
                20, what="kstretch has read all but the last 1000 bytes of the request")
            time.sleep(0.2)
            m = k.metrics()
            assert m["kstretch_requests_forwarded"] == m0["kstretch_requests_forwarded"] + 1, \
                "the request waits for its last byte: kstretch holds it whole"
            s.sendall(big[-1000:] + small)
            for corr in (1, 2):
                assert struct.unpack(">i", read_frame(s)[:4])[0] == corr
        got = fb.requests_of(kafkawire.API_FETCH)
        assert [fetch_v12_rack_id(body) for _, body in got] == ["", "eu-b"]
        assert kafkawire.encode_request(kafkawire.API_FETCH, 12, 1, got[0][1])[4:] == big[4:], "passed on unchanged"
        m = k.metrics()
        assert m["kstretch_bytes_copied"] - m0["kstretch_bytes_copied"] < 64 << 10, "the large request was copied"
        assert m["kstretch_fetch_rack_injected"] == 1
        assert len(k.log_lines("over max.held.request.bytes")) == 1


def test_a_client_that_stops_reading_with_a_request_unanswered_is_closed_by_the_write_timeout(start_kstretch):
    """A client asks for a large answer and one more, then reads nothing: the
    answer fills kstretch's buffers and the second request stays unanswered,
    so the idle timeout never applies (a request is in flight). The session
    and its buffers must not be held for ever: write.timeout.ms closes it,
    logged and counted. A client reading slowly is not cut (its socket takes
    bytes within each period)."""
    big = b"\x00" * (24 << 20)  # more than the client's socket, kstretch's buffers and its pipe hold
    with FakeBroker() as fb:
        fb.handlers[OFFSET_FETCH] = lambda h, r: big
        k = start_kstretch(fb.bootstrap, max_node_id=1, workers=1,
                           extra_args=("--write-timeout-ms", "1500", "--idle-timeout-ms", "1000"))
        # A slow reader: 64 KiB every 0.5 s, for 4 s (write.timeout.ms is 1.5 s).
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as slow:
            slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)  # what it reads frees its buffer
            slow.settimeout(10)
            slow.connect((LOCALHOST, k.listen_port))
            slow.sendall(kafkawire.encode_request(OFFSET_FETCH, 1, 1, b"") +
                         kafkawire.encode_request(OFFSET_FETCH, 1, 2, b""))
            got = 0
            for _ in range(8):
                time.sleep(0.5)
                got += len(slow.recv(64 << 10))
            assert got > 0
            assert k.metrics()["kstretch_connections_active"] == 1, "a client reading slowly was cut"
        harness.wait_until(lambda: k.metrics()["kstretch_connections_active"] == 0, 10, what="slow reader gone")
        s = socket.create_connection((LOCALHOST, k.listen_port), timeout=10)
        try:
            s.sendall(kafkawire.encode_request(OFFSET_FETCH, 1, 1, b"") +
                      kafkawire.encode_request(OFFSET_FETCH, 1, 2, b""))
            t0 = time.monotonic()
            # Accepted first (the kernel completes a connect before kstretch's
            # accept runs: a check too early would see the slow reader's 0).
            harness.wait_until(lambda: k.metrics()["kstretch_connections_active"] == 1, 5,
                               what="kstretch accepting the client that reads nothing")
            harness.wait_until(lambda: k.metrics()["kstretch_connections_active"] == 0, 8,
                               what="the session of a client that reads nothing closed")
            waited = time.monotonic() - t0
            assert 1.0 <= waited, f"closed after {waited:.1f}s, before write.timeout.ms"
            assert k.metrics()["kstretch_write_timeouts"] == 1
            assert k.log_lines("write.timeout.ms", "closing")
            assert k.metrics()["kstretch_idle_timeouts"] == 0
        finally:
            s.close()


def read_to_end(sock, timeout_s):
    """Everything the peer sends until it closes; raises on a reset."""
    got = bytearray()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        b = sock.recv(1 << 20)
        if not b:
            return bytes(got)
        got += b
    raise AssertionError(f"no end of stream within {timeout_s}s ({len(got)} bytes read)")


def test_answers_flushed_after_the_broker_left_reach_a_client_whose_input_is_unread(start_kstretch):
    """The broker answers a large request and closes. kstretch flushes the
    answer to a client that reads slowly and that sent one more request,
    which kstretch no longer reads. Closing the client socket with that input
    unread would reset the connection and drop the end of the answer still in
    the socket's send queue: the client must get the whole answer, then an
    orderly end of stream."""
    answer = bytes(range(256)) * (3 << 9)  # 384 KiB: kstretch's pipe and the sockets hold it all
    frame = kafkawire.encode_response(OFFSET_FETCH, 1, 1, answer)
    with FakeBroker() as fb:
        fb.handlers[OFFSET_FETCH] = lambda h, r: FakeBroker.Raw(frame, close=True)
        k = start_kstretch(fb.bootstrap, max_node_id=1, workers=1)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)
            s.settimeout(10)
            s.connect((LOCALHOST, k.listen_port))
            s.sendall(kafkawire.encode_request(OFFSET_FETCH, 1, 1, b""))
            harness.wait_until(lambda: k.log_lines("upstream", "closed"), 10, what="the broker gone")
            s.sendall(kafkawire.encode_request(OFFSET_FETCH, 1, 2, b"x" * 1000))  # never read by kstretch
            time.sleep(0.3)
            try:
                got = read_to_end(s, 20)
            except ConnectionResetError:
                raise AssertionError("kstretch reset the connection before the client had its answer") from None
        assert got == frame, f"the client got {len(got)} of the {len(frame)} bytes of its answer"


def test_a_client_closing_in_the_middle_of_a_request_still_has_its_complete_requests_delivered(start_kstretch):
    """A client that reads no answers pipelines requests, starts one more
    large request and ends its stream in the middle of it. The broker's
    answers wait unread in kstretch's socket, so closing that socket would
    reset the connection and drop the complete requests still in its send
    queue. Every complete request must reach the broker; the cut-off one is
    dropped by the broker at the end of the stream, as it would be without
    kstretch."""
    count, body = 60, b"r" * (50 << 10)  # 3 MiB of requests behind a broker that answers 1 MiB to each
    answer = b"a" * (1 << 20)
    with FakeBroker() as fb:
        fb.handlers[OFFSET_FETCH] = lambda h, r: answer
        k = start_kstretch(fb.bootstrap, max_node_id=1, workers=1)
        cut = kafkawire.encode_request(OFFSET_FETCH, 1, count, b"c" * (1 << 20))
        data = b"".join(kafkawire.encode_request(OFFSET_FETCH, 1, i, body) for i in range(count))
        data += cut[:200 << 10]
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)
            s.settimeout(10)
            s.connect((LOCALHOST, k.listen_port))
            s.sendall(data)
            harness.wait_until(lambda: k.metrics()["kstretch_bytes_from_clients"] >= len(data), 10,
                               what="kstretch has read all the client sent")
            s.shutdown(socket.SHUT_WR)  # the end of its stream, in the middle of the last request
            harness.wait_until(lambda: k.metrics()["kstretch_connections_active"] == 0, 20,
                               what="the session closed")
        got = sorted(h.correlation_id for h, _ in fb.requests_of(OFFSET_FETCH))
        assert got == list(range(count)), f"{count - len(got)} complete requests lost"


def test_a_client_slowly_reading_a_large_answer_is_not_cut_by_the_idle_timeout(start_kstretch):
    """The answer's header was passed on (its request is no longer in flight)
    but its bytes are still being written to a client that reads slowly, for
    longer than idle.timeout.ms: the connection is not idle, and the client
    gets the whole answer. Once it is all written the idle timeout applies."""
    answer = bytes(range(256)) * (8 << 12)  # 8 MiB: more than the sockets between hold
    frame = kafkawire.encode_response(OFFSET_FETCH, 1, 1, answer)
    with FakeBroker() as fb:
        fb.handlers[OFFSET_FETCH] = lambda h, r: answer
        k = start_kstretch(fb.bootstrap, max_node_id=1, workers=1, extra_args=("--idle-timeout-ms", "1000"))
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)
            s.settimeout(10)
            s.connect((LOCALHOST, k.listen_port))
            s.sendall(kafkawire.encode_request(OFFSET_FETCH, 1, 1, b""))
            got = bytearray()
            t0 = time.monotonic()
            while len(got) < len(frame) and time.monotonic() - t0 < 30:
                time.sleep(0.03)
                b = s.recv(64 << 10)
                if not b:
                    break
                got += b
            took = time.monotonic() - t0
            assert took > 2.0, f"read in {took:.1f}s: not slower than two idle periods, nothing tested"
            assert bytes(got) == frame, f"cut after {len(got)} of {len(frame)} bytes ({took:.1f}s)"
            assert read_to_end(s, 5) == b"", "then idle: closed by kstretch"
        assert k.metrics()["kstretch_idle_timeouts"] == 1
