"""TLS towards clients (tls.*): real clients connect to kstretch with TLS and
mTLS; kstretch talks plaintext to the simulated cluster behind it.

Certificates are made for the test with openssl (certs.py): a CA, kstretch's
server certificate for 127.0.0.1, a client certificate (OU=rack-us-a), one
from another CA, an expired one. Every client check goes the way a user's
would: kcat (librdkafka 2.12) and kafka-python with their own TLS settings,
producing and reading back every record.
"""
import os
import signal
import socket
import ssl
import subprocess
import time

import pytest

import certs
import harness
import kafkawire
import records
import tlsserver

TOPIC = "t"
PARTITIONS = 6


@pytest.fixture(scope="module")
def tls_certs(tmp_path_factory):
    return certs.make(str(tmp_path_factory.mktemp("certs")))


def tls_args(c, *extra, cert="server"):
    return ("--tls-cert", c.cert(cert), "--tls-key", c.key(cert), *extra)


def kcat_tls(c, client=None):
    x = ["-X", "security.protocol=ssl", "-X", f"ssl.ca.location={c.ca}"]
    if client:
        x += ["-X", f"ssl.certificate.location={c.cert(client)}", "-X", f"ssl.key.location={c.key(client)}"]
    return x


def kcat_roundtrip(k, c, client=None, count=600, group="tls-group"):
    sent = records.make_records(group, count)
    env = harness.modern_rdkafka_env()
    harness.run([harness.kcat_path(), "-b", k.bootstrap, *kcat_tls(c, client), "-P", "-t", TOPIC, "-K", "\t",
                 "-X", "acks=all"], input="".join(f"{key}\t{v}\n" for key, v in sent).encode(), env=env,
                timeout=90, what="kcat producer over TLS")
    r = harness.run([harness.kcat_path(), "-b", k.bootstrap, *kcat_tls(c, client), "-G", group,
                     "-X", "auto.offset.reset=earliest", "-e", "-f", harness.KCAT_FORMAT, TOPIC],
                    env=env, timeout=90, what="kcat consumer over TLS")
    records.assert_same_records(sent, records.parse_consumed(r.stdout.decode()), PARTITIONS)


def tls_connect(port, c, client=None, server_hostname=None):
    ctx = ssl.create_default_context(cafile=c.ca)
    if client:
        ctx.load_cert_chain(c.cert(client), c.key(client))
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    return ctx.wrap_socket(raw, server_hostname=server_hostname or "127.0.0.1")


def closed_by_peer(sock):
    try:
        return sock.recv(1) == b""
    except (ConnectionResetError, ssl.SSLError, OSError):
        return True


def test_kcat_produces_and_consumes_through_tls(start_cluster, start_kstretch, tls_certs):
    cl = start_cluster(regions="eu:1,us:1,ap:1", topics=[f"{TOPIC}:{PARTITIONS}:3"])
    k = start_kstretch(cl, max_node_id=3, extra_args=tls_args(tls_certs))
    kcat_roundtrip(k, tls_certs)
    m = k.metrics()
    assert m["kstretch_tls_handshakes"] >= 2
    assert m["kstretch_tls_handshake_failures"] == 0
    assert m["kstretch_bytes_spliced"] == 0, "bytes cannot be spliced past TLS"


def test_kafka_python_over_tls_with_a_python_ssl_context(start_cluster, start_kstretch, tls_certs):
    cl = start_cluster(regions="eu:1,us:1", topics=[f"{TOPIC}:{PARTITIONS}:2"])
    k = start_kstretch(cl, max_node_id=2, extra_args=tls_args(tls_certs))
    script = f"""
from kafka import KafkaProducer, KafkaConsumer
# api_version: the mock offers versions kafka-python cannot read (see clients/python_roundtrip.py)
common = dict(bootstrap_servers={k.bootstrap!r}, security_protocol="SSL", ssl_cafile={tls_certs.ca!r},
              api_version=(2, 3))
p = KafkaProducer(acks="all", **common)
for i in range(300):
    p.send({TOPIC!r}, key=b"k%d" % i, value=b"v%d" % i)
p.flush(60)
c = KafkaConsumer({TOPIC!r}, group_id="kp-tls", auto_offset_reset="earliest", consumer_timeout_ms=8000, **common)
n = sum(1 for _ in c)
print(n)
"""
    r = harness.run([harness.venv_python(), "-c", script], timeout=120, what="kafka-python over TLS")
    assert int(r.stdout.decode().strip().splitlines()[-1]) == 300


