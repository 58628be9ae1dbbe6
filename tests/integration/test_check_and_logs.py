"""Operating kstretch (issue 17): `kstretch --check` against a running
(simulated) cluster, a dead one and a bad configuration, `--check --offline`,
`log.format=json` lines an operator's log pipeline can parse, and a broker down
under a stream of clients printing a bounded number of lines.
"""
import json
import re
import socket
import subprocess
import time

import harness
import kafkawire

LOCALHOST = "127.0.0.1"
REGIONS = "eu:1,us:1,ap:1"


def kstretch(*args, timeout=20):
    harness.require_executable(harness.KSTRETCH, "kstretch")
    return subprocess.run([harness.KSTRETCH, *args], capture_output=True, text=True, timeout=timeout)


def dead_port():
    return harness.free_ports(1)[0]


# ---------------------------------------------------------------- --check

def test_check_asks_the_cluster_and_prints_its_brokers_and_the_listener_of_each(start_cluster):
    c = start_cluster(regions=REGIONS, topics=["t:3:3"])
    listen, admin = harness.free_ports(2)
    r = kstretch("--check", "--bootstrap-servers", c.bootstrap, "--listen", f"{LOCALHOST}:{listen}",
                 "--admin-listen", f"{LOCALHOST}:{admin}", "--broker-port-base", "29000", "--region-map",
                 "eu*=eu,us*=us,ap*=ap")
    assert r.returncode == 0, r.stderr
    assert "configuration: valid (mode=mapped)" in r.stdout
    assert "check: OK (3 brokers answered through plaintext)" in r.stdout
    for node in (1, 2, 3):
        b = c.broker(node)
        # the broker table: node, rack, region, its address, kstretch's listener for it
        row = [line for line in r.stdout.splitlines() if line.split()[:1] == [str(node)]]
        assert row and f"{b['host']}:{b['port']}" in row[0] and f"{LOCALHOST}:{29000 + node}" in row[0], r.stdout
        assert f"{LOCALHOST}:{29000 + node}" in r.stdout.split("listeners:")[1], r.stdout


def test_check_of_a_cluster_that_does_not_answer_fails_within_connect_timeout_with_the_reason():
    t0 = time.monotonic()
    r = kstretch("--check", "--bootstrap-servers", f"{LOCALHOST}:{dead_port()}", "--connect-timeout-ms", "700")
    took = time.monotonic() - t0
    assert r.returncode == 1
    assert "no bootstrap server answered within connect.timeout.ms (700 ms)" in r.stderr
    assert "check: OK" not in r.stdout
    assert took < 5, f"--check took {took:.1f}s with connect.timeout.ms=700"


def test_check_of_a_bad_configuration_exits_2_naming_the_key(tmp_path):
    cfg = tmp_path / "k.properties"
    cfg.write_text("bootstrap.servers=127.0.0.1:9092\nbroker.port.base=70000\n")
    r = kstretch("--check", "--config", str(cfg))
    assert r.returncode == 2
    assert "broker.port.base" in r.stderr and str(cfg) in r.stderr
    r = kstretch("--check", "--offline", "--config", str(cfg))
    assert r.returncode == 2 and "broker.port.base" in r.stderr
    r = kstretch("--offline", "--bootstrap-servers", "127.0.0.1:9092")
    assert r.returncode == 2 and "--offline: only with --check" in r.stderr
    # the certificates --check loads as a start would; --offline does not read them
    missing = str(tmp_path / "missing-ca.pem")
    args = ["--bootstrap-servers", f"{LOCALHOST}:{dead_port()}", "--upstream-tls", "true", "--upstream-tls-ca", missing]
    r = kstretch("--check", *args)
    assert r.returncode == 2 and f"upstream.tls.ca: cannot load CA certificates from {missing}" in r.stderr
    assert kstretch("--check", "--offline", *args).returncode == 0


def test_check_offline_validates_and_prints_the_listener_map_without_a_cluster(tmp_path):
    cfg = tmp_path / "k.properties"
    # the bootstrap server is a port nobody listens on: offline never connects
    cfg.write_text(f"bootstrap.servers={LOCALHOST}:{dead_port()}\nlisten=0.0.0.0:9092\n"
                   "advertised.host=kafka.local\nbroker.port.map=7=9300\n")
    r = kstretch("--check", "--offline", "--config", str(cfg), timeout=5)
    assert r.returncode == 0, r.stderr
    assert "0.0.0.0:9092 bootstrap" in r.stdout
    assert "0.0.0.0:9300 node 7 (broker.port.map; advertised as kafka.local:9300)" in r.stdout
    assert "0.0.0.0:19000+N node N (broker.port.base; advertised as kafka.local)" in r.stdout
    assert "check: OK (offline" in r.stdout


