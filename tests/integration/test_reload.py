"""SIGHUP re-reads the configuration (README "Reloading the configuration"):
what can change in place does, under load and without a client error; a
configuration that does not parse, or that changes what only a restart can,
is refused with a log line and the running one stays."""
import json
import os
import signal
import time
import urllib.request

import harness
import kafkawire
import records
from test_upgrade import Producer

TOPIC = "reload"
LOCALHOST = "127.0.0.1"


def topology(k):
    with urllib.request.urlopen(f"http://{k.host}:{k.admin_port}/topology", timeout=5) as r:
        return json.loads(r.read())


def regions(k):
    return {b["node_id"]: b["region"] for b in topology(k)["brokers"]}


def reload(k, path, text, expect):
    """Writes the configuration file, sends SIGHUP, waits for the line saying what became of it."""
    before = len(k.log_lines("received SIGHUP: ", expect))
    with open(path, "w") as f:
        f.write(text)
    os.kill(k.pid, signal.SIGHUP)
    harness.wait_until(lambda: len(k.log_lines("received SIGHUP: ", expect)) > before, 10,
                       what=f"the SIGHUP line {expect!r}")


def api_versions_ok(port, conn=None):
    c = conn or kafkawire.Connection(LOCALHOST, port, timeout=10)
    try:
        return c.api_versions(version=2).error_code == 0
    finally:
        if conn is None:
            c.close()


def test_sighup_moves_region_rules_and_listeners_in_place_and_refuses_a_bad_configuration(
        start_cluster, start_kstretch, tmp_path):
    """Under an idempotent producer (100,000 records over 6 s): a new region.map
    changes the brokers' regions (/topology), a broker.port.map entry moves
    node 1's listener (a connection made before keeps working; new ones go to
    the new port) and log.level applies; then a value that does not parse and
    a changed upgrade.socket are each refused, naming the problem, and nothing
    changes. The producer sees no error and every record is delivered."""
    c = start_cluster(regions="eu:1,us:1,ap:1", topics=[f"{TOPIC}:6:3"])
    conf = tmp_path / "kstretch.properties"
    conf.write_text("region.map=eu-*=eu,us-*=us,*=far\n")
    k = start_kstretch(c, workers=2, extra_args=("--config", str(conf)))
    first = regions(k)
    assert sorted(first.values()) == ["eu", "far", "us"], first
    (moved_to,) = harness.free_ports(1, LOCALHOST, avoid=list(k.listener_ports()))
    old_port = k.broker_port(1)
    sent = records.make_records("reload", 100_000)
    with kafkawire.Connection(LOCALHOST, old_port, timeout=10) as early, \
            Producer(k.bootstrap, sent, spread_s=6.0, topic=TOPIC) as producer:
        time.sleep(1.0)
        reload(k, conf, f"region.map=*=everywhere\nbroker.port.map=1={moved_to}\nlog.level=info\n",
               "configuration reloaded")
        harness.wait_until(lambda: set(regions(k).values()) == {"everywhere"}, 5, what="the new regions")
        harness.wait_until(lambda: api_versions_ok(moved_to), 5, what="node 1 on its new port")
        assert api_versions_ok(old_port, early), "a connection made before the move stopped working"
        try:
            api_versions_ok(old_port)
            raise AssertionError("node 1's old port still accepts new connections")
        except OSError:
            pass
        assert k.log_lines("region.map: ") and k.log_lines("broker.port.map: ")
        reload(k, conf, "region.map=*=everywhere\nmax.inflight.requests=banana\n", "the configuration is refused")
        assert k.log_lines("max.inflight.requests")
        reload(k, conf, f"region.map=*=elsewhere\nupgrade.socket={tmp_path}/u.sock\n", "the configuration is refused")
        assert k.log_lines("upgrade.socket changed", "that takes a restart")
        assert set(regions(k).values()) == {"everywhere"}, "a refused configuration was applied"
        left = producer.wait()
    assert left == 0 and not producer.errors and producer.delivered == len(sent), \
        (left, producer.delivered, producer.errors[:5])
    assert k.alive()
    m = k.metrics()
    assert m["kstretch_protocol_errors"] == 0