def test_mtls_required_serves_the_ca_s_clients_and_refuses_others(start_cluster, start_kstretch, tls_certs):
    cl = start_cluster(regions="eu:1,us:1,ap:1", topics=[f"{TOPIC}:{PARTITIONS}:3"])
    k = start_kstretch(cl, max_node_id=3, extra_args=tls_args(
        tls_certs, "--tls-client-ca", tls_certs.ca, "--tls-client-auth", "required",
        "--tls-client-rack-from", "ou", "--tls-client-rack-prefix", "rack-", "--region-map", "us-*=us"))
    kcat_roundtrip(k, tls_certs, client="client", group="mtls-group")
    # The certificate's subject is logged, and its OU places the client.
    assert k.log_lines("client certificate OU=rack-us-a,CN=kstretch-test-client, rack us-a")
    assert k.log_lines("client in rack us-a, region us (from certificate)")

    before = k.metrics()["kstretch_tls_handshake_failures"]
    # No certificate: refused in the handshake.
    with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
        s = tls_connect(k.listen_port, tls_certs)
        s.sendall(kafkawire.encode_request(kafkawire.API_API_VERSIONS, 0, 1, b""))
        if closed_by_peer(s):
            raise ssl.SSLError("closed")
    # A certificate from another CA: refused.
    with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
        s = tls_connect(k.listen_port, tls_certs, client="other_client")
        s.sendall(kafkawire.encode_request(kafkawire.API_API_VERSIONS, 0, 1, b""))
        if closed_by_peer(s):
            raise ssl.SSLError("closed")
    harness.wait_until(lambda: k.metrics()["kstretch_tls_handshake_failures"] >= before + 2, 5,
                       what="two refused handshakes counted")
    assert k.log_lines("peer did not return a certificate")
    assert k.log_lines("certificate verify failed")


def test_plaintext_on_the_tls_port_and_tls_on_a_plaintext_port_are_named_and_closed(start_cluster, start_kstretch,
                                                                                   tls_certs):
    cl = start_cluster(regions="eu:1", topics=["t:1:1"])
    k = start_kstretch(cl, max_node_id=1, extra_args=tls_args(tls_certs))
    s = socket.create_connection(("127.0.0.1", k.listen_port), timeout=5)
    s.sendall(kafkawire.encode_request(kafkawire.API_API_VERSIONS, 0, 1, b""))
    assert closed_by_peer(s)
    s.close()
    harness.wait_until(lambda: k.log_lines("a plaintext Kafka client on a TLS listener?"), 5,
                       what="the plaintext-on-TLS log line")

    plain = start_kstretch(cl, max_node_id=1)
    with pytest.raises((ssl.SSLError, ConnectionResetError, OSError)):
        tls_connect(plain.listen_port, tls_certs)
    harness.wait_until(lambda: plain.log_lines("sent a TLS ClientHello to a plaintext listener"), 5,
                       what="the TLS-on-plaintext log line")
    assert plain.metrics()["kstretch_tls_plaintext_refused"] == 1


def test_a_client_that_never_finishes_its_handshake_is_closed(start_cluster, start_kstretch, tls_certs):
    cl = start_cluster(regions="eu:1", topics=["t:1:1"])
    k = start_kstretch(cl, max_node_id=1, extra_args=tls_args(tls_certs, "--tls-handshake-timeout-ms", "500"))
    s = socket.create_connection(("127.0.0.1", k.listen_port), timeout=5)
    s.sendall(b"\x16\x03\x01\x00")  # the start of a record header, then nothing
    t0 = time.monotonic()
    assert closed_by_peer(s)
    assert time.monotonic() - t0 < 4
    harness.wait_until(lambda: k.log_lines("TLS handshake not complete after tls.handshake.timeout.ms"), 5,
                       what="the handshake timeout line")


