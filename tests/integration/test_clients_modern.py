"""The newest Kafka clients through kstretch: franz-go (Go, tests/kafka/clients/franz),
and PyPI's confluent-kafka (with the librdkafka its wheel bundles) and
kafka-python, the releases pinned in tests/kafka/requirements.txt, run from
the virtualenv of `make deps-pip` beside Debian's older ones.

Each is given only kstretch's bootstrap address in front of the simulator
(three regions of one broker, a topic of 6 partitions with RF 3), produces
2,000 numbered records idempotently with acks=all, reads them back in a
consumer group, and must read every record exactly once, in order per
partition. While it runs, its TCP connections are sampled from /proc: every
one must lead to a kstretch listener, and it must have reached the listener
of every partition leader (so it learned those addresses from kstretch).

librdkafka's mock broker, under the simulator, offers some request versions
it cannot read: ApiVersions v3+ (answered in a layout that is neither v0's
nor flexible), JoinGroup v6 and SyncGroup v4 (their arrays read as int32
counts), LeaveGroup v3+ (read as v0). librdkafka never sends those; franz-go
and kafka-python 3 take the highest version offered, so here they are capped
below them (franz-go per request, kafka-python as a Kafka 2.3 broker, its
last release before flexible ApiVersions). Against real brokers the same
programs run uncapped.
"""
import os
import re
import subprocess

import harness
import records

REGIONS = "eu:1,us:1,ap:1"
PARTITIONS = 6
COUNT = 2_000
CLIENT_TIMEOUT_S = 60
LOCALHOST = "127.0.0.1"
GO_MOD = os.path.join(harness.REPO, "tests", "kafka", "clients", "franz", "go.mod")
REQUIREMENTS = os.path.join(harness.REPO, "tests", "kafka", "requirements.txt")

# See the docstring: what librdkafka's mock misreads, capped.
MOCK_FRANZ_CAPS = ["--max-api-version", "ApiVersions=2", "--max-api-version", "JoinGroup=5",
                   "--max-api-version", "SyncGroup=3", "--max-api-version", "LeaveGroup=2"]
MOCK_KAFKA_PYTHON_API = ["--api-version", "2.3"]


def franz_go_version():
    with open(GO_MOD, encoding="utf-8") as f:
        m = re.search(r"^\s*github\.com/twmb/franz-go (v\S+)", f.read(), re.M)
    assert m, f"{GO_MOD} requires no github.com/twmb/franz-go"
    return m[1]


def pinned(package):
    with open(REQUIREMENTS, encoding="utf-8") as f:
        m = re.search(rf"^{re.escape(package)}==(\S+)", f.read(), re.M)
    assert m, f"{REQUIREMENTS} pins no {package}"
    return m[1]


def through_kstretch(start_cluster, start_kstretch, topic):
    c = start_cluster(regions=REGIONS, topics=[f"{topic}:{PARTITIONS}:3"])
    leaders = {c.broker(p["leader"])["region"] for p in c.topic(topic)["partitions"]}
    assert leaders == {"eu", "us", "ap"}, f"leaders of {topic} are all in {leaders}"
    return c, start_kstretch(c, max_node_id=3)


