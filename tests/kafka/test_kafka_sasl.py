"""SASL through kstretch's mapped mode, against real Apache Kafka 4.4 brokers
whose client listeners are SASL_PLAINTEXT (tests/cluster/kafkacluster.py
--security sasl_plaintext).

kstretch holds no credentials: each client authenticates itself, with its own
user, on every connection it makes through kstretch (SaslHandshake and
SaslAuthenticate go to the broker as the client sent them, and the broker's
answers come back as they are). The tests drive the Java client, kcat on
librdkafka 2.12, confluent-kafka and kafka-python from PyPI, franz-go and
KafkaJS with PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 and OAUTHBEARER (Kafka's
unsecured JWS), check every record comes back exactly once and in order
(records.assert_same_records) and that only kstretch reached the brokers.

Two things about the set-up:
- kstretch asks the cluster for Metadata once at start, on a connection of its
  own, without authenticating; a SASL listener closes that. The brokers
  therefore get one more listener, PLAINTEXT, that advertises the SASL ones
  (--meta-listener), and kstretch's --bootstrap-servers is that listener.
- For the same reason the clients bootstrap from kstretch's mapped broker
  ports, not from its bootstrap listener: a bootstrap session goes to
  kstretch's bootstrap.servers, here the unauthenticated listener, where a
  SaslHandshake is refused (ILLEGAL_SASL_STATE). Mapped ports go to the
  brokers' SASL listeners.

One more cluster, of one SSL broker, checks the cluster's --security ssl
directly (kcat to the broker with the test CA): the upstream-TLS tests build
on it.
"""
import os
import re

import pytest

import certs
import harness
import kafkatest
import records

PARTITIONS = 3
COUNT = 1000
REAUTH_MS = 10_000

# Close reasons a session may end with when nothing went wrong on the wire.
CLEAN_CLOSES = {"client closed", "broker closed the connection", "closed after lingering"}
CLOSED_RE = re.compile(r"session \S+ -> .*? closed: ([a-z ]+) \(")


@pytest.fixture(scope="module")
def sasl_kafka(tmp_path_factory):
    """eu:1,us:1,ap:1 brokers, SASL_PLAINTEXT client listeners, plus unauthenticated
    listeners advertising them for kstretch's own start-up Metadata."""
    log_dir = str(tmp_path_factory.mktemp("sasl-kafka"))
    c = harness.KafkaCluster.start(log_dir, name="sasl-kafka", regions="eu:1,us:1,ap:1", security="sasl_plaintext",
                                   meta_listener=True)
    assert c.security == "sasl_plaintext" and c.meta_bootstrap, c.state
    yield c
    c.stop()


def through_kstretch(cluster, start_kstretch):
    """kstretch in front of `cluster`, and the bootstrap its clients are given:
    every one of kstretch's mapped broker ports."""
    k = start_kstretch(cluster.meta_bootstrap, max_node_id=3)
    return k, ",".join(k.broker_address(b["id"]) for b in cluster.brokers)


def credentials(cluster, mechanism):
    user, password = next(iter(cluster.sasl_users[mechanism].items()))
    return user, password


def jaas(mechanism, user, password):
    if mechanism == "PLAIN":
        module = "org.apache.kafka.common.security.plain.PlainLoginModule"
    elif mechanism.startswith("SCRAM-"):
        module = "org.apache.kafka.common.security.scram.ScramLoginModule"
    else:
        # Kafka's unsecured JWS: the client makes its own token, subject `user`.
        return ('org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required '
                f'unsecuredLoginStringClaim_sub="{user}";')
    return f'{module} required username="{user}" password="{password}";'


def java_config(path, mechanism, user, password):
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"security.protocol=SASL_PLAINTEXT\nsasl.mechanism={mechanism}\n"
                f"sasl.jaas.config={jaas(mechanism, user, password)}\n")
    return str(path)


def kcat_sasl(mechanism, user, password):
    return ["-X", "security.protocol=SASL_PLAINTEXT", "-X", f"sasl.mechanisms={mechanism}",
            "-X", f"sasl.username={user}", "-X", f"sasl.password={password}"]


