"""The simulator's control channel (one command per stdin line, one JSON
answer per line) changes what clients see on the wire, and the simulator
stops cleanly however it is told to."""
import signal
import socket
import subprocess
import time

import pytest

import harness
import kafkawire


def metadata(c, node_id=1, topics=None):
    b = c.broker(node_id)
    return kafkawire.metadata_v12(b["host"], b["port"], topics)


def connect_outcome(host, port, timeout=3.0):
    """'accepted' when a broker answers a request on a new connection, else
    'refused' (nothing listens) or 'closed' (the connection ends unanswered)."""
    try:
        conn = kafkawire.Connection(host, port, timeout)
    except ConnectionRefusedError:
        return "refused"
    with conn:
        try:
            conn.api_versions(version=0)
            return "accepted"
        except (ConnectionError, socket.timeout):
            return "closed"


def test_down_refuses_connections_to_a_broker_and_up_accepts_them_again(cluster):
    b2 = cluster.broker(2)
    assert connect_outcome(b2["host"], b2["port"]) == "accepted"

    assert cluster.control("down 2") == {"ok": True, "cmd": "down 2"}
    assert connect_outcome(b2["host"], b2["port"]) in ("refused", "closed")
    assert [b.node_id for b in metadata(cluster, 1).brokers] == [1, 3, 4, 5, 6]
    assert cluster.refresh().broker(2)["up"] is False

    cluster.must("up 2")
    harness.wait_until(lambda: connect_outcome(b2["host"], b2["port"]) == "accepted", timeout=5,
                       what="broker 2 accepting again")
    assert [b.node_id for b in metadata(cluster, 2).brokers] == [1, 2, 3, 4, 5, 6]
    assert cluster.refresh().broker(2)["up"] is True


def test_leader_moves_a_partition_leader_and_metadata_shows_it(cluster):
    before = {p.partition_index: p.leader_id for p in metadata(cluster).topic("t").partitions}
    assert before[0] == 1
    cluster.must("leader t 0 3")
    after = {p.partition_index: p.leader_id for p in metadata(cluster).topic("t").partitions}
    assert after == {**before, 0: 3}
    assert cluster.refresh().leaders("t") == after


def test_follower_sets_a_partition_follower_in_the_simulator_state(cluster):
    assert cluster.topic("t")["partitions"][1]["follower"] == -1
    cluster.must("follower t 1 4")
    assert cluster.refresh().topic("t")["partitions"][1]["follower"] == 4
    cluster.must("follower t 1 -1")
    assert cluster.refresh().topic("t")["partitions"][1]["follower"] == -1


def test_follower_region_gives_every_partition_led_elsewhere_a_follower_in_that_region(start_cluster):
    c = start_cluster(topics=["t:12:3"], follower_region="eu")
    for p in c.topic("t")["partitions"]:
        if c.broker(p["leader"])["region"] == "eu":
            assert p["follower"] == -1
        else:
            assert c.broker(p["follower"])["region"] == "eu" and p["follower"] in p["replicas"]


def test_advertise_changes_the_address_metadata_gives_for_one_broker(cluster):
    real = cluster.broker(2)
    cluster.must("advertise 2 broker2.kstretch.invalid 19092")
    md = metadata(cluster, 1)
    assert (md.broker(2).host, md.broker(2).port) == ("broker2.kstretch.invalid", 19092)
    for node_id in (1, 3, 4, 5, 6):
        sim = cluster.broker(node_id)
        assert (md.broker(node_id).host, md.broker(node_id).port) == (sim["host"], sim["port"])
    state = cluster.refresh().broker(2)
    assert (state["advertised_host"], state["advertised_port"]) == ("broker2.kstretch.invalid", 19092)
    assert (state["host"], state["port"]) == (real["host"], real["port"])
    # Only the advertisement changed: the broker still listens where it did.
    assert connect_outcome(real["host"], real["port"]) == "accepted"


def timed_metadata(c, node_id):
    b = c.broker(node_id)
    with kafkawire.Connection(b["host"], b["port"]) as conn:
        conn.api_versions(version=0)  # connected and answered once already
        t0 = time.monotonic()
        conn.metadata_v12()
        return time.monotonic() - t0


def test_rtt_delays_every_response_of_a_broker_by_at_least_the_set_time(cluster):
    assert timed_metadata(cluster, 3) < 0.25
    cluster.must("rtt 3 300")
    assert cluster.refresh().broker(3)["rtt_ms"] == 300
    assert timed_metadata(cluster, 3) >= 0.300
    assert timed_metadata(cluster, 1) < 0.25
    cluster.must("rtt 3 0")
    assert timed_metadata(cluster, 3) < 0.25


