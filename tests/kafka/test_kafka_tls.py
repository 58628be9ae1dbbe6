"""TLS through kstretch to real Apache Kafka 4.4 brokers with SSL client listeners.

One module cluster (eu:1,us:1,ap:1, `--security ssl`, certificates made by
certs.py for 127.0.0.1). kstretch connects to the brokers with
upstream.tls=true, verifying them against the test CA and their address.
Clients reach kstretch either in
plaintext (TLS only between kstretch and the brokers: the cross-region leg) or
with TLS of their own (TLS on both sides, terminated and originated by
kstretch). Every record comes back once and in order, and only kstretch
reached the brokers. (kstretch offers each broker the TLS session it kept, but
Kafka's listener resumes none: see the first test.)
"""
import os
import time

import pytest

import certs
import harness
import kafkatest
import records

PARTITIONS = 6
COUNT = 1000


@pytest.fixture(scope="module")
def tls_certs(tmp_path_factory):
    return certs.make(str(tmp_path_factory.mktemp("tls-certs").resolve()))


@pytest.fixture(scope="module")
def ssl_kafka(tmp_path_factory, tls_certs):
    log_dir = str(tmp_path_factory.mktemp("ssl-kafka"))
    c = harness.KafkaCluster.start(log_dir, name="ssl-kafka", regions="eu:1,us:1,ap:1", security="ssl",
                                   certs=tls_certs.dir)
    yield c
    c.stop()


def upstream_tls(c):
    return ("--upstream-tls", "true", "--upstream-tls-ca", c.ca)


def client_tls(c):
    return ("--tls-cert", c.server_cert, "--tls-key", c.server_key)


def java_ssl_config(path, c):
    with open(path, "w") as f:
        f.write(f"security.protocol=SSL\nssl.truststore.location={c.truststore_p12}\n"
                f"ssl.truststore.password={certs.PASSWORD}\nssl.truststore.type=PKCS12\n")
    return str(path)


def kcat_roundtrip(cluster, k, topic, tag, extra=()):
    env = harness.modern_rdkafka_env()
    sent = records.make_records(tag, COUNT)
    before = kafkatest.relay_snapshot(cluster)
    harness.run([harness.kcat_path(), "-b", k.bootstrap, *extra, "-P", "-t", topic, "-K", "\t", "-X", "acks=all",
                 "-X", "enable.idempotence=true"], input="".join(f"{key}\t{v}\n" for key, v in sent).encode(),
                env=env, timeout=kafkatest.CLIENT_TIMEOUT_S, what="kcat producer")
    r = harness.run([harness.kcat_path(), "-b", k.bootstrap, *extra, "-G", f"{tag}-group",
                     "-X", "auto.offset.reset=earliest", "-e", "-f", harness.KCAT_FORMAT, topic],
                    env=env, timeout=kafkatest.CLIENT_TIMEOUT_S, what="kcat consumer")
    records.assert_same_records(sent, records.parse_consumed(r.stdout.decode()), PARTITIONS)
    kafkatest.assert_only_kstretch_reached_the_brokers(
        kafkatest.relay_delta(before, kafkatest.relay_snapshot(cluster)), k)


def java_roundtrip(cluster, k, topic, tag, tmp_path, config=None):
    import javaclients
    sent = records.make_records(tag, COUNT)
    before = kafkatest.relay_snapshot(cluster)
    extra = ["--config", config] if config else []
    javaclients.java_client(["produce", k.bootstrap, topic, records.write_tsv(tmp_path / f"{tag}.tsv", sent),
                             *extra, "--timeout", "90"], timeout=kafkatest.CLIENT_TIMEOUT_S)
    c = javaclients.java_client(["consume", k.bootstrap, topic, f"{tag}-group", str(len(sent)), "60", *extra,
                                 "--settle", "1"], timeout=kafkatest.CLIENT_TIMEOUT_S)
    records.assert_same_records(sent, records.parse_consumed(c.stdout.decode()), PARTITIONS)
    kafkatest.assert_only_kstretch_reached_the_brokers(
        kafkatest.relay_delta(before, kafkatest.relay_snapshot(cluster)), k)


def program_roundtrip(cluster, k, topic, argv_head, options, tmp_path, tag, env=None):
    sent = records.make_records(tag, COUNT)
    before = kafkatest.relay_snapshot(cluster)
    r = harness.run([*argv_head, k.bootstrap, topic, f"{tag}-group", records.write_tsv(tmp_path / f"{tag}.tsv", sent),
                     str(COUNT), str(kafkatest.CLIENT_TIMEOUT_S - 10), *options],
                    env=env, timeout=kafkatest.CLIENT_TIMEOUT_S, what=tag)
    records.assert_same_records(sent, records.parse_consumed(r.stdout.decode()), PARTITIONS)
    kafkatest.assert_only_kstretch_reached_the_brokers(
        kafkatest.relay_delta(before, kafkatest.relay_snapshot(cluster)), k)
    return harness.client_version(r.stderr)