def session_closes(k):
    return CLOSED_RE.findall(k.log())


CLIENT_ERROR_RE = re.compile(r"session \S+: client error: (.*)$", re.M)


def assert_clean_sessions(k):
    """kstretch closed no session on a protocol error: every close it logged is
    one where a side simply closed (a client may close with a reset: librdkafka
    does when it drops a connection with bytes unread), and its
    protocol_errors counter is 0."""
    log = k.log()
    closes = session_closes(k)
    assert closes, "kstretch logged no session close"
    clean = set(CLEAN_CLOSES)
    errors = set(CLIENT_ERROR_RE.findall(log))
    if errors <= {"Connection reset by peer"}:
        clean.add("client error")
    assert set(closes) <= clean, f"unexpected session closes: {sorted(set(closes) - clean)} (client errors: {errors})"
    assert "malformed" not in k.log()
    assert k.metrics()["kstretch_protocol_errors"] == 0


def check_only_kstretch(cluster, before, k):
    kafkatest.assert_only_kstretch_reached_the_brokers(
        kafkatest.relay_delta(before, kafkatest.relay_snapshot(cluster)), k)


# ---------------------------------------------------------------- the Java client

def java_roundtrip(cluster, k, bootstrap, topic, config, tag, tmp_path, produce_args=()):
    import javaclients
    sent = records.make_records(tag, COUNT)
    before = kafkatest.relay_snapshot(cluster)
    p = javaclients.java_client(["produce", bootstrap, topic, records.write_tsv(tmp_path / "in.tsv", sent),
                                 "--config", config, "--timeout", "90", *produce_args],
                                timeout=kafkatest.CLIENT_TIMEOUT_S)
    c = javaclients.java_client(["consume", bootstrap, topic, f"{tag}-group", str(len(sent)), "60",
                                 "--config", config, "--settle", "1"], timeout=kafkatest.CLIENT_TIMEOUT_S)
    records.assert_same_records(sent, records.parse_consumed(c.stdout.decode()), PARTITIONS)
    check_only_kstretch(cluster, before, k)
    return p, c


def auth_metrics(stderr):
    """The Java client's "metrics:" line, as {name: count}."""
    for line in stderr.decode("utf-8", "replace").splitlines():
        if line.startswith("metrics:"):
            return {name: int(v) for name, v in (kv.split("=") for kv in line.split()[1:])}
    raise AssertionError(f"no metrics: line in\n{stderr[-3000:].decode('utf-8', 'replace')}")


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-512"])
def test_java_client_authenticates_through_kstretch_and_every_record_comes_back_once_in_order(
        sasl_kafka, start_kstretch, fresh_topic, tmp_path, mechanism):
    topic = fresh_topic(sasl_kafka, PARTITIONS)
    k, bootstrap = through_kstretch(sasl_kafka, start_kstretch)
    config = java_config(tmp_path / "client.properties", mechanism, *credentials(sasl_kafka, mechanism))
    p, c = java_roundtrip(sasl_kafka, k, bootstrap, topic, config, f"java-{mechanism.lower()}", tmp_path)
    for r in (p, c):
        m = auth_metrics(r.stderr)
        assert m["successful-authentication-total"] >= 1 and m["failed-authentication-total"] == 0, m
    assert_clean_sessions(k)


def test_java_client_with_oauthbearer_unsecured_jws_through_kstretch(sasl_kafka, start_kstretch, fresh_topic,
                                                                    tmp_path):
    topic = fresh_topic(sasl_kafka, PARTITIONS)
    k, bootstrap = through_kstretch(sasl_kafka, start_kstretch)
    config = java_config(tmp_path / "client.properties", "OAUTHBEARER", "carol", None)
    p, _ = java_roundtrip(sasl_kafka, k, bootstrap, topic, config, "java-oauthbearer", tmp_path)
    m = auth_metrics(p.stderr)
    assert m["successful-authentication-total"] >= 1 and m["failed-authentication-total"] == 0, m
    assert_clean_sessions(k)


