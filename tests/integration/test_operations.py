"""Operations (issue 17, metrics and views): what an operator reads on the admin
port while real clients (kcat) run through kstretch in front of the simulator,
in both modes. /metrics is parsed with the Prometheus project's own parser
(prometheus_client, run from the tests' virtualenv by promparse.py).
"""
import json
import os
import re
import socket
import subprocess
import urllib.error
import urllib.request

import harness
import kafkawire

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DASHBOARD = os.path.join(REPO, "deploy", "grafana", "kstretch.json")
TOPIC = "t"
CLIENT_TIMEOUT_S = 90
COST = "eu>us:0.02,us>eu:0.03,*>*:0.01"


def get(k, path, token=None, timeout=5.0):
    """(status, body) of GET path on k's admin port."""
    req = urllib.request.Request(f"http://{k.host}:{k.admin_port}{path}")
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def parse(text):
    """{family: {"type", "samples": [[name, labels, value]]}} by prometheus_client's parser."""
    r = subprocess.run([harness.venv_python(), os.path.join(HERE, "promparse.py")], input=text.encode(),
                       capture_output=True, timeout=60)
    assert r.returncode == 0, f"prometheus_client rejected /metrics: {r.stderr.decode()[-2000:]}"
    return json.loads(r.stdout)["families"]


def scrape(k, token=None):
    code, text = get(k, "/metrics", token)
    assert code == 200, text
    return parse(text)


def value(fams, family, **labels):
    """The sum of family's samples (counters: NAME_total) whose labels include `labels`."""
    f = fams[family]
    want = family + "_total" if f["type"] == "counter" else family
    return sum(v for n, l, v in f["samples"] if n == want and all(l.get(a) == b for a, b in labels.items()))


def check_histograms(fams):
    """Every series of every histogram: cumulative buckets never fall, +Inf == _count, _sum >= 0.
    Returns the number of series seen."""
    seen = 0
    for name, f in fams.items():
        if f["type"] != "histogram":
            continue
        series = {}
        for n, labels, v in f["samples"]:
            key = tuple(sorted((a, b) for a, b in labels.items() if a != "le"))
            s = series.setdefault(key, {"buckets": [], "count": None, "sum": None})
            if n == name + "_bucket":
                s["buckets"].append((float(labels["le"]), v))
            elif n == name + "_count":
                s["count"] = v
            elif n == name + "_sum":
                s["sum"] = v
        for key, s in series.items():
            b = s["buckets"]
            assert b and b[-1][0] == float("inf"), f"{name}{key}: no +Inf bucket"
            assert [le for le, _ in b] == sorted(le for le, _ in b), f"{name}{key}: bounds out of order"
            counts = [v for _, v in b]
            assert counts == sorted(counts), f"{name}{key}: cumulative buckets fall: {counts}"
            assert s["count"] == counts[-1], f"{name}{key}: _count {s['count']} != +Inf {counts[-1]}"
            assert s["sum"] is not None and s["sum"] >= 0, f"{name}{key}: _sum {s['sum']}"
            seen += 1
    return seen


def kcat(*args):
    return [harness.kcat_path(), *args]


def produce_and_consume(bootstrap, count=500, partitions=(0, 1, 2, 3)):
    env = harness.modern_rdkafka_env()
    harness.run(kcat("-b", bootstrap, "-P", "-t", TOPIC, "-K", "\t", "-X", "acks=all"),
                input="".join(f"k{i}\tv{i}\n" for i in range(count)).encode(), env=env, timeout=CLIENT_TIMEOUT_S,
                what="kcat producer")
    got = 0
    for p in partitions:
        r = harness.run(kcat("-b", bootstrap, "-C", "-t", TOPIC, "-p", str(p), "-o", "beginning", "-e"), env=env,
                        timeout=CLIENT_TIMEOUT_S, what=f"kcat consumer -p {p}")
        got += len(r.stdout.decode().splitlines())
    return got


