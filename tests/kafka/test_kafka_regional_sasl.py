"""SASL in regional mode (issue 16) in front of real Apache Kafka 4.4 brokers
whose client listeners are SASL_PLAINTEXT only (PLAIN, SCRAM-SHA-256/512:
tests/cluster/kafkacluster.py --security sasl_plaintext). No request of
kstretch's reaches them unauthenticated: a listener that requires SASL
closes a connection whose first request is anything else, so every record
through kstretch proves its shared connections authenticated.

Two regional nodes for eu authenticate upstream as the brokers' SCRAM-SHA-512
user (upstream.sasl.*), and their clients authenticate to them against a
sasl.users file of users the brokers do not know (made with `kstretch
--sasl-user`):

- kcat (SCRAM-SHA-512) produces through node 1 and the Java client
  (SCRAM-SHA-256) reads it back through node 2; confluent-kafka from PyPI
  (SCRAM-SHA-256) produces to another topic through node 2 and kcat (PLAIN)
  reads it back through node 1 (both readers by assignment): every record
  once, in order; the brokers saw connections from the two nodes only.
- A wrong password: kcat reports the node's SASL_AUTHENTICATION_FAILED
  message and the node logs it (error 58); a client that skips SASL is
  named and closed.
- kstretch's own password changed on the brokers under a running node: its
  new shared connections fail SASL, logged once however many times clients
  retry, clients see retriable failures and the node stays up; with the
  password back, the same node serves them again.
"""
import os
import subprocess
import time

import pytest

import harness
import kafkatest
import records

LOCALHOST = "127.0.0.1"
REGION = "eu"
PARTITIONS = 6
COUNT = 400
CLIENT_USERS = {"app": "app-secret", "java": "java-secret"}


@pytest.fixture(scope="module")
def sasl_kafka(tmp_path_factory):
    log_dir = str(tmp_path_factory.mktemp("rsasl-kafka"))
    c = harness.KafkaCluster.start(log_dir, name="rsasl-kafka", regions="eu:1,us:1,ap:1", security="sasl_plaintext")
    assert c.security == "sasl_plaintext", c.state
    yield c
    c.stop()


@pytest.fixture(scope="module")
def users_file(tmp_path_factory):
    lines = []
    for user, password in CLIENT_USERS.items():
        r = subprocess.run([harness.KSTRETCH, "--sasl-user", user], input=(password + "\n").encode(),
                           capture_output=True, timeout=30, check=True)
        lines.append(r.stdout.decode())
    path = tmp_path_factory.mktemp("rsasl-users") / "sasl.users"
    path.write_text("".join(lines))
    return str(path)


def upstream_credentials(cluster):
    return next(iter(cluster.sasl_users["SCRAM-SHA-512"].items()))


def regional_nodes(cluster, start_kstretch, users_file, count=2):
    ports = harness.free_ports(count, LOCALHOST)
    nodes = ",".join(f"{i + 1}@{LOCALHOST}:{p}" for i, p in enumerate(ports))
    user, password = upstream_credentials(cluster)
    ks = []
    for i, port in enumerate(ports):
        args = ("--mode", "regional", "--region", REGION, "--regional-nodes", nodes, "--node-id", str(i + 1),
                "--sasl-users", users_file, "--upstream-sasl-mechanism", "SCRAM-SHA-512",
                "--upstream-sasl-username", user, "--upstream-sasl-password", password,
                "--connect-timeout-ms", "5000")
        ks.append(start_kstretch(cluster, workers=2, extra_args=args, listen_port=port))
    return ks


def kcat_auth(mechanism, user, password):
    return ["-X", "security.protocol=SASL_PLAINTEXT", "-X", f"sasl.mechanisms={mechanism}",
            "-X", f"sasl.username={user}", "-X", f"sasl.password={password}"]