def run_watched(argv, tmp_path, what, env=None):
    """Runs a client to the end (bounded), sampling its TCP peers meanwhile;
    returns (stdout, stderr, peers)."""
    out_path, err_path = tmp_path / f"{what}.out", tmp_path / f"{what}.err"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        p = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env)
    watcher = harness.PeerWatcher(p.pid, limit=CLIENT_TIMEOUT_S + 5)
    try:
        rc = p.wait(timeout=CLIENT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait(timeout=10)
        rc = None
    finally:
        peers = watcher.stop()
    stderr = err_path.read_bytes().decode("utf-8", "replace")
    assert rc is not None, f"{what} did not finish within {CLIENT_TIMEOUT_S}s\n--- stderr ---\n{stderr[-4000:]}"
    assert rc == 0, f"{what} exited with {rc}\n--- stderr ---\n{stderr[-4000:]}"
    return out_path.read_text(encoding="utf-8"), stderr, peers


def roundtrip(argv_head, options, k, topic, tmp_path, what, env=None):
    sent = records.make_records(topic, COUNT)
    inp = records.write_tsv(tmp_path / "records.tsv", sent)
    argv = [*argv_head, k.bootstrap, topic, f"{topic}-group", inp, str(COUNT), str(CLIENT_TIMEOUT_S - 10), *options]
    stdout, stderr, peers = run_watched(argv, tmp_path, what, env=env)
    return sent, records.parse_consumed(stdout), harness.client_version(stderr), peers


ACCEPTED = re.compile(r"session \S+: accepted, upstream (?:bootstrap|node (\d+)) ")


def assert_only_kstretch_was_reached(c, k, topic, peers, what):
    # Every connection of the client seen by the sampler (every 20 ms; a
    # connection shorter than that can escape it) led to a kstretch listener.
    listeners = {(LOCALHOST, port) for port in k.listener_ports()}
    assert peers, f"{what}: no TCP connection of the client was seen"
    strangers = peers - listeners
    assert not strangers, f"{what} connected to {sorted(strangers)}, which are not kstretch listeners " \
                          f"(simulator brokers: {sorted(b['port'] for b in c.brokers)})"
    # kstretch (which no other client uses here) accepted the client on its
    # bootstrap listener and on the listener of every partition leader: the
    # client learned those addresses from kstretch's answers.
    accepted = ACCEPTED.findall(k.log())
    assert "" in accepted, f"kstretch accepted no connection on the bootstrap listener given to {what}"
    leaders = {c.leaders(topic)[p] for p in range(PARTITIONS)}
    missing = leaders - {int(n) for n in accepted if n}
    assert not missing, f"{what} never connected to kstretch's listener of leader(s) {sorted(missing)}"
    m = k.metrics()
    assert m["kstretch_protocol_errors"] == 0, m
    assert m["kstretch_addresses_rewritten"] > 0, "kstretch rewrote no broker address for the client"


def test_franz_go_produces_and_consumes_through_kstretch_every_record_once_in_order(
        start_cluster, start_kstretch, tmp_path):
    topic = "franz-go"
    c, k = through_kstretch(start_cluster, start_kstretch, topic)
    sent, consumed, version, peers = roundtrip([harness.franz_path()], ["--idempotent", *MOCK_FRANZ_CAPS], k, topic,
                                               tmp_path, "kstretch-franz")

    assert version == f"franz-go {franz_go_version()}", f"kstretch-franz runs another library: {version!r}"
    records.assert_same_records(sent, consumed, PARTITIONS)
    assert_only_kstretch_was_reached(c, k, topic, peers, "franz-go")


def test_pypi_confluent_kafka_with_its_own_librdkafka_produces_and_consumes_through_kstretch_every_record_once_in_order(
        start_cluster, start_kstretch, tmp_path):
    topic = "confluent-pypi"
    c, k = through_kstretch(start_cluster, start_kstretch, topic)
    env = dict(os.environ)
    env.pop("LD_LIBRARY_PATH", None)  # the wheel's own librdkafka, neither Debian's nor the 2.12 build
    sent, consumed, version, peers = roundtrip(
        [harness.venv_python(), os.path.join(harness.CLIENTS, "python_roundtrip.py"), "confluent-kafka"],
        ["--idempotent"], k, topic, tmp_path, "confluent-kafka", env=env)

    want = pinned("confluent-kafka")
    m = re.fullmatch(r"confluent-kafka (\S+) librdkafka (\S+)", version)
    assert m and m[1] == want, f"not PyPI's confluent-kafka {want}: {version!r}"
    assert m[2].split(".")[:2] == want.split(".")[:2], f"confluent-kafka {want} runs librdkafka {m[2]}, not its own"
    records.assert_same_records(sent, consumed, PARTITIONS)
    assert_only_kstretch_was_reached(c, k, topic, peers, "confluent-kafka")


def test_pypi_kafka_python_produces_idempotently_and_consumes_through_kstretch_every_record_once_in_order(
        start_cluster, start_kstretch, tmp_path):
    topic = "kafka-python-pypi"
    c, k = through_kstretch(start_cluster, start_kstretch, topic)
    sent, consumed, version, peers = roundtrip(
        [harness.venv_python(), os.path.join(harness.CLIENTS, "python_roundtrip.py"), "kafka-python"],
        ["--idempotent", *MOCK_KAFKA_PYTHON_API], k, topic, tmp_path, "kafka-python")

    assert version == f"kafka-python {pinned('kafka-python')}", f"not PyPI's kafka-python: {version!r}"
    records.assert_same_records(sent, consumed, PARTITIONS)
    assert_only_kstretch_was_reached(c, k, topic, peers, "kafka-python")