def test_check_offline_in_regional_mode_names_the_region_s_nodes_and_where_this_one_listens():
    r = kstretch("--check", "--offline", "--bootstrap-servers", f"{LOCALHOST}:{dead_port()}", "--mode", "regional",
                 "--region", "eu", "--regional-nodes", "1@10.0.0.1:9092,2@10.0.0.2:9092", "--node-id", "2",
                 timeout=5)
    assert r.returncode == 0, r.stderr
    assert "regional: region eu, node.id 2, clients on 10.0.0.2:9092" in r.stdout
    assert "node 2 10.0.0.2:9092 (this node)" in r.stdout and "node 1 10.0.0.1:9092\n" in r.stdout
    # a node.id that is not in the list is a configuration error
    r = kstretch("--check", "--offline", "--bootstrap-servers", "127.0.0.1:9092", "--mode", "regional", "--region",
                 "eu", "--regional-nodes", "1@10.0.0.1:9092", "--node-id", "5", timeout=5)
    assert r.returncode == 2 and "node.id: 5 is not one of regional.nodes" in r.stderr


# ---------------------------------------------------------------- log.format=json

def json_lines(k):
    out = []
    for line in k.log().splitlines():
        obj = json.loads(line)  # every line is one JSON object, or this raises
        assert isinstance(obj, dict) and {"time", "level", "message"} <= set(obj), line
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", obj["time"]), line
        assert obj["level"] in ("error", "warn", "info", "debug"), line
        out.append(obj)
    return out


def test_json_log_lines_parse_and_carry_the_client_listener_and_broker_of_their_connection(start_cluster,
                                                                                            start_kstretch):
    c = start_cluster(regions=REGIONS, topics=["t:3:3"])
    k = start_kstretch(c, workers=1, extra_args=["--log-format", "json"])
    with kafkawire.Connection(LOCALHOST, k.broker_port(2), timeout=10) as conn:
        local = "%s:%d" % conn.sock.getsockname()[:2]
        assert conn.api_versions(2).error_code == 0
    harness.wait_until(lambda: any("accepted, upstream node 2" in o["message"] for o in json_lines(k)), 5,
                       what="the accepted line")
    lines = json_lines(k)
    assert any(o["message"].startswith("ready:") for o in lines)
    accepted = [o for o in lines if "accepted, upstream node 2" in o["message"]]
    assert len(accepted) == 1, accepted
    a = accepted[0]
    assert a["listener"] == k.broker_port(2) and a["broker"] == 2, a
    assert re.fullmatch(r"127\.0\.0\.1:\d+", a["client"]), a
    assert a["client"] == local
    # every line about that connection carries the same identity
    mine = [o for o in lines if o.get("client") == a["client"]]
    assert len(mine) >= 2 and all(o["listener"] == a["listener"] and o["broker"] == 2 for o in mine), mine
    # a line about no connection has no identity fields
    ready = next(o for o in lines if o["message"].startswith("ready:"))
    assert not {"client", "listener", "broker"} & set(ready)


# ---------------------------------------------------------------- rate-limited repeats

def test_a_broker_down_under_a_stream_of_clients_prints_a_line_a_second_and_counts_the_rest(start_cluster,
                                                                                            start_kstretch):
    c = start_cluster(regions=REGIONS, topics=["t:3:3"])
    k = start_kstretch(c, workers=2, extra_args=["--log-level", "info", "--log-format", "json"])
    assert c.control("down 2")["ok"]
    port = k.broker_port(2)

    def one_client():
        try:
            with kafkawire.Connection(LOCALHOST, port, timeout=5) as conn:
                conn.api_versions(2)
        except (OSError, kafkawire.WireError):
            pass  # refused by kstretch: its broker is down

    t0 = time.monotonic()
    attempts = 0
    while time.monotonic() - t0 < 2.5 and attempts < 50_000:
        one_client()
        attempts += 1
    load_s = time.monotonic() - t0
    # another broker down at the same moment gets its own line, not a share of node 2's
    assert c.control("down 3")["ok"]
    try:
        with kafkawire.Connection(LOCALHOST, k.broker_port(3), timeout=5) as conn:
            conn.api_versions(2)
    except (OSError, kafkawire.WireError):
        pass
    harness.wait_until(lambda: any("cannot connect to node 3" in o["message"] for o in json_lines(k)), 5,
                       what="node 3's line while node 2's repeats are held back")
    time.sleep(1.2)  # past the repeat interval: the next line reports what was held back
    one_client()
    attempts += 1
    harness.wait_until(lambda: k.metrics()["kstretch_upstream_connect_failures"] >= attempts + 1, 5,
                       what="every connect failure counted")
    failures = k.metrics()["kstretch_upstream_connect_failures"]
    lines = [o for o in json_lines(k) if o["message"].startswith("session ") and "cannot connect to node 2" in o["message"]]
    noisy = [o for o in json_lines(k) if o.get("broker") == 2 or o.get("listener") == port]
    print(f"{attempts} clients in {load_s:.1f}s, {failures} connect failures: {len(lines)} 'cannot connect' lines, "
          f"{len(noisy)} lines about the listener in all")
    assert attempts >= 50, f"only {attempts} clients in {load_s:.1f}s"
    # one a second (and the first): never one per client
    assert 1 <= len(lines) <= load_s + 3, [o["message"] for o in lines]
    assert len(noisy) <= 3 * (load_s + 3), [o["message"] for o in noisy]
    # nothing is lost from the count: printed + suppressed = every failure
    assert len(lines) + sum(o.get("suppressed", 0) for o in lines) == failures - 1  # node 3's one aside
    assert lines[-1].get("suppressed", 0) > 0
    assert all(o["broker"] == 2 and o["listener"] == port and o["level"] == "warn" for o in lines)