def test_sighup_reloads_the_certificate_and_keeps_established_connections(start_cluster, start_kstretch, tls_certs,
                                                                         tmp_path):
    cl = start_cluster(regions="eu:1", topics=["t:1:1"])
    cert, key = tmp_path / "live.pem", tmp_path / "live.key"
    cert.write_bytes(open(tls_certs.cert("server"), "rb").read())
    key.write_bytes(open(tls_certs.key("server"), "rb").read())
    k = start_kstretch(cl, max_node_id=1, extra_args=("--tls-cert", str(cert), "--tls-key", str(key)))

    def serial(sock):
        der = sock.getpeercert(binary_form=True)
        return subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-serial"], input=der,
                              stdout=subprocess.PIPE, check=True, timeout=10).stdout

    old = tls_connect(k.listen_port, tls_certs)
    conn = kafkawire.Connection.__new__(kafkawire.Connection)
    conn.sock, conn.client_id, conn._corr = old, "kstretch-tests", 0
    assert conn.api_versions(version=2).error_code == 0
    first = serial(old)

    # A broken file: the reload is refused and the old certificate stays.
    key.write_text("not a key\n")
    os.kill(k.pid, signal.SIGHUP)
    harness.wait_until(lambda: k.log_lines("TLS reload failed, the previous certificates stay in use"), 5,
                       what="the refused reload")
    s = tls_connect(k.listen_port, tls_certs)
    assert serial(s) == first
    s.close()

    # The "sni" certificate (same CA, also valid for 127.0.0.1): new connections get it.
    cert.write_bytes(open(tls_certs.cert("sni"), "rb").read())
    key.write_bytes(open(tls_certs.key("sni"), "rb").read())
    os.kill(k.pid, signal.SIGHUP)
    harness.wait_until(lambda: k.log_lines("TLS certificates and keys reloaded"), 5, what="the reload")
    s = tls_connect(k.listen_port, tls_certs)
    assert serial(s) != first
    s.close()
    # The connection made before both reloads still works.
    assert conn.api_versions(version=2).error_code == 0
    assert conn.metadata_v12(["t"]).brokers
    old.close()


def in_hosts_namespace(hosts_file, argv):
    """argv run in a mount namespace of its own where /etc/hosts is hosts_file:
    the client resolves the SNI names to 127.0.0.1, nothing else on the machine does."""
    return ["unshare", "--mount", "sh", "-c", 'mount --bind "$0" /etc/hosts && exec "$@"', hosts_file, *argv]


def test_sni_mode_serves_every_broker_through_one_port_by_name(start_cluster, start_kstretch, tls_certs, tmp_path):
    if os.geteuid() != 0:
        pytest.fail("the SNI test needs root for a mount namespace (unshare --mount)", pytrace=False)
    cl = start_cluster(regions="eu:1,us:1,ap:1", topics=[f"{TOPIC}:{PARTITIONS}:3"])
    pattern = "broker-$(nodeId)-$(region).kafka.test"
    k = start_kstretch(cl, max_node_id=3, extra_args=tls_args(
        tls_certs, "--listener-mode", "sni", "--sni-host-pattern", pattern, "--advertised-host", "kafka.test",
        cert="sni"))
    names = {1: "broker-1-eu.kafka.test", 2: "broker-2-us.kafka.test", 3: "broker-3-ap.kafka.test"}
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost kafka.test " + " ".join(names.values()) + "\n")
    # Nothing listens on a port per broker: one port serves all.
    for node in names:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", k.broker_port(node)), timeout=5).close()
    for node, name in names.items():
        assert k.log_lines(f"node {node} ", f"{name}:{k.listen_port} (SNI)")

    env = harness.modern_rdkafka_env()
    bootstrap = f"kafka.test:{k.listen_port}"
    md = harness.run(in_hosts_namespace(str(hosts), [harness.kcat_path(), "-b", bootstrap, *kcat_tls(tls_certs),
                                                     "-L", "-t", TOPIC]), env=env, timeout=60, what="kcat -L")
    listing = md.stdout.decode()
    for node, name in names.items():
        assert f"broker {node} at {name}:{k.listen_port}" in listing, listing

    sent = records.make_records("sni", 600)
    harness.run(in_hosts_namespace(str(hosts), [harness.kcat_path(), "-b", bootstrap, *kcat_tls(tls_certs), "-P",
                                                "-t", TOPIC, "-K", "\t", "-X", "acks=all"]),
                input="".join(f"{key}\t{v}\n" for key, v in sent).encode(), env=env, timeout=90,
                what="kcat producer over SNI")
    r = harness.run(in_hosts_namespace(str(hosts), [harness.kcat_path(), "-b", bootstrap, *kcat_tls(tls_certs),
                                                    "-G", "sni-group", "-X", "auto.offset.reset=earliest", "-e",
                                                    "-f", harness.KCAT_FORMAT, TOPIC]),
                    env=env, timeout=90, what="kcat consumer over SNI")
    records.assert_same_records(sent, records.parse_consumed(r.stdout.decode()), PARTITIONS)
    # Every broker was reached through its name (the partitions' leaders are on all three).
    for node in names:
        assert k.log_lines(f"upstream node {node} (127.0.0.1:"), f"no session went to node {node}"

    # An unknown name is refused in the handshake, with a log line.
    with pytest.raises(ssl.SSLError):
        tls_connect(k.listen_port, tls_certs, server_hostname="broker-9-eu.kafka.test")
    harness.wait_until(lambda: k.log_lines("unknown server name 'broker-9-eu.kafka.test'"), 5,
                       what="the refused name's log line")