def readiness_checks(m):
    """Metadata fetches of kstretch's readiness check (/readyz): one broker connection each."""
    return sum(v for name, v in m.items() if name.startswith("kstretch_topology_refreshes_total"))


def test_plaintext_clients_reach_tls_brokers_through_kstretch(
        ssl_kafka, start_kstretch, fresh_topic, tls_certs, tmp_path):
    k = start_kstretch(ssl_kafka, max_node_id=3, extra_args=upstream_tls(tls_certs))
    assert k.log_lines("TLS: towards brokers")
    kcat_roundtrip(ssl_kafka, k, fresh_topic(ssl_kafka, PARTITIONS), "kcat-plain-to-tls")
    java_roundtrip(ssl_kafka, k, fresh_topic(ssl_kafka, PARTITIONS), "java-plain-to-tls", tmp_path)
    m = k.metrics()
    # Every session's upstream connection was a TLS handshake, counted. kstretch
    # offers the broker the session it kept from its last connection there, but
    # Kafka 4.4's SSL listener (JDK 17) resumes none (`openssl s_client
    # -sess_in` gets "New" from it every time too): resumption itself is tested
    # in tests/unit/test_tls.c against OpenSSL's server.
    tls_connections = m["kstretch_upstream_tls_full_handshakes"] + m["kstretch_upstream_tls_resumed"]
    assert tls_connections >= 4, m
    # + kstretch's own bootstrap, + the readiness check's Metadata fetches (one connection each: admin.c)
    assert tls_connections <= m["kstretch_connections_accepted"] + 1 + readiness_checks(m), m
    assert m["kstretch_upstream_connect_failures"] == 0
    assert m["kstretch_bytes_spliced"] == 0


def test_tls_on_both_sides_java_franz_go_kafkajs_and_kcat(ssl_kafka, start_kstretch, fresh_topic, tls_certs,
                                                          tmp_path):
    def topic():
        return fresh_topic(ssl_kafka, PARTITIONS)
    k = start_kstretch(ssl_kafka, max_node_id=3, extra_args=(*upstream_tls(tls_certs), *client_tls(tls_certs)))
    java_roundtrip(ssl_kafka, k, topic(), "java-tls-both", tmp_path,
                   config=java_ssl_config(tmp_path / "ssl.properties", tls_certs))
    version = program_roundtrip(ssl_kafka, k, topic(), [harness.franz_path()],
                                ["--idempotent", "--tls-ca", tls_certs.ca], tmp_path, "franz-tls-both")
    assert version.startswith("franz-go v1."), version
    version = program_roundtrip(ssl_kafka, k, topic(), ["node", os.path.join(harness.CLIENTS, "kafkajs_roundtrip.js")],
                                ["--tls-ca", tls_certs.ca], tmp_path, "kafkajs-tls-both", env=harness.node_env())
    assert version.startswith("kafkajs 2."), version
    kcat_roundtrip(ssl_kafka, k, topic(), "kcat-tls-both",
                   extra=("-X", "security.protocol=ssl", "-X", f"ssl.ca.location={tls_certs.ca}"))
    m = k.metrics()
    assert m["kstretch_tls_handshakes"] >= 8
    assert m["kstretch_tls_handshake_failures"] == 0
    assert m["kstretch_protocol_errors"] == 0


def test_a_client_without_tls_on_the_tls_port_is_named_and_the_brokers_see_nothing(ssl_kafka, start_kstretch,
                                                                                 tls_certs):
    k = start_kstretch(ssl_kafka, max_node_id=3, extra_args=(*upstream_tls(tls_certs), *client_tls(tls_certs)))
    checks = readiness_checks(k.metrics())
    before = kafkatest.relay_snapshot(ssl_kafka)
    r = harness.run([harness.kcat_path(), "-b", k.bootstrap, "-L", "-m", "5"], env=harness.modern_rdkafka_env(),
                    timeout=30, check=False, what="kcat -L in plaintext")
    assert r.returncode != 0
    harness.wait_until(lambda: k.log_lines("a plaintext Kafka client on a TLS listener?"), 5,
                       what="the plaintext-on-TLS log line")
    delta = kafkatest.relay_delta(before, kafkatest.relay_snapshot(ssl_kafka))
    time.sleep(1.0)  # a readiness check connected in the window has finished, and is counted, by now
    checks = readiness_checks(k.metrics()) - checks
    # The only broker connections: the readiness check's own (one each, every few seconds: admin.c).
    assert sum(d["connections"] for d in delta.values()) <= checks, "a refused client made kstretch reach a broker"


