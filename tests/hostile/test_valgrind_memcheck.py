"""kstretch under valgrind's memcheck for a short proxy session: a real
producer and consumer, a rewritten Metadata answer, a malformed frame, an
idle client closed by idle.timeout.ms, then SIGTERM. valgrind must report no
invalid access and no definitely lost block (--error-exitcode makes either
a non-zero exit, which the start_kstretch fixture fails at teardown; the
test also reads valgrind's own summary).

Not under KSTRETCH_SANITIZED=1: an ASan binary does not run under valgrind.
"""
import os
import re
import shutil
import socket
import struct
import time

import pytest

import hostilelib
import kafkawire
from hostilelib import LOCALHOST

VALGRIND_ERROR_EXIT = 99


@pytest.mark.skipif(hostilelib.SANITIZED, reason="an ASan+UBSan build does not run under valgrind")
def test_a_short_proxy_session_under_valgrind_has_no_invalid_access_and_no_definite_leak(start_cluster, start_kstretch,
                                                                                        process_log_dir,
                                                                                        hostile_results):
    valgrind = shutil.which("valgrind")
    if not valgrind:
        pytest.fail("valgrind is not installed (run `make deps`)", pytrace=False)
    c = start_cluster(regions="eu:1,us:1", topics=["t:4:2"])
    vlog = os.path.join(process_log_dir, "valgrind.log")
    prefix = [valgrind, "--tool=memcheck", f"--error-exitcode={VALGRIND_ERROR_EXIT}", "--leak-check=full",
              "--show-leak-kinds=definite", "--errors-for-leak-kinds=definite", "--num-callers=30",
              f"--log-file={vlog}"]
    t0 = time.monotonic()
    k = hostilelib.start_kstretch_under(prefix, start_kstretch, process_log_dir, c.bootstrap, "kstretch-valgrind",
                                        max_node_id=2, extra_args=("--idle-timeout-ms", "2000"))
    hostilelib.produce_and_read_back(k.bootstrap, "t", "valgrind", count=200, timeout=60)
    with kafkawire.Connection(LOCALHOST, k.listen_port, timeout=20) as conn:
        assert {b.node_id for b in conn.metadata_v12().brokers} == {1, 2}
    with socket.create_connection((LOCALHOST, k.listen_port), timeout=20) as s:  # a malformed frame
        s.sendall(struct.pack(">i", -1) + bytes(12))
        s.settimeout(20)
        assert s.recv(1) == b""
    with socket.create_connection((LOCALHOST, k.broker_port(1)), timeout=20) as s:  # an idle client
        s.settimeout(20)
        assert s.recv(1) == b""
    assert k.stop() == 0, f"kstretch under valgrind exited {k.returncode}\n{open(vlog).read()[-4000:]}"
    elapsed = time.monotonic() - t0
    report = open(vlog).read()
    summary = re.search(r"ERROR SUMMARY: (\d+) errors", report)
    definite = re.search(r"definitely lost: ([\d,]+) bytes in ([\d,]+) blocks", report)
    assert summary, f"no ERROR SUMMARY in valgrind's log:\n{report[-3000:]}"
    assert summary.group(1) == "0", f"valgrind found errors:\n{report[-6000:]}"
    assert not definite or definite.group(1) == "0", f"valgrind: {definite.group(0)}\n{report[-6000:]}"
    leaks = re.search(r"LEAK SUMMARY:(.*?)\n==\d+== *\n", report, re.S)
    figures = (f"kstretch under valgrind memcheck for {elapsed:.0f} s (200 records produced and read back, Metadata "
               f"rewritten, a malformed frame, an idle timeout, SIGTERM): {summary.group(0)}; "
               f"{definite.group(0) if definite else 'definitely lost: 0 bytes'}")
    print(figures)
    print(leaks.group(0) if leaks else report[-1500:])
    hostile_results["valgrind memcheck"] = figures


