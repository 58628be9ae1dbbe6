"""kstretch's own bootstrap connection authenticates (upstream.sasl.*) to real
Apache Kafka 4.4 brokers whose client listeners are SASL_PLAINTEXT
(tests/cluster/kafkacluster.py --security sasl_plaintext, no --meta-listener:
kstretch's bootstrap.servers is a SASL listener itself).

- SCRAM-SHA-256 (password from upstream.sasl.password.file) and PLAIN
  (password as a flag): kstretch logs "bootstrap: 3 brokers from ..." and
  "ready:", and its log never holds the password.
- A wrong password: kstretch logs the broker's SASL_AUTHENTICATION_FAILED and
  its ErrorMessage, keeps retrying with backoff (two such lines), and stops
  cleanly on SIGTERM.

Clients' own authentication through kstretch is tests/kafka/test_kafka_sasl.py.
"""
import os
import signal
import time

import pytest

import harness


@pytest.fixture(scope="module")
def sasl_kafka(tmp_path_factory):
    """eu:1,us:1,ap:1 brokers (ids 1-3) whose client listeners are SASL_PLAINTEXT only."""
    log_dir = str(tmp_path_factory.mktemp("upsasl-kafka"))
    c = harness.KafkaCluster.start(log_dir, name="upsasl-kafka", regions="eu:1,us:1,ap:1",
                                   security="sasl_plaintext")
    assert c.security == "sasl_plaintext", c.state
    yield c
    c.stop()


def credentials(cluster, mechanism):
    return next(iter(cluster.sasl_users[mechanism].items()))


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "PLAIN"])
def test_kstretch_bootstraps_from_a_sasl_listener(sasl_kafka, start_kstretch, mechanism, tmp_path):
    user, password = credentials(sasl_kafka, mechanism)
    args = ["--upstream-sasl-mechanism", mechanism, "--upstream-sasl-username", user]
    if mechanism.startswith("SCRAM-"):
        path = tmp_path / "password"
        path.write_text(password + "\n")
        args += ["--upstream-sasl-password-file", str(path)]
    else:
        args += ["--upstream-sasl-password", password]
    k = start_kstretch(sasl_kafka.bootstrap, max_node_id=3, extra_args=tuple(args))
    assert k.log_lines("bootstrap: 3 brokers from"), k.log()
    assert k.log_lines(f"authenticated as {user} with {mechanism}"), k.log()
    assert password not in k.log()


def test_a_wrong_password_is_logged_and_retried(sasl_kafka, process_log_dir):
    user, password = credentials(sasl_kafka, "SCRAM-SHA-256")
    listen, admin = harness.free_ports(2, "127.0.0.1")
    block = harness.free_ports(4, "127.0.0.1", consecutive=True, avoid=(listen, admin))
    argv = [harness.KSTRETCH, "--bootstrap-servers", sasl_kafka.bootstrap, "--listen", f"127.0.0.1:{listen}",
            "--broker-port-base", str(block[0]), "--admin-listen", f"127.0.0.1:{admin}", "--workers", "1",
            "--upstream-sasl-mechanism", "SCRAM-SHA-256", "--upstream-sasl-username", user,
            "--upstream-sasl-password", "not-" + password]
    proc = harness.ManagedProcess("kstretch-wrong-password", argv, process_log_dir)

    def failures():
        with open(proc.log_path, "rb") as f:
            return [line for line in f.read().decode("utf-8", "replace").splitlines()
                    if "bootstrap:" in line and "SASL_AUTHENTICATION_FAILED (58)" in line]

    try:
        deadline = time.monotonic() + 60
        while len(failures()) < 2 and time.monotonic() < deadline and proc.proc.poll() is None:
            time.sleep(0.1)
        lines = failures()
        assert proc.proc.poll() is None, f"kstretch exited:\n{proc.stderr_tail()}"
        assert len(lines) >= 2, f"no retried authentication failure:\n{proc.stderr_tail()}"
        assert "retrying in" in lines[0] and "SaslAuthenticate" in lines[0], lines[0]
        assert "ready:" not in proc.stderr_tail(100000)
        assert password not in proc.stderr_tail(100000)
        proc.proc.send_signal(signal.SIGTERM)
        assert proc.proc.wait(timeout=15) == 0
    finally:
        if proc.proc.poll() is None:
            proc.proc.kill()
            proc.proc.wait()


def test_clients_authenticate_through_kstretchs_bootstrap_listener(sasl_kafka, start_kstretch, fresh_topic):
    """With kstretch's own credentials for its start-up Metadata, a client given
    only kstretch's bootstrap address authenticates as itself (another user)
    through the bootstrap session and every broker session."""
    import kafkatest
    import records
    topic = fresh_topic(sasl_kafka, 6)
    kuser, kpassword = credentials(sasl_kafka, "SCRAM-SHA-256")
    k = start_kstretch(sasl_kafka.bootstrap, max_node_id=3, extra_args=(
        "--upstream-sasl-mechanism", "SCRAM-SHA-256", "--upstream-sasl-username", kuser,
        "--upstream-sasl-password", kpassword))
    user, password = credentials(sasl_kafka, "SCRAM-SHA-512")
    auth = ["-X", "security.protocol=SASL_PLAINTEXT", "-X", "sasl.mechanisms=SCRAM-SHA-512",
            "-X", f"sasl.username={user}", "-X", f"sasl.password={password}"]
    env = harness.modern_rdkafka_env()
    sent = records.make_records("upsasl-bootstrap", 500)
    before = kafkatest.relay_snapshot(sasl_kafka)
    harness.run([harness.kcat_path(), "-b", k.bootstrap, *auth, "-P", "-t", topic, "-K", "\t", "-X", "acks=all"],
                input="".join(f"{key}\t{v}\n" for key, v in sent).encode(), env=env,
                timeout=kafkatest.CLIENT_TIMEOUT_S, what="kcat producer via kstretch's bootstrap")
    r = harness.run([harness.kcat_path(), "-b", k.bootstrap, *auth, "-G", "upsasl-bootstrap",
                     "-X", "auto.offset.reset=earliest", "-e", "-f", harness.KCAT_FORMAT, topic],
                    env=env, timeout=kafkatest.CLIENT_TIMEOUT_S, what="kcat consumer via kstretch's bootstrap")
    records.assert_same_records(sent, records.parse_consumed(r.stdout.decode()), 6)
    kafkatest.assert_only_kstretch_reached_the_brokers(
        kafkatest.relay_delta(before, kafkatest.relay_snapshot(sasl_kafka)), k)
    assert k.metrics()["kstretch_protocol_errors"] == 0