def test_java_client_with_a_wrong_password_sees_the_brokers_authentication_error(sasl_kafka, start_kstretch,
                                                                               fresh_topic, tmp_path):
    import javaclients
    topic = fresh_topic(sasl_kafka, PARTITIONS)
    k, bootstrap = through_kstretch(sasl_kafka, start_kstretch)
    user, _ = credentials(sasl_kafka, "PLAIN")
    config = java_config(tmp_path / "client.properties", "PLAIN", user, "not-the-password")
    before = kafkatest.relay_snapshot(sasl_kafka)
    r = javaclients.java_client(["produce", bootstrap, topic, records.write_tsv(tmp_path / "in.tsv", [("k", "v")]),
                                 "--config", config, "--timeout", "20"], timeout=60, check=False)
    err = r.stderr.decode("utf-8", "replace")
    assert r.returncode == 3, f"exit {r.returncode}\n{err[-3000:]}"
    # The broker's own words (PlainServerCallbackHandler), carried back in its SaslAuthenticate answer.
    assert "SaslAuthenticationException" in err and "Invalid username or password" in err, err[-3000:]
    check_only_kstretch(sasl_kafka, before, k)
    # Which side closes first after the failure (the broker, or the client
    # having read the answer) is a race; either way no protocol error.
    assert_clean_sessions(k)


# ---------------------------------------------------------------- kcat (librdkafka 2.12)

@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_kcat_authenticates_through_kstretch_and_every_record_comes_back_once_in_order(
        sasl_kafka, start_kstretch, fresh_topic, mechanism):
    topic = fresh_topic(sasl_kafka, PARTITIONS)
    k, bootstrap = through_kstretch(sasl_kafka, start_kstretch)
    auth = kcat_sasl(mechanism, *credentials(sasl_kafka, mechanism))
    env = harness.modern_rdkafka_env()
    sent = records.make_records(f"kcat-{mechanism.lower()}", COUNT)
    before = kafkatest.relay_snapshot(sasl_kafka)
    harness.run([harness.kcat_path(), "-b", bootstrap, *auth, "-P", "-t", topic, "-K", "\t", "-X", "acks=all",
                 "-X", "enable.idempotence=true"],
                input="".join(f"{key}\t{v}\n" for key, v in sent).encode(), env=env,
                timeout=kafkatest.CLIENT_TIMEOUT_S, what="kcat producer")
    r = harness.run([harness.kcat_path(), "-b", bootstrap, *auth, "-G", f"kcat-{mechanism.lower()}",
                     "-X", "auto.offset.reset=earliest", "-e", "-f", harness.KCAT_FORMAT, topic],
                    env=env, timeout=kafkatest.CLIENT_TIMEOUT_S, what="kcat consumer")
    records.assert_same_records(sent, records.parse_consumed(r.stdout.decode()), PARTITIONS)
    check_only_kstretch(sasl_kafka, before, k)
    assert_clean_sessions(k)


def test_kcat_with_a_wrong_scram_password_sees_the_brokers_authentication_error(sasl_kafka, start_kstretch,
                                                                              fresh_topic):
    topic = fresh_topic(sasl_kafka, PARTITIONS)
    k, bootstrap = through_kstretch(sasl_kafka, start_kstretch)
    user, _ = credentials(sasl_kafka, "SCRAM-SHA-256")
    before = kafkatest.relay_snapshot(sasl_kafka)
    r = harness.run([harness.kcat_path(), "-b", bootstrap, *kcat_sasl("SCRAM-SHA-256", user, "not-the-password"),
                     "-P", "-t", topic, "-K", "\t"],
                    input=b"k\tv\n", env=harness.modern_rdkafka_env(), timeout=60, check=False, what="kcat producer")
    err = r.stderr.decode("utf-8", "replace")
    assert r.returncode != 0, err
    # The broker's error message for a SCRAM failure, as librdkafka reports it.
    assert "Authentication failed during authentication due to invalid credentials with SASL mechanism " \
           "SCRAM-SHA-256" in err, err[-3000:]
    check_only_kstretch(sasl_kafka, before, k)
    assert_clean_sessions(k)