@pytest.mark.skipif(hostilelib.SANITIZED, reason="an ASan+UBSan build does not run under valgrind")
def test_tls_sessions_under_valgrind_have_no_invalid_access_and_no_definite_leak(start_cluster, start_kstretch,
                                                                                 process_log_dir, tmp_path,
                                                                                 hostile_results):
    """The TLS path under memcheck: mTLS handshakes, a real client producing and
    reading back over TLS, a client refused for no certificate, plaintext on the
    TLS port, a SIGHUP reload, then SIGTERM."""
    import signal
    import ssl
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "integration"))
    import certs
    import harness
    import records
    valgrind = shutil.which("valgrind")
    if not valgrind:
        pytest.fail("valgrind is not installed (run `make deps`)", pytrace=False)
    tc = certs.make(str((tmp_path / "certs").resolve()))
    c = start_cluster(regions="eu:1,us:1", topics=["t:4:2"])
    vlog = os.path.join(process_log_dir, "valgrind-tls.log")
    prefix = [valgrind, "--tool=memcheck", f"--error-exitcode={VALGRIND_ERROR_EXIT}", "--leak-check=full",
              "--show-leak-kinds=definite", "--errors-for-leak-kinds=definite", "--num-callers=30",
              f"--log-file={vlog}"]
    k = hostilelib.start_kstretch_under(prefix, start_kstretch, process_log_dir, c.bootstrap, "kstretch-valgrind-tls",
                                        max_node_id=2, extra_args=(
                                            "--tls-cert", tc.server_cert, "--tls-key", tc.server_key,
                                            "--tls-client-ca", tc.ca, "--tls-client-auth", "required"))
    tls = ["-X", "security.protocol=ssl", "-X", f"ssl.ca.location={tc.ca}", "-X",
           f"ssl.certificate.location={tc.client_cert}", "-X", f"ssl.key.location={tc.client_key}"]
    env = harness.modern_rdkafka_env()
    sent = records.make_records("valgrind-tls", 200)
    harness.run([harness.kcat_path(), "-b", k.bootstrap, *tls, "-P", "-t", "t", "-K", "\t", "-X", "acks=all"],
                input="".join(f"{key}\t{v}\n" for key, v in sent).encode(), env=env, timeout=90,
                what="kcat producer over mTLS")
    r = harness.run([harness.kcat_path(), "-b", k.bootstrap, *tls, "-C", "-t", "t", "-o", "beginning", "-e",
                     "-f", harness.KCAT_FORMAT], env=env, timeout=90, what="kcat reader over mTLS")
    got = {(key, v) for _, _, key, v in records.parse_consumed(r.stdout.decode())}
    assert all(s in got for s in sent)
    ctx = ssl.create_default_context(cafile=tc.ca)  # no client certificate: refused
    with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
        s = ctx.wrap_socket(socket.create_connection((LOCALHOST, k.listen_port), timeout=20),
                            server_hostname=LOCALHOST)
        s.sendall(kafkawire.encode_request(kafkawire.API_API_VERSIONS, 0, 1, b""))
        if s.recv(1) == b"":
            raise ssl.SSLError("closed")
    with socket.create_connection((LOCALHOST, k.listen_port), timeout=20) as s:  # plaintext on the TLS port
        s.sendall(kafkawire.encode_request(kafkawire.API_API_VERSIONS, 0, 1, b""))
        s.settimeout(20)
        try:
            assert s.recv(1) == b""
        except ConnectionResetError:
            pass
    os.kill(k.pid, signal.SIGHUP)
    harness.wait_until(lambda: k.log_lines("TLS certificates and keys reloaded"), 30, what="the reload")
    assert k.stop() == 0, f"kstretch under valgrind exited {k.returncode}\n{open(vlog).read()[-4000:]}"
    report = open(vlog).read()
    summary = re.search(r"ERROR SUMMARY: (\d+) errors", report)
    definite = re.search(r"definitely lost: ([\d,]+) bytes in ([\d,]+) blocks", report)
    assert summary and summary.group(1) == "0", f"valgrind found errors:\n{report[-6000:]}"
    assert not definite or definite.group(1) == "0", f"valgrind: {definite.group(0)}\n{report[-6000:]}"
    hostile_results["valgrind memcheck, TLS"] = (f"mTLS produce and read back, refused handshakes, SIGHUP reload: "
                                                 f"{summary.group(0)}; "
                                                 f"{definite.group(0) if definite else 'definitely lost: 0 bytes'}")