@pytest.fixture(scope="module")
def sasl_ssl_kafka(tmp_path_factory, tls_certs):
    log_dir = str(tmp_path_factory.mktemp("sasl-ssl-kafka"))
    c = harness.KafkaCluster.start(log_dir, name="sasl-ssl-kafka", regions="eu:1", security="sasl_ssl",
                                   certs=tls_certs.dir)
    yield c
    c.stop()


def test_sasl_clients_through_kstretch_to_sasl_ssl_brokers(sasl_ssl_kafka, start_kstretch, fresh_topic, tls_certs):
    """Brokers with SASL_SSL listeners only: kstretch authenticates its own start-up
    connection (upstream.sasl) over TLS (upstream.tls); a client speaking SASL to
    kstretch in plaintext authenticates as its own user over kstretch's TLS."""
    topic = fresh_topic(sasl_ssl_kafka, 3, rf=1)
    kuser, kpassword = next(iter(sasl_ssl_kafka.sasl_users["SCRAM-SHA-256"].items()))
    k = start_kstretch(sasl_ssl_kafka, max_node_id=1, extra_args=(
        *upstream_tls(tls_certs), "--upstream-sasl-mechanism", "SCRAM-SHA-256", "--upstream-sasl-username", kuser,
        "--upstream-sasl-password", kpassword))
    user, password = next(iter(sasl_ssl_kafka.sasl_users["SCRAM-SHA-512"].items()))
    auth = ("-X", "security.protocol=SASL_PLAINTEXT", "-X", "sasl.mechanisms=SCRAM-SHA-512",
            "-X", f"sasl.username={user}", "-X", f"sasl.password={password}")
    env = harness.modern_rdkafka_env()
    sent = records.make_records("sasl-ssl", COUNT)
    before = kafkatest.relay_snapshot(sasl_ssl_kafka)
    harness.run([harness.kcat_path(), "-b", k.bootstrap, *auth, "-P", "-t", topic, "-K", "\t", "-X", "acks=all"],
                input="".join(f"{key}\t{v}\n" for key, v in sent).encode(), env=env,
                timeout=kafkatest.CLIENT_TIMEOUT_S, what="kcat producer")
    r = harness.run([harness.kcat_path(), "-b", k.bootstrap, *auth, "-G", "sasl-ssl-group",
                     "-X", "auto.offset.reset=earliest", "-e", "-f", harness.KCAT_FORMAT, topic],
                    env=env, timeout=kafkatest.CLIENT_TIMEOUT_S, what="kcat consumer")
    records.assert_same_records(sent, records.parse_consumed(r.stdout.decode()), 3)
    kafkatest.assert_only_kstretch_reached_the_brokers(
        kafkatest.relay_delta(before, kafkatest.relay_snapshot(sasl_ssl_kafka)), k)
    m = k.metrics()
    assert m["kstretch_upstream_tls_full_handshakes"] + m["kstretch_upstream_tls_resumed"] >= 3
    assert m["kstretch_protocol_errors"] == 0


def test_a_bootstrap_server_whose_certificate_fails_is_skipped_for_the_next(ssl_kafka, start_kstretch, tls_certs,
                                                                           fresh_topic):
    """bootstrap.servers lists a server with a certificate for another host first:
    kstretch's start-up and every client session that tries it first fail its
    handshake (logged), go on to the real broker, and the client sees nothing."""
    import tlsserver
    bad = tlsserver.TlsServer(tls_certs.cert("wronghost"), tls_certs.key("wronghost"), lifetime=120)
    try:
        k = start_kstretch(f"127.0.0.1:{bad.port},{ssl_kafka.bootstrap}", max_node_id=3, workers=1,
                           extra_args=upstream_tls(tls_certs))
        assert k.log_lines(f"bootstrap: 127.0.0.1:{bad.port}: TLS handshake failed")
        env = harness.modern_rdkafka_env()
        for _ in range(3):  # sessions take the bootstrap servers in turn: some start with the bad one
            harness.run([harness.kcat_path(), "-b", k.bootstrap, "-L", "-m", "10"], env=env, timeout=30,
                        what="kcat -L via the bootstrap listener")
        assert k.log_lines(f"cannot connect to bootstrap 127.0.0.1:{bad.port}", "TLS handshake failed")
        kcat_roundtrip(ssl_kafka, k, fresh_topic(ssl_kafka, PARTITIONS), "kcat-after-bad-bootstrap")
        assert k.metrics()["kstretch_protocol_errors"] == 0
    finally:
        bad.close()