# ---------------------------------------------------------------- franz-go, KafkaJS, PyPI clients

def roundtrip_program(cluster, k, bootstrap, topic, argv_head, options, tmp_path, tag, env=None):
    sent = records.make_records(tag, COUNT)
    before = kafkatest.relay_snapshot(cluster)
    r = harness.run([*argv_head, bootstrap, topic, f"{tag}-group", records.write_tsv(tmp_path / "in.tsv", sent),
                     str(COUNT), str(kafkatest.CLIENT_TIMEOUT_S - 10), *options],
                    env=env, timeout=kafkatest.CLIENT_TIMEOUT_S, what=tag)
    records.assert_same_records(sent, records.parse_consumed(r.stdout.decode()), PARTITIONS)
    check_only_kstretch(cluster, before, k)
    assert_clean_sessions(k)
    return harness.client_version(r.stderr)


def sasl_option(cluster, mechanism):
    user, password = credentials(cluster, mechanism)
    return ["--sasl", f"{mechanism}:{user}:{password}"]


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-512"])
def test_franz_go_authenticates_through_kstretch_and_every_record_comes_back_once_in_order(
        sasl_kafka, start_kstretch, fresh_topic, tmp_path, mechanism):
    topic = fresh_topic(sasl_kafka, PARTITIONS)
    k, bootstrap = through_kstretch(sasl_kafka, start_kstretch)
    version = roundtrip_program(sasl_kafka, k, bootstrap, topic, [harness.franz_path()],
                                ["--idempotent", *sasl_option(sasl_kafka, mechanism)], tmp_path,
                                f"franz-{mechanism.lower()}")
    assert version.startswith("franz-go v1."), version


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256"])
def test_kafkajs_authenticates_through_kstretch_and_every_record_comes_back_once_in_order(
        sasl_kafka, start_kstretch, fresh_topic, tmp_path, mechanism):
    topic = fresh_topic(sasl_kafka, PARTITIONS)
    k, bootstrap = through_kstretch(sasl_kafka, start_kstretch)
    version = roundtrip_program(sasl_kafka, k, bootstrap, topic,
                                ["node", os.path.join(harness.CLIENTS, "kafkajs_roundtrip.js")],
                                sasl_option(sasl_kafka, mechanism), tmp_path, f"kafkajs-{mechanism.lower()}",
                                env=harness.node_env())
    assert version.startswith("kafkajs 2."), version


def test_pypi_confluent_kafka_with_scram_sha_512_through_kstretch(sasl_kafka, start_kstretch, fresh_topic,
                                                                 tmp_path):
    topic = fresh_topic(sasl_kafka, PARTITIONS)
    k, bootstrap = through_kstretch(sasl_kafka, start_kstretch)
    env = dict(os.environ)
    env.pop("LD_LIBRARY_PATH", None)  # the wheel's own librdkafka
    version = roundtrip_program(sasl_kafka, k, bootstrap, topic,
                                [harness.venv_python(), os.path.join(harness.CLIENTS, "python_roundtrip.py"),
                                 "confluent-kafka"], ["--idempotent", *sasl_option(sasl_kafka, "SCRAM-SHA-512")],
                                tmp_path, "confluent-scram512", env=env)
    assert version.startswith("confluent-kafka 2."), version


def test_pypi_kafka_python_with_scram_sha_256_through_kstretch(sasl_kafka, start_kstretch, fresh_topic, tmp_path):
    topic = fresh_topic(sasl_kafka, PARTITIONS)
    k, bootstrap = through_kstretch(sasl_kafka, start_kstretch)
    version = roundtrip_program(sasl_kafka, k, bootstrap, topic,
                                [harness.venv_python(), os.path.join(harness.CLIENTS, "python_roundtrip.py"),
                                 "kafka-python"], ["--idempotent", *sasl_option(sasl_kafka, "SCRAM-SHA-256")],
                                tmp_path, "kafka-python-scram256")
    assert version.startswith("kafka-python 3."), version


