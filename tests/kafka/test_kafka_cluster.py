"""The real-Kafka launcher itself (tests/cluster/kafkacluster.py): its control
surface, the latency its relays add, and that it leaves no process and no
port behind, even when it is killed."""
import json
import os
import signal
import subprocess
import time

import harness
import kafkawire


def metadata_round_trip_ms(address, samples=9):
    """Fastest of `samples` ApiVersions round trips to host:port, in ms: an
    added network delay is in every one of them, while a busy JVM's pauses
    (a shared 2-core machine) are not, so the minimum measures the network."""
    host, port = address.rsplit(":", 1)
    times = []
    with kafkawire.Connection(host, int(port), 10.0) as c:
        for _ in range(samples):
            t = time.monotonic()
            c.api_versions()
            times.append((time.monotonic() - t) * 1000)
    return min(times)


def test_the_launcher_reports_its_brokers_and_moves_a_leader_stops_and_restarts_a_broker(kafka, fresh_topic):
    assert [(b["id"], b["rack"], b["region"]) for b in kafka.brokers] == [(1, "eu-a", "eu"), (2, "us-a", "us"),
                                                                         (3, "ap-a", "ap")]
    topic = fresh_topic(kafka, 3)
    assert [p["leader"] for p in kafka.topic(topic)["partitions"]] == [1, 2, 3]
    moved = kafka.must(f"leader {topic} 0 3")
    assert [p["leader"] for t in moved["topics"] if t["name"] == topic for p in t["partitions"]][0] == 3
    down = kafka.must("down 2")
    assert [b["up"] for b in down["brokers"]] == [True, False, True]
    assert not kafka.broker_process_alive(2)
    up = kafka.must("up 2")
    assert all(b["up"] for b in up["brokers"]) and kafka.broker_process_alive(2)
    bad = kafka.control("leader nosuchtopic 0 1")
    assert bad["ok"] is False and bad["error"], bad
    assert kafka.control("launch rockets")["ok"] is False


def test_rtt_delays_a_regions_brokers_for_the_clients_of_another(kafka):
    us_broker = next(b for b in kafka.brokers if b["region"] == "us")
    address = f"127.0.0.1:{us_broker['port']}"
    base = metadata_round_trip_ms(address)
    kafka.must("rtt us 80")
    try:
        slow = metadata_round_trip_ms(address)
    finally:
        kafka.must("rtt us 0")
    print(f"ApiVersions round trip to the us broker: {base:.1f} ms, with rtt us 80: {slow:.1f} ms")
    assert 75 <= slow - base <= 200, (base, slow)


def test_a_killed_launcher_leaves_no_jvm_and_no_port_behind(tmp_path):
    work = tmp_path / "w"
    proc = subprocess.Popen([harness.PYTHON, harness.KAFKACLUSTER, "--regions", "eu:1", "--work", str(work)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        state = json.loads(proc.stdout.readline() or b"null")
        assert state, proc.stderr.read().decode()[-3000:]
        jvms = java_children(proc.pid)
        assert len(jvms) == 3, jvms  # the controller, the broker, the Admin-API helper
        ports = [state["brokers"][0]["port"]]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        harness.wait_until(lambda: not any(os.path.exists(f"/proc/{p}") for p in jvms), 30,
                           what="the JVMs exiting after their launcher was killed")
        harness.wait_until(lambda: all(harness._port_free(p) for p in ports), 30, what="the ports freed")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def java_children(pid):
    out = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open(f"/proc/{p}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                with open(f"/proc/{p}/comm") as f:
                    comm = f.read().strip()
            except OSError:
                continue
            if int(fields[1]) == pid and comm == "java":
                out.append(int(p))
    return out