def assert_traffic_counted(k):
    fams = scrape(k)
    for api in ("Produce", "Fetch", "Metadata", "ApiVersions"):
        assert value(fams, "kstretch_api_requests", api=api) > 0, api
        assert value(fams, "kstretch_api_responses", api=api) > 0, api
    # every answered request with an upstream leg is in both histograms
    hist = fams["kstretch_request_duration_seconds"]["samples"]
    counts = {(l["api"], l["part"]): v for n, l, v in hist if n.endswith("_count")}
    for api in ("Produce", "Fetch", "Metadata"):
        assert counts.get((api, "upstream"), 0) > 0 and counts[(api, "upstream")] == counts[(api, "kstretch")], api
    assert check_histograms(fams) >= 6
    # no answer without its request
    assert value(fams, "kstretch_api_requests") >= value(fams, "kstretch_api_responses") > 0
    assert value(fams, "kstretch_upstream_connects") > 0
    assert value(fams, "kstretch_api_decode_errors") == 0
    harness.wait_until(lambda: value(scrape(k), "kstretch_connections_closed", cause="client_closed") > 0, 20,
                       what="kcat's connections counted as closed by the client")
    return fams


def test_mapped_kcat_traffic_moves_the_per_api_counters_and_consistent_latency_histograms(start_cluster,
                                                                                          start_kstretch):
    c = start_cluster(topics=[f"{TOPIC}:4:3"])
    k = start_kstretch(c, extra_args=("--cost-per-gb", COST))
    assert produce_and_consume(k.bootstrap) == 500
    fams = assert_traffic_counted(k)
    assert value(fams, "kstretch_api_rewrites", api="Metadata") > 0  # broker addresses rewritten


def regional_node(start_cluster, start_kstretch, extra=()):
    c = start_cluster(regions="eu:2,us:2,ap:2", rtt_ms="us=5,ap=10", topics=[f"{TOPIC}:4:3"],
                      follower_region="eu")
    (port,) = harness.free_ports(1)
    args = ("--mode", "regional", "--region", "eu", "--regional-nodes", f"1@127.0.0.1:{port}", "--node-id", "1",
            "--cost-per-gb", COST, *extra)
    return c, start_kstretch(c, extra_args=args, listen_port=port)


def test_regional_kcat_traffic_is_priced_by_cost_per_gb_and_eu_replica_reads_count_as_cost_avoided(
        start_cluster, start_kstretch):
    c, k = regional_node(start_cluster, start_kstretch)
    assert produce_and_consume(k.bootstrap) == 500
    fams = assert_traffic_counted(k)
    # Produce goes to leaders in us and ap: bytes leave eu, priced eu>us 0.02 and *>* 0.01 per 10^9 bytes.
    rb = {(l["client_region"], l["broker_region"], l["direction"]): v
          for n, l, v in fams["kstretch_region_bytes"]["samples"]}
    price = {("eu", "us"): 0.02, ("us", "eu"): 0.03, ("eu", "ap"): 0.01, ("ap", "eu"): 0.01}
    for broker in ("us", "ap"):
        want = (rb.get(("eu", broker, "to_broker"), 0) * price[("eu", broker)] +
                rb.get(("eu", broker, "from_broker"), 0) * price[(broker, "eu")]) / 1e9
        got = value(fams, "kstretch_cross_region_cost", client_region="eu", broker_region=broker)
        assert want > 0 and abs(got - want) <= 1e-9 + want * 1e-6, (broker, got, want)
    # Fetches read from the eu follower of partitions led in us or ap: what they would have cost from the leader.
    kept = {l["broker_region"]: v for n, l, v in fams["kstretch_fetch_bytes_kept_local"]["samples"]}
    assert sum(kept.values()) > 0, fams["kstretch_fetch_bytes_kept_local"]
    for leader, n in kept.items():
        got = value(fams, "kstretch_cross_region_cost_avoided", client_region="eu", broker_region=leader)
        assert abs(got - n * price[(leader, "eu")] / 1e9) <= 1e-9, (leader, got, n)


def test_connections_lists_a_live_client_and_the_regional_pool(start_cluster, start_kstretch):
    c, k = regional_node(start_cluster, start_kstretch)
    with socket.create_connection(("127.0.0.1", k.listen_port), timeout=10) as s:
        req = kafkawire.encode_request(3, 12, 7, kafkawire.metadata_request_v12([TOPIC]))
        s.sendall(req)
        s.recv(4)  # the answer has begun: the request went upstream and back
        mine = "%s:%d" % s.getsockname()
        code, body = get(k, "/connections")
        assert code == 200, body
        conns = json.loads(body)
        me = [x for x in conns["clients"] if x["client"] == mine]
        assert len(me) == 1, (mine, conns["clients"])
        me = me[0]
        assert me["mode"] == "regional" and 0 <= me["worker"] < 2 and 0 <= me["age_s"] < 60
        assert me["requests"] == 1 and me["bytes_from_client"] == len(req) and me["region"] == "eu"
        assert me["placement_source"] and me["listen_port"] == k.listen_port
        assert conns["upstreams"], "the pool's connections are listed"
        for u in conns["upstreams"]:
            assert u["mode"] == "pool" and u["bytes_to_broker"] >= 0 and isinstance(u["broker"], int)
        assert any(u["requests"] >= 1 and u["upstream_state"] == "ready" for u in conns["upstreams"])
    harness.wait_until(lambda: not [x for x in json.loads(get(k, "/connections")[1])["clients"]
                                    if x["client"] == mine], 10, what="the closed client leaving /connections")