@pytest.mark.parametrize("cert,host,says", [
    ("wronghost", "127.0.0.1", "certificate verify failed (certificate: ip address mismatch)"),
    ("wronghost", "localhost", "certificate verify failed (certificate: hostname mismatch)"),
    ("expired", "127.0.0.1", "certificate verify failed (certificate: certificate has expired)"),
])
def test_upstream_tls_refuses_a_broker_certificate_for_another_host_or_expired(tls_certs, process_log_dir, cert, host,
                                                                              says):
    server = tlsserver.TlsServer(tls_certs.cert(cert), tls_certs.key(cert))
    listen, admin = harness.free_ports(2, "127.0.0.1")
    p = harness.ManagedProcess(f"kstretch-{cert}", [
        harness.KSTRETCH, "--bootstrap-servers", f"{host}:{server.port}", "--upstream-tls", "true",
        "--upstream-tls-ca", tls_certs.ca, "--listen", f"127.0.0.1:{listen}", "--admin-listen",
        f"127.0.0.1:{admin}", "--broker-port-base", "30000"], process_log_dir)
    try:
        harness.wait_until(lambda: says in open(p.log_path).read().lower(), 15,
                           what=f"kstretch naming the broker's certificate ({says})")
        log = open(p.log_path).read()
        assert f"bootstrap: {host}:{server.port}: TLS handshake failed" in log
        assert "ready:" not in log, "kstretch went on with a broker it could not verify"
    finally:
        p.proc.send_signal(signal.SIGTERM)
        p.proc.wait(10)
        server.close()
    assert p.proc.returncode == 0


# ---------------------------------------------------------------- regional mode (mode=regional, tls.cert)

def regional_tls_pair(start_cluster, start_kstretch, c, *extra):
    """The simulator, and two regional kstretch nodes for eu (ids 1 and 2, listing each other) serving TLS."""
    cl = start_cluster(regions="eu:2,us:2,ap:2", topics=[f"{TOPIC}:{PARTITIONS}:3"], follower_region="eu")
    p1, p2 = harness.free_ports(2, "127.0.0.1")
    nodes = f"1@127.0.0.1:{p1},2@127.0.0.1:{p2}"
    ks = [start_kstretch(cl, extra_args=("--mode", "regional", "--region", "eu", "--regional-nodes", nodes,
                                         "--node-id", str(node_id), *tls_args(c, *extra)), listen_port=port)
          for node_id, port in ((1, p1), (2, p2))]
    return cl, ks