def test_clients_authenticate_to_a_regional_pair_and_every_record_comes_back(
        sasl_kafka, start_kstretch, users_file, fresh_topic, tmp_path):
    import javaclients
    topic, other = fresh_topic(sasl_kafka, PARTITIONS), fresh_topic(sasl_kafka, PARTITIONS)
    k1, k2 = regional_nodes(sasl_kafka, start_kstretch, users_file)
    before = kafkatest.relay_snapshot(sasl_kafka)
    env = harness.modern_rdkafka_env()
    sent = records.make_records("rsasl-kcat", COUNT)
    harness.run([harness.kcat_path(), "-b", k1.bootstrap, *kcat_auth("SCRAM-SHA-512", "app", "app-secret"),
                 "-P", "-t", topic, "-K", "\t", "-X", "acks=all", "-X", "enable.idempotence=true"],
                input="".join(f"{key}\t{v}\n" for key, v in sent).encode(), env=env,
                timeout=kafkatest.CLIENT_TIMEOUT_S, what="kcat producer (SCRAM-SHA-512)")
    config = tmp_path / "java.properties"
    config.write_text("security.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-256\n"
                      "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
                      'username="java" password="java-secret";\n')
    r = javaclients.java_client(["consume", k2.bootstrap, topic, "-", str(COUNT), "90", "--settle", "1",
                                 "--config", str(config)], timeout=kafkatest.CLIENT_TIMEOUT_S)
    assert b"assigned by hand" in r.stderr, r.stderr[-2000:]
    records.assert_same_records(sent, records.parse_consumed(r.stdout.decode()), PARTITIONS)

    more = records.make_records("rsasl-confluent", COUNT)
    pyenv = dict(os.environ)
    pyenv.pop("LD_LIBRARY_PATH", None)  # the wheel's own librdkafka
    r = harness.run([harness.venv_python(), os.path.join(harness.CLIENTS, "python_roundtrip.py"), "confluent-kafka",
                     k2.bootstrap, other, "-", records.write_tsv(tmp_path / "more.tsv", more), "0",
                     str(kafkatest.CLIENT_TIMEOUT_S - 10), "--idempotent", "--sasl",
                     "SCRAM-SHA-256:app:app-secret"],
                    env=pyenv, timeout=kafkatest.CLIENT_TIMEOUT_S, what="confluent-kafka producer (SCRAM-SHA-256)")
    assert harness.client_version(r.stderr).startswith("confluent-kafka 2.")
    r = harness.run([harness.kcat_path(), "-b", k1.bootstrap, *kcat_auth("PLAIN", "app", "app-secret"),
                     "-C", "-t", other, "-o", "beginning", "-c", str(COUNT), "-f", harness.KCAT_FORMAT],
                    env=env, timeout=kafkatest.CLIENT_TIMEOUT_S, what="kcat consumer (PLAIN)")
    records.assert_same_records(more, records.parse_consumed(r.stdout.decode()), PARTITIONS)
    delta = kafkatest.relay_delta(before, kafkatest.relay_snapshot(sasl_kafka))
    pids = {k1.pid, k2.pid, -1}
    assert not {b: d["peer_pids"] for b, d in delta.items() if set(d["peer_pids"]) - pids}, delta
    assert k1.log_lines("authenticated as app (SCRAM-SHA-512)"), k1.log()
    assert k1.log_lines("authenticated as app (PLAIN)"), k1.log()
    assert k2.log_lines("authenticated as app (SCRAM-SHA-256)"), k2.log()
    assert k2.log_lines("authenticated as java (SCRAM-SHA-256)"), k2.log()
    for k in (k1, k2):
        m = k.metrics()
        assert m["kstretch_upstream_sasl_failures"] == 0 and m["kstretch_regional_sasl_refused"] == 0, m
        assert m["kstretch_protocol_errors"] == 0 and m["kstretch_regional_fragments_failed"] == 0, m
        assert upstream_credentials(sasl_kafka)[1] not in k.log()


def test_a_wrong_password_is_refused_with_58_and_a_client_without_sasl_is_closed(
        sasl_kafka, start_kstretch, users_file):
    (k,) = regional_nodes(sasl_kafka, start_kstretch, users_file, count=1)
    env = harness.modern_rdkafka_env()
    r = harness.run([harness.kcat_path(), "-b", k.bootstrap, *kcat_auth("SCRAM-SHA-512", "app", "not-it"), "-L",
                     "-m", "10"], env=env, timeout=60, check=False, what="kcat with a wrong password")
    err = r.stderr.decode("utf-8", "replace")
    assert r.returncode != 0
    assert "Authentication failed during authentication due to invalid credentials with SASL mechanism " \
           "SCRAM-SHA-512" in err, err[-3000:]
    assert k.log_lines("answered SASL_AUTHENTICATION_FAILED (58), closing"), k.log()
    r = harness.run([harness.kcat_path(), "-b", k.bootstrap, "-L", "-m", "5"], env=env, timeout=60, check=False,
                    what="kcat without SASL")
    assert r.returncode != 0
    assert k.log_lines("Metadata v", "before authenticating", "; closing"), k.log()
    assert k.metrics()["kstretch_regional_sasl_refused"] >= 2


def test_kstretchs_upstream_password_changed_is_logged_once_and_clients_retry_until_it_is_back(
        sasl_kafka, start_kstretch, users_file):
    (k,) = regional_nodes(sasl_kafka, start_kstretch, users_file, count=1)  # no shared connection yet
    user, password = upstream_credentials(sasl_kafka)
    env = harness.modern_rdkafka_env()
    listing = [harness.kcat_path(), "-b", k.bootstrap, *kcat_auth("SCRAM-SHA-256", "app", "app-secret"), "-L",
               "-m", "4"]
    sasl_kafka.must(f"scram {user} SCRAM-SHA-512 changed-{password}")
    try:
        for _ in range(3):
            r = harness.run(listing, env=env, timeout=60, check=False, what="kcat -L, kstretch refused upstream")
            assert r.returncode != 0, r.stdout[-2000:]
        assert k.alive()
        lines = k.log_lines(f"SASL authentication as {user} failed")
        assert len(lines) == 1, "\n".join(lines)
        assert "SASL_AUTHENTICATION_FAILED" in lines[0] and "node " in lines[0], lines[0]
        assert k.metrics()["kstretch_upstream_sasl_failures"] >= 3
    finally:
        sasl_kafka.must(f"scram {user} SCRAM-SHA-512 {password}")
    deadline = time.monotonic() + 30
    while True:
        r = harness.run(listing, env=env, timeout=60, check=False, what="kcat -L, password back")
        if r.returncode == 0 and b"broker 1 at" in r.stdout:
            break
        assert time.monotonic() < deadline, r.stderr[-2000:]
        time.sleep(0.5)