def test_mapped_connections_show_broker_upstream_and_placement(start_cluster, start_kstretch):
    c = start_cluster(topics=[f"{TOPIC}:4:3"])
    k = start_kstretch(c, extra_args=("--rack", "eu-a", "--region-map", "eu-*=eu,us-*=us,ap-*=ap"))
    with socket.create_connection(("127.0.0.1", k.broker_port(1)), timeout=10) as s:
        s.sendall(kafkawire.encode_request(3, 12, 7, kafkawire.metadata_request_v12([TOPIC])))
        s.recv(4)
        mine = "%s:%d" % s.getsockname()
        me = [x for x in json.loads(get(k, "/connections")[1])["clients"] if x["client"] == mine]
        assert len(me) == 1
        me = me[0]
        assert me["mode"] == "mapped" and me["broker"] == 1 and me["upstream_state"] == "ready"
        assert me["rack"] == "eu-a" and me["region"] == "eu" and me["placement_source"]
        assert me["upstream"] and me["requests"] == 1


def test_admin_token_is_required_everywhere_but_healthz(start_cluster, start_kstretch, tmp_path):
    c = start_cluster(topics=[f"{TOPIC}:4:3"])
    f = tmp_path / "token"
    f.write_text("s3cret-Token\n")
    k = start_kstretch(c, extra_args=("--admin-token-file", str(f)))
    for path in ("/metrics", "/readyz", "/topology", "/connections"):
        assert get(k, path)[0] == 401, path
        assert get(k, path, token="wrong")[0] == 401, path
        assert get(k, path, token="s3cret-Token")[0] in (200, 503), path
    assert get(k, "/healthz") == (200, "ok\n")
    assert get(k, "/metrics", token="s3cret-Token")[0] == 200


def test_readyz_flips_when_the_cluster_goes_away_and_back(start_cluster, start_kstretch):
    c = start_cluster(regions="eu:1,us:1", topics=[f"{TOPIC}:2:2"])
    k = start_kstretch(c, extra_args=("--metadata-max-age-ms", "1000"))
    harness.wait_until(lambda: get(k, "/readyz")[0] == 200, 10, what="/readyz 200")
    # a client on broker 1's listener, its upstream connected, when the brokers go away
    s = socket.create_connection(("127.0.0.1", k.broker_port(1)), timeout=10)
    s.sendall(kafkawire.encode_request(3, 12, 7, kafkawire.metadata_request_v12([TOPIC])))
    s.recv(4)
    for b in c.brokers:
        c.must(f"down {b['id']}")
    harness.wait_until(lambda: get(k, "/readyz")[0] == 503, 20, what="/readyz 503 with every broker down")
    harness.wait_until(lambda: value(scrape(k), "kstretch_connections_closed", cause="upstream_lost") >= 1, 20,
                       what="the client's session closed as upstream_lost")
    s.close()
    assert get(k, "/healthz")[0] == 200  # alive, just not ready
    assert "no broker answered" in get(k, "/readyz")[1]
    for b in c.brokers:
        c.must(f"up {b['id']}")
    harness.wait_until(lambda: get(k, "/readyz")[0] == 200, 30, what="/readyz 200 again")
    fams = scrape(k)
    assert value(fams, "kstretch_topology_refreshes", result="failed") > 0
    assert value(fams, "kstretch_topology_refreshes", result="ok") > 0


def dashboard_metrics():
    with open(DASHBOARD) as f:
        dash = json.load(f)
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    assert exprs, "the dashboard queries nothing"
    return {m for e in exprs for m in re.findall(r"\bkstretch_[a-z_]+", e)}