def kcat_regional_roundtrip(k_in, k_out, c, tag, client=None, count=600):
    """kcat over TLS: `count` records produced through k_in, read back through k_out (partitions assigned by
    hand: regional mode has no group coordinator yet)."""
    sent = records.make_records(tag, count)
    env = harness.modern_rdkafka_env()
    harness.run([harness.kcat_path(), "-b", k_in.bootstrap, *kcat_tls(c, client), "-P", "-t", TOPIC, "-K", "\t",
                 "-X", "acks=all", "-X", "enable.idempotence=true"],
                input="".join(f"{key}\t{v}\n" for key, v in sent).encode(), env=env, timeout=90,
                what="kcat producer over TLS to regional node 1")
    r = harness.run([harness.kcat_path(), "-b", k_out.bootstrap, *kcat_tls(c, client), "-C", "-t", TOPIC,
                     "-o", "beginning", "-c", str(count), "-f", harness.KCAT_FORMAT],
                    env=env, timeout=90, what="kcat consumer over TLS from regional node 2")
    records.assert_same_records(sent, records.parse_consumed(r.stdout.decode()), PARTITIONS)


def test_regional_nodes_serve_kcat_over_tls_and_name_a_plaintext_client(start_cluster, start_kstretch, tls_certs):
    cl, (k1, k2) = regional_tls_pair(start_cluster, start_kstretch, tls_certs, "--tls-handshake-timeout-ms", "2000")
    kcat_regional_roundtrip(k1, k2, tls_certs, "regional-tls")
    for k in (k1, k2):
        m = k.metrics()
        assert m["kstretch_tls_handshakes"] >= 1, m
        assert m["kstretch_tls_handshake_failures"] == 0, m
        assert m["kstretch_protocol_errors"] == 0, m
        assert m["kstretch_regional_fragments_failed"] == 0, m

    # A plaintext Kafka client on the TLS port: named in the log, closed, counted.
    s = socket.create_connection(("127.0.0.1", k1.listen_port), timeout=5)
    s.sendall(kafkawire.encode_request(kafkawire.API_API_VERSIONS, 0, 1, b""))
    assert closed_by_peer(s)
    s.close()
    harness.wait_until(lambda: k1.log_lines("a plaintext Kafka client on a TLS listener?"), 5,
                       what="the plaintext-on-TLS log line")
    harness.wait_until(lambda: k1.metrics()["kstretch_tls_handshake_failures"] == 1, 5,
                       what="the refused handshake counted")

    # A handshake never finished: closed after tls.handshake.timeout.ms.
    s = socket.create_connection(("127.0.0.1", k2.listen_port), timeout=5)
    s.sendall(b"\x16\x03\x01\x00")  # the start of a record header, then nothing
    t0 = time.monotonic()
    assert closed_by_peer(s)
    assert time.monotonic() - t0 < 4.5
    s.close()
    harness.wait_until(lambda: k2.log_lines("TLS handshake not complete after tls.handshake.timeout.ms"), 5,
                       what="the handshake timeout line")


def test_regional_node_on_a_plaintext_port_names_a_tls_client(start_cluster, start_kstretch, tls_certs):
    cl = start_cluster(regions="eu:1,us:1", topics=["t:1:1"])
    (p,) = harness.free_ports(1, "127.0.0.1")
    k = start_kstretch(cl, extra_args=("--mode", "regional", "--region", "eu", "--regional-nodes",
                                       f"1@127.0.0.1:{p}", "--node-id", "1"), listen_port=p)
    with pytest.raises((ssl.SSLError, ConnectionResetError, OSError)):
        tls_connect(k.listen_port, tls_certs)
    harness.wait_until(lambda: k.log_lines("sent a TLS ClientHello to a plaintext listener"), 5,
                       what="the TLS-on-plaintext log line")
    harness.wait_until(lambda: k.metrics()["kstretch_tls_plaintext_refused"] == 1, 5,
                       what="the TLS client on the plaintext port counted")