# ---------------------------------------------------------------- regional mode

def regional_pair(cluster, start_kstretch, *extra):
    """Two regional kstretch nodes for eu (ids 1 and 2, listing each other) in front of the TLS brokers."""
    p1, p2 = harness.free_ports(2, "127.0.0.1")
    nodes = f"1@127.0.0.1:{p1},2@127.0.0.1:{p2}"
    return [start_kstretch(cluster, extra_args=("--mode", "regional", "--region", "eu", "--regional-nodes", nodes,
                                                "--node-id", str(node_id), "--regional-upstream-connections", "2",
                                                *extra), listen_port=port)
            for node_id, port in ((1, p1), (2, p2))]


def kcat_regional_roundtrip(cluster, ks, topic, tag, extra=()):
    """kcat produces through node 1 and reads back through node 2 (partitions assigned by hand: regional mode
    has no group coordinator yet), every record once and in order; only the nodes reached the brokers."""
    env = harness.modern_rdkafka_env()
    sent = records.make_records(tag, COUNT)
    before = kafkatest.relay_snapshot(cluster)
    harness.run([harness.kcat_path(), "-b", ks[0].bootstrap, *extra, "-P", "-t", topic, "-K", "\t", "-X", "acks=all",
                 "-X", "enable.idempotence=true"], input="".join(f"{key}\t{v}\n" for key, v in sent).encode(),
                env=env, timeout=kafkatest.CLIENT_TIMEOUT_S, what="kcat producer through regional node 1")
    # -c, not -e: a partition read from its eu follower ends, for a client, at the
    # follower's high watermark, which may trail the leader's for a moment.
    r = harness.run([harness.kcat_path(), "-b", ks[1].bootstrap, *extra, "-C", "-t", topic, "-o", "beginning",
                     "-c", str(len(sent)), "-f", harness.KCAT_FORMAT],
                    env=env, timeout=kafkatest.CLIENT_TIMEOUT_S, what="kcat consumer through regional node 2")
    records.assert_same_records(sent, records.parse_consumed(r.stdout.decode()), PARTITIONS)
    delta = kafkatest.relay_delta(before, kafkatest.relay_snapshot(cluster))
    pids = {k.pid for k in ks} | {-1}
    others = {b: d["peer_pids"] for b, d in delta.items() if set(d["peer_pids"]) - pids}
    assert not others, f"connections to brokers from processes other than kstretch: {others}"


def assert_regional_clean(ks):
    for k in ks:
        m = k.metrics()
        assert m["kstretch_protocol_errors"] == 0, m
        assert m["kstretch_regional_fragments_failed"] == 0, m
        assert m["kstretch_upstream_connect_failures"] == 0, m
        # The shared connections were TLS handshakes, counted (Kafka's listener resumes none: see above), and
        # each logged its version and cipher under the broker it reached.
        assert m["kstretch_upstream_tls_full_handshakes"] + m["kstretch_upstream_tls_resumed"] >= 2, m
        assert k.log_lines("upstream node ", ": TLS TLSv1."), "no shared connection logged its TLS handshake"


def test_regional_nodes_reach_tls_brokers_over_shared_tls_connections(ssl_kafka, start_kstretch, fresh_topic,
                                                                      tls_certs):
    ks = regional_pair(ssl_kafka, start_kstretch, *upstream_tls(tls_certs))
    kcat_regional_roundtrip(ssl_kafka, ks, fresh_topic(ssl_kafka, PARTITIONS), "kcat-regional-plain-to-tls")
    assert_regional_clean(ks)
    assert ks[0].log_lines("TLS: towards brokers")


def test_regional_nodes_with_tls_on_both_sides(ssl_kafka, start_kstretch, fresh_topic, tls_certs):
    ks = regional_pair(ssl_kafka, start_kstretch, *upstream_tls(tls_certs), *client_tls(tls_certs))
    kcat_regional_roundtrip(ssl_kafka, ks, fresh_topic(ssl_kafka, PARTITIONS), "kcat-regional-tls-both",
                            extra=("-X", "security.protocol=ssl", "-X", f"ssl.ca.location={tls_certs.ca}"))
    assert_regional_clean(ks)
    for k in ks:
        m = k.metrics()
        assert m["kstretch_tls_handshakes"] >= 1, m
        assert m["kstretch_tls_handshake_failures"] == 0, m