# ---------------------------------------------------------------- KIP-368 re-authentication

def test_java_producer_re_authenticates_through_kstretch_when_the_broker_session_expires(
        tmp_path_factory, start_kstretch, fresh_topic, tmp_path):
    """Brokers with connections.max.reauth.ms = 10 s: a producer that runs for
    about 15 s re-authenticates on its connections through kstretch
    (SaslHandshake and SaslAuthenticate mid-connection, between its Produce
    requests) and loses nothing."""
    log_dir = str(tmp_path_factory.mktemp("sasl-reauth"))
    cluster = harness.KafkaCluster.start(log_dir, name="sasl-reauth", regions="eu:1", security="sasl_plaintext",
                                         reauth_ms=REAUTH_MS, meta_listener=True)
    try:
        assert cluster.state["reauth_ms"] == REAUTH_MS
        topic = fresh_topic(cluster, PARTITIONS, rf=1)
        k = start_kstretch(cluster.meta_bootstrap, max_node_id=1)
        bootstrap = k.broker_address(1)
        config = java_config(tmp_path / "client.properties", "SCRAM-SHA-256",
                             *credentials(cluster, "SCRAM-SHA-256"))
        # 1000 records 15 ms apart: 15 s, half as long again as a session lives.
        p, _ = java_roundtrip(cluster, k, bootstrap, topic, config, "java-reauth", tmp_path,
                              produce_args=("--interval-ms", "15"))
        m = auth_metrics(p.stderr)
        assert m["successful-reauthentication-total"] >= 1, m
        assert m["failed-reauthentication-total"] == 0 and m["failed-authentication-total"] == 0, m
        assert_clean_sessions(k)
    finally:
        cluster.stop()


# ---------------------------------------------------------------- the cluster's SSL listeners

def test_cluster_ssl_listeners_serve_kcat_with_the_test_ca_and_refuse_another_ca(tmp_path_factory):
    """Not through kstretch (it has no upstream TLS yet): kafkacluster.py
    --security ssl works, for the upstream-TLS tests to build on."""
    d = certs.make(str(tmp_path_factory.mktemp("certs")))
    log_dir = str(tmp_path_factory.mktemp("ssl-kafka"))
    cluster = harness.KafkaCluster.start(log_dir, name="ssl-kafka", regions="eu:1", security="ssl", certs=d.dir,
                                         topics=["tls:3:1"])
    try:
        assert cluster.security == "ssl"
        env = harness.modern_rdkafka_env()
        tls = ["-X", "security.protocol=SSL", "-X", f"ssl.ca.location={d.ca}"]
        sent = records.make_records("kcat-ssl", COUNT)
        harness.run([harness.kcat_path(), "-b", cluster.bootstrap, *tls, "-P", "-t", "tls", "-K", "\t",
                     "-X", "acks=all"], input="".join(f"{key}\t{v}\n" for key, v in sent).encode(), env=env,
                    timeout=kafkatest.CLIENT_TIMEOUT_S, what="kcat producer over SSL")
        r = harness.run([harness.kcat_path(), "-b", cluster.bootstrap, *tls, "-G", "kcat-ssl",
                         "-X", "auto.offset.reset=earliest", "-e", "-f", harness.KCAT_FORMAT, "tls"],
                        env=env, timeout=kafkatest.CLIENT_TIMEOUT_S, what="kcat consumer over SSL")
        records.assert_same_records(sent, records.parse_consumed(r.stdout.decode()), 3)
        # The listener is TLS with the test CA's certificate: a client trusting another CA is refused.
        r = harness.run([harness.kcat_path(), "-b", cluster.bootstrap, "-X", "security.protocol=SSL",
                         "-X", f"ssl.ca.location={d.other_ca}", "-L", "-m", "5"],
                        env=env, timeout=30, check=False, what="kcat -L trusting another CA")
        err = r.stderr.decode("utf-8", "replace")
        assert r.returncode != 0 and "certificate verify failed" in err, err[-2000:]
    finally:
        cluster.stop()