def test_regional_nodes_with_mtls_required_serve_the_ca_s_clients_and_refuse_others(start_cluster, start_kstretch,
                                                                                     tls_certs):
    cl, (k1, k2) = regional_tls_pair(start_cluster, start_kstretch, tls_certs, "--tls-client-ca", tls_certs.ca,
                                     "--tls-client-auth", "required")
    kcat_regional_roundtrip(k1, k2, tls_certs, "regional-mtls", client="client", count=300)
    assert k1.log_lines("client certificate OU=rack-us-a,CN=kstretch-test-client")
    # No certificate: refused in the handshake, before any request is read.
    with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
        s = tls_connect(k2.listen_port, tls_certs)
        s.sendall(kafkawire.encode_request(kafkawire.API_API_VERSIONS, 0, 1, b""))
        if closed_by_peer(s):
            raise ssl.SSLError("closed")
    harness.wait_until(lambda: k2.log_lines("peer did not return a certificate"), 5,
                       what="the refused handshake's log line")
    harness.wait_until(lambda: k2.metrics()["kstretch_tls_handshake_failures"] >= 1, 5,
                       what="the refused handshake counted")


def test_a_regional_node_names_a_broker_whose_certificate_fails_and_answers_its_partitions_retriable(
        start_kstretch, tls_certs):
    """upstream.tls in regional mode: a scripted TLS broker (node 1, a valid certificate) says partition 0 of
    `t` is led by node 2, whose TLS server presents a certificate for another host. A Produce to both
    partitions: partition 1 is written at node 1 over a verified shared connection; the shared connection to
    node 2 fails its handshake, which is logged with the node and OpenSSL's reason, and partition 0 is answered
    NOT_LEADER_OR_FOLLOWER (the client refreshes and retries), not dropped or hung."""
    from fakebroker import FakeBroker
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tls_certs.cert("server"), tls_certs.key("server"))
    bad = tlsserver.TlsServer(tls_certs.cert("wronghost"), tls_certs.key("wronghost"), lifetime=120)
    tid = bytes(range(1, 17))
    with FakeBroker(brokers=[(1, None)], tls=ctx) as fb:
        fb.broker_list.append(kafkawire.MetadataBroker(2, "127.0.0.1", bad.port, None))
        parts = [kafkawire.MetadataPartition(0, 0, 2, 1, [2, 1], [2, 1], []),
                 kafkawire.MetadataPartition(0, 1, 1, 1, [1, 2], [1, 2], [])]
        fb.handlers[kafkawire.API_METADATA] = lambda h, r: kafkawire.metadata_response_v12(
            fb.broker_list, topics=[kafkawire.MetadataTopic(0, "t", tid, False, parts, -2147483648)])
        fb.handlers[kafkawire.API_PRODUCE] = lambda h, r: kafkawire.produce_response_v9(
            [(t, p, 0, 0) for t, p, _ in kafkawire.decode_produce_request_v9(r)[1]])
        (port,) = harness.free_ports(1, "127.0.0.1")
        k = start_kstretch(fb.bootstrap, workers=1, listen_port=port, extra_args=(
            "--mode", "regional", "--region", "eu", "--regional-nodes", f"1@127.0.0.1:{port}", "--node-id", "1",
            "--upstream-tls", "true", "--upstream-tls-ca", tls_certs.ca))
        try:
            with kafkawire.Connection("127.0.0.1", port, timeout=10) as conn:
                md = conn.metadata_v12(["t"])  # the first session's whole requests go to node 1
                assert [p.partition_index for p in md.topic("t").partitions] == [0, 1]
                batch = kafkawire.record_batch([(b"k", b"v")])
                r = conn.request(kafkawire.API_PRODUCE, 9, kafkawire.produce_request_v9(
                    [("t", 0, batch), ("t", 1, batch)]))
                got = sorted((p, err) for _, p, err, _ in kafkawire.decode_produce_response_v9(r))
                assert got == [(0, 6), (1, 0)], got
            harness.wait_until(lambda: k.log_lines(f"upstream node 2 (127.0.0.1:{bad.port})", "cannot connect",
                                                   "certificate verify failed"), 5,
                               what="the failed handshake logged with the node and OpenSSL's reason")
            m = k.metrics()
            assert m["kstretch_upstream_connect_failures"] >= 1, m
            assert m["kstretch_regional_fragments_failed"] >= 1, m
            assert len(fb.requests_of(kafkawire.API_PRODUCE)) == 1
        finally:
            bad.close()