def test_every_metric_the_grafana_dashboard_queries_is_in_metrics():
    out = harness.run([harness.KSTRETCH, "--list-metrics"], timeout=10, what="kstretch --list-metrics").stdout
    names = set()
    for name, f in parse(out.decode()).items():
        names.add(name)
        if f["type"] == "counter":
            names.add(name + "_total")
        if f["type"] == "histogram":
            names |= {name + "_bucket", name + "_sum", name + "_count"}
    missing = sorted(dashboard_metrics() - names)
    assert not missing, f"the dashboard queries metrics kstretch does not have: {missing}"


def test_bad_cost_rules_and_tokens_stop_startup_with_the_reason(tmp_path):
    for rules, reason in (("eu>us:abc", "the price 'abc' is not a number"), ("eu-us:0.02", "is not FROM>TO:PRICE"),
                          ("eu>us:0.02,", "a trailing comma")):
        r = subprocess.run([harness.KSTRETCH, "--bootstrap-servers", "127.0.0.1:9", "--cost-per-gb", rules,
                            "--check-config"], capture_output=True, text=True, timeout=10)
        assert r.returncode == 2 and "config error: --cost-per-gb: " in r.stderr and reason in r.stderr, (rules, r.stderr)
    ok = subprocess.run([harness.KSTRETCH, "--bootstrap-servers", "127.0.0.1:9", "--cost-per-gb", COST,
                         "--admin-token", "x", "--check-config"], capture_output=True, text=True, timeout=10)
    assert ok.returncode == 0, ok.stderr
    assert f"cost.per.gb={COST}\n" in ok.stdout and "admin.token=********\n" in ok.stdout
    # a token an HTTP header cannot carry, two tokens, a token file that is not there: exit 2, one line naming it
    (tmp_path / "t").write_text("b\n")
    (tmp_path / "spaced").write_text("two words\n")
    for extra, reason in ((("--admin-token", "two words"), "--admin-token: the token: only visible ASCII"),
                          (("--admin-token-file", str(tmp_path / "spaced")), "only visible ASCII"),
                          (("--admin-token", "a", "--admin-token-file", str(tmp_path / "t")), "set one of them"),
                          (("--admin-token-file", str(tmp_path / "missing")), "--admin-token-file: cannot read")):
        r = subprocess.run([harness.KSTRETCH, "--bootstrap-servers", "127.0.0.1:9", *extra, "--check-config"],
                           capture_output=True, text=True, timeout=10)
        assert r.returncode == 2 and reason in r.stderr and "two words" not in r.stderr, (extra, r.stderr)


def test_connections_names_the_client_a_proxy_protocol_header_names(start_cluster, start_kstretch):
    c = start_cluster(topics=[f"{TOPIC}:4:3"])
    k = start_kstretch(c, extra_args=("--proxy-protocol", "v1"))
    with socket.create_connection(("127.0.0.1", k.broker_port(1)), timeout=10) as s:
        s.sendall(b"PROXY TCP4 10.1.2.3 127.0.0.1 40001 9092\r\n" +
                  kafkawire.encode_request(3, 12, 7, kafkawire.metadata_request_v12([TOPIC])))
        s.recv(4)
        clients = json.loads(get(k, "/connections")[1])["clients"]
        assert [x["client"] for x in clients] == ["10.1.2.3:40001"], clients


def test_hostile_admin_requests_get_an_error_and_the_endpoint_goes_on(start_cluster, start_kstretch):
    c = start_cluster(topics=[f"{TOPIC}:4:3"])
    k = start_kstretch(c, extra_args=("--admin-token", "tok"))
    addr = (k.host, k.admin_port)

    def raw(req):
        with socket.create_connection(addr, timeout=10) as s:
            s.sendall(req)
            s.shutdown(socket.SHUT_WR)
            out = b""
            while len(out) < 1 << 20:
                b = s.recv(65536)
                if not b:
                    break
                out += b
            return out.split(b"\r\n", 1)[0]

    assert b" 501 " in raw(b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
    assert b" 401 " in raw(b"GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + b"A" * 6000 + b"\r\n\r\n")
    assert b" 401 " in raw(b"GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Basic dG9rOnRvaw==\r\n\r\n")
    assert b" 401 " in raw(b"GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tok2\r\n\r\n")
    assert b" 404 " in raw(b"GET /nope HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tok\r\n\r\n")
    raw(b"\x00\xff garbage \r\n\r\n")
    raw(b"GET /" + b"a" * 100000 + b" HTTP/1.1\r\n\r\n")
    assert get(k, "/metrics", token="tok")[0] == 200
    assert get(k, "/healthz") == (200, "ok\n")
    assert k.alive()