def test_the_text_format_says_how_many_repeats_were_suppressed(start_cluster, start_kstretch):
    c = start_cluster(regions=REGIONS, topics=["t:3:3"])
    k = start_kstretch(c, workers=1, extra_args=["--log-level", "info"])
    assert c.control("down 3")["ok"]
    for i in range(30):
        try:
            with kafkawire.Connection(LOCALHOST, k.broker_port(3), timeout=5) as conn:
                conn.api_versions(2)
        except (OSError, kafkawire.WireError):
            pass
    time.sleep(1.2)
    try:
        with kafkawire.Connection(LOCALHOST, k.broker_port(3), timeout=5) as conn:
            conn.api_versions(2)
    except (OSError, kafkawire.WireError):
        pass
    harness.wait_until(lambda: len(k.log_lines("cannot connect to node 3")) >= 2, 5, what="the second line")
    lines = k.log_lines("cannot connect to node 3")
    assert all(f"[listener={k.broker_port(3)} broker=3] session 127.0.0.1:" in line for line in lines), lines
    m = re.search(r"\((\d+) more like this suppressed since the last\)$", lines[-1])
    assert m and len(lines) + int(m[1]) == 31, lines


def test_a_broker_down_under_regional_clients_prints_a_bounded_number_of_lines(start_cluster, start_kstretch):
    # Regional mode: every Produce for a partition whose leader is down fails
    # on the node's shared connection to that broker; the lines about it (the
    # failed connection, each request that cannot be answered) stay a few a
    # second however many requests fail.
    c = start_cluster(regions=REGIONS, topics=["t:3:3"])
    port = harness.free_ports(1)[0]
    k = start_kstretch(c, workers=2, listen_port=port, extra_args=[
        "--mode", "regional", "--region", "eu", "--regional-nodes", f"1@{LOCALHOST}:{port}", "--node-id", "1",
        "--log-level", "info", "--log-format", "json"])
    leader = c.leaders("t")[0]
    assert c.control(f"down {leader}")["ok"]
    body = kafkawire.produce_request_v9([("t", 0, kafkawire.record_batch([(b"k", b"v")]))], acks=1)
    t0 = time.monotonic()
    requests = 0
    while time.monotonic() - t0 < 2.5 and requests < 20_000:
        try:
            with socket.create_connection((LOCALHOST, port), timeout=5) as s:
                for corr in range(20):
                    s.sendall(kafkawire.encode_request(0, 9, corr, body))
                    requests += 1
                s.settimeout(0.2)  # answered (failed) or closed by kstretch, or left waiting: the next client
                while s.recv(65536):
                    pass
        except OSError:
            pass
    load_s = time.monotonic() - t0
    time.sleep(0.5)
    lines = [o for o in json_lines(k) if o["level"] in ("warn", "error")]
    kinds = {}
    for o in lines:
        kinds.setdefault(re.sub(r"\d+", "N", o["message"].split(": ", 1)[-1])[:60], []).append(o)
    print(f"{requests} Produce requests in {load_s:.1f}s to a partition of node {leader} (down): "
          f"{len(lines)} warn/error lines: " + "; ".join(f"{len(v)} x {kk}" for kk, v in kinds.items()))
    failures = k.metrics()["kstretch_upstream_connect_failures"]
    print(f"kstretch_upstream_connect_failures {failures}, suppressed in the lines: "
          f"{sum(o.get('suppressed', 0) for o in lines)}")
    assert requests >= 200
    assert lines, "nothing said the broker is down"
    # a line a second per kind of message, and not many kinds
    assert len(lines) <= 6 * (load_s + 2), [o["message"] for o in lines]
    # the shared connections' failures: fewer lines than failures, the rest counted in them
    pool = [o for o in lines if o.get("broker") == leader and "cannot connect" in o["message"]]
    assert pool and len(pool) < failures and sum(o.get("suppressed", 0) for o in pool) > 0
    assert len(pool) + sum(o.get("suppressed", 0) for o in pool) <= failures