def test_rtt_ms_at_startup_delays_the_brokers_of_a_region(start_cluster):
    c = start_cluster(rtt_ms={"us": 200}, topics=["t:3:3"])
    assert [b["rtt_ms"] for b in c.brokers] == [0, 200, 0, 0, 200, 0]
    assert timed_metadata(c, 2) >= 0.200
    assert timed_metadata(c, 5) >= 0.200
    assert timed_metadata(c, 1) < 0.15


def test_error_injects_error_codes_into_the_next_responses_of_an_api(cluster):
    # The mock injects errors into FindCoordinator (and Produce, Fetch, group
    # APIs), not into Metadata. 30 = GROUP_AUTHORIZATION_FAILED.
    b = cluster.broker(1)
    with kafkawire.Connection(b["host"], b["port"]) as conn:
        assert conn.find_coordinator("g").error_code == 0
        cluster.must(f"error {kafkawire.API_FIND_COORDINATOR} 30 2")
        first, second, third = (conn.find_coordinator("g") for _ in range(3))
    assert (first.error_code, first.node_id) == (30, -1)
    assert "authorization" in first.error_message.lower()
    assert second.error_code == 30
    assert third.error_code == 0 and third.node_id in range(1, 7)


@pytest.mark.parametrize("cmd", [
    "bogus",
    "down",
    "down 7",
    "down x",
    "up 0",
    "rtt 1",
    "rtt 1 -5",
    "rtt 1 60001",
    "rtt 9 10",
    "leader nosuch 0 1",
    "leader t 12 1",
    "leader t 0 7",
    "leader t 0 -1",
    "follower t -1 2",
    "error 3 1 0",
    "error x 1 1",
    "error 3 1 100001",
    "advertise 7 h 1",
    "advertise 1 h 0",
    "advertise 1 h 65536",
    "state now",
    "quit now",
    "a b c d e f g h i",
])
def test_a_bad_command_is_answered_with_ok_false_and_changes_nothing(shared_cluster, cmd):
    before = shared_cluster.must("state")
    reply = shared_cluster.control(cmd)
    assert reply["ok"] is False and reply["cmd"] == cmd and reply["error"], reply
    assert shared_cluster.must("state") == before
    assert shared_cluster.proc.proc.poll() is None


def test_an_over_long_command_is_answered_with_ok_false(shared_cluster):
    shared_cluster.proc.write_line("x" * 5000)
    reply = shared_cluster.proc.read_line(5)
    assert '"ok":false' in reply and "longer than" in reply, reply
    shared_cluster.must("state")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_the_simulator_exits_0_within_seconds_on_a_signal(start_cluster, sig):
    c = start_cluster(topics=["t:3:3"])
    c.proc.proc.send_signal(sig)
    assert c.proc.wait(timeout=5) == 0
    assert "stopped" in c.proc.stderr_tail()


def test_the_simulator_exits_0_within_seconds_on_eof(start_cluster):
    c = start_cluster(topics=["t:3:3"])
    c.proc.close_stdin()
    assert c.proc.wait(timeout=5) == 0


def test_quit_is_answered_and_the_simulator_exits_0(start_cluster):
    c = start_cluster(topics=["t:3:3"])
    assert c.control("quit") == {"ok": True, "cmd": "quit"}
    assert c.proc.wait(timeout=5) == 0


def test_the_simulator_stops_listening_when_it_exits(start_cluster):
    c = start_cluster(topics=["t:3:3"])
    b = c.broker(1)
    c.stop()
    assert connect_outcome(b["host"], b["port"]) in ("refused", "closed")


@pytest.mark.parametrize("args,message", [
    ([], "--regions is required"),
    (["--regions", "eu:0"], "broker count for 'eu' must be 1..26"),
    (["--regions", "eu:1", "--rtt-ms", "us=5"], "unknown region 'us'"),
    (["--regions", "eu:1", "--topic", "t:0:1"], "partitions must be"),
    (["--regions", "eu:1", "--follower-region", "us"], "unknown region 'us'"),
    (["--regions", "eu:1", "--bogus", "1"], "unknown option '--bogus'"),
])
def test_bad_simulator_arguments_stop_it_with_one_line_and_exit_code_2(args, message):
    exe = harness.require_executable(harness.TESTCLUSTER, "the cluster simulator kstretch-testcluster")
    r = subprocess.run([exe, *args], capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL)
    assert r.returncode == 2
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("kstretch-testcluster: ") and message in lines[0], r.stderr
