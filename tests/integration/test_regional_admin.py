"""Regional mode's admin APIs (issue 16, "Admin and the rest") between raw
Kafka-protocol clients and a scripted broker (fakebroker.py: it offers every
API key kstretch knows, which librdkafka's mock does not), through one
regional node of a two-node eu region:

- an API regional mode cannot answer as the virtual cluster is left out of
  its ApiVersions answer (exactly those the README's "Every API key" table
  says are trimmed), and a client that sends one anyway is logged and closed
  while the node goes on serving others;
- DescribeConfigs of a broker named by a node id reaches a real broker by
  that broker's own id and comes back named by the node, the broker's
  identity configs shown as the node's;
- DescribeConfigs naming a broker id that is no regional node (neither
  virtual nor a real broker's) is answered INVALID_REQUEST per resource, in
  the client's order, by kstretch itself;
- a malformed DescribeConfigs is logged with where it broke and closes only
  its own client.
"""
import socket

import pytest

import harness
import kafkawire
from fakebroker import FakeBroker
from test_regional import LOCALHOST
from test_regional_api_table import api_c_keys, readme_table

API_DESCRIBE_CONFIGS = 32
API_DESCRIBE_LOG_DIRS = 35
INVALID_REQUEST = 42
BROKER = 4
BROKER_LOGGER = 8
REAL_BROKERS = [(101, "eu"), (102, "eu"), (201, "us")]


def describe_configs_v1(resources):
    """DescribeConfigs v1 (not flexible): resources are (type, name); every key, no synonyms."""
    w = kafkawire.Writer().int32(len(resources))
    for rtype, name in resources:
        w.int8(rtype).string(name).int32(-1)
    return w.boolean(False).bytes()


def decode_describe_configs_v1(r):
    """[(type, name, error, message, {config: value})]"""
    r.int32("throttle_time_ms")
    out = []

    def config():
        name, value = r.string(), r.string(nullable=True)
        r.boolean(), r.int8(), r.boolean()
        r.array(lambda: (r.string(), r.string(nullable=True), r.int8()), 1)
        return name, value

    def result():
        err = r.int16("error_code")
        msg = r.string(nullable=True, what="error_message")
        rtype = r.int8("resource_type")
        name = r.string(what="resource_name")
        configs = dict(r.array(config, 1))
        out.append((rtype, name, err, msg, configs))

    r.array(result, 1, what="results")
    r.end(True, "DescribeConfigsResponse v1")
    return out


def broker_describe_configs(header, r):
    """The scripted broker's DescribeConfigs v1: each resource answered with the identity a real broker shows."""
    assert header.api_version == 1
    resources = r.array(lambda: (r.int8(), r.string(), r.array(r.string, 2, nullable=True)), 7)
    w = kafkawire.Writer().int32(0).int32(len(resources))
    for rtype, name, _ in resources:
        w.int16(0).string(None).int8(rtype).string(name)
        configs = [("node.id", name), ("broker.rack", "eu-real-az"),
                   ("advertised.listeners", "PLAINTEXT://b101.real.internal:9092"), ("num.io.threads", "8")]
        w.int32(len(configs))
        for k, v in configs:
            w.string(k).string(v).boolean(True).int8(5).boolean(False).int32(0)
    return w.bytes()


@pytest.fixture
def scripted_node(start_kstretch):
    """A scripted broker offering every API key 0-94 (ApiVersions v0-2), three real brokers 101, 102 (eu)
    and 201 (us) at its address, and regional node 1 of nodes 1 and 2 in front of it."""
    keys = {k: (0, 0) for k in api_c_keys()}
    keys[kafkawire.API_METADATA] = (0, 12)
    keys[kafkawire.API_API_VERSIONS] = (0, 2)
    keys[API_DESCRIBE_CONFIGS] = (0, 1)
    with FakeBroker(brokers=REAL_BROKERS, api_versions=keys) as fb:
        fb.handlers[kafkawire.API_API_VERSIONS] = lambda h, r: kafkawire.api_versions_response_v0(keys) + (
            b"\0\0\0\0" if h.api_version >= 1 else b"")
        fb.handlers[API_DESCRIBE_CONFIGS] = broker_describe_configs
        p1, p2 = harness.free_ports(2, LOCALHOST)
        k = start_kstretch(fb.bootstrap, workers=1, listen_port=p1,
                           extra_args=("--mode", "regional", "--region", "eu", "--regional-nodes",
                                       f"1@{LOCALHOST}:{p1},2@{LOCALHOST}:{p2}", "--node-id", "1"))
        yield fb, keys, k


def test_apis_that_would_show_real_brokers_are_left_out_of_api_versions_and_refused_when_sent(scripted_node):
    fb, offered, k = scripted_node
    kinds = {key: kind for key, (_name, kind) in readme_table().items()}
    with kafkawire.Connection(LOCALHOST, k.listen_port, 10) as conn:
        seen = conn.api_versions(2).api_keys
    trimmed = {key for key in offered if kinds[key] == "trimmed"}
    assert len(trimmed) > 30, f"the README trims only {sorted(trimmed)}"
    assert set(seen) == set(offered) - trimmed, \
        f"offered through the node but trimmed in the README: {sorted(set(seen) & trimmed)}; " \
        f"not offered though the README keeps them: {sorted(set(offered) - trimmed - set(seen))}"

    # A client that sends a trimmed API anyway (DescribeLogDirs v1: the log dirs of one real broker).
    before = k.metrics().get("kstretch_regional_api_refused", 0)
    sent_before = len(fb.requests_of(API_DESCRIBE_LOG_DIRS))
    with socket.create_connection((LOCALHOST, k.listen_port), timeout=10) as s:
        s.sendall(kafkawire.encode_request(API_DESCRIBE_LOG_DIRS, 1, 5, kafkawire.Writer().int32(-1).bytes()))
        assert s.recv(1) == b"", "a request for an API not offered was answered instead of refused"
    k.wait_log(lambda t: "DescribeLogDirs (API key 35) v1 (corr 5) is not offered in regional mode" in t, 5,
               "the refusal's log line")
    assert k.metrics()["kstretch_regional_api_refused"] == before + 1
    assert len(fb.requests_of(API_DESCRIBE_LOG_DIRS)) == sent_before, "the refused request reached a broker"
    with kafkawire.Connection(LOCALHOST, k.listen_port, 10) as conn:  # the node goes on
        assert {b.node_id for b in conn.metadata_v12().brokers} == {1, 2}


def test_describe_configs_of_a_node_reaches_its_real_broker_by_its_id_and_shows_the_node(scripted_node):
    fb, _, k = scripted_node
    with kafkawire.Connection(LOCALHOST, k.listen_port, 10) as conn:
        conn.metadata_v12()  # as a client does first: the node learns the brokers
        got = decode_describe_configs_v1(conn.request(API_DESCRIBE_CONFIGS, 1, describe_configs_v1(
            [(BROKER, "2"), (2, "orders")])))
    (hdr, body), = fb.requests_of(API_DESCRIBE_CONFIGS)[-1:]
    r = kafkawire.Reader(body)
    sent = r.array(lambda: (r.int8(), r.string(), r.array(r.string, 2, nullable=True)), 7)
    assert [(t, n) for t, n, _ in sent][1] == (2, "orders"), "a topic resource goes as it came"
    real = sent[0][1]
    assert real in ("101", "102"), f"node 2 stands for {real!r}: not an eu broker"
    assert [(t, n, e) for t, n, e, _, _ in got] == [(BROKER, "2", 0), (2, "orders", 0)]
    configs = got[0][4]
    assert configs["node.id"] == "2", "node.id shows the node"
    assert configs["broker.rack"] == "eu", "broker.rack shows the region"
    assert configs["advertised.listeners"] is None, "a real address never reaches the client"
    assert configs["num.io.threads"] == "8"
    assert got[1][4]["node.id"] == "orders", "a topic's configs are not rewritten"
    assert k.metrics()["kstretch_regional_broker_configs"] == 1


def test_describe_configs_naming_no_regional_node_is_answered_invalid_request_per_resource(scripted_node):
    fb, _, k2 = scripted_node
    # 99: nobody's; 101: a real broker's id (the virtual cluster has no broker 101); not numbers.
    asked = [(BROKER, "99"), (BROKER, "101"), (BROKER_LOGGER, "node-1"), (BROKER, " 1"), (BROKER, "-7")]
    with kafkawire.Connection(LOCALHOST, k2.listen_port, 10) as conn:
        got = decode_describe_configs_v1(conn.request(API_DESCRIBE_CONFIGS, 1, describe_configs_v1(asked)))
        # The node still answers on the same connection afterwards.
        assert {b.node_id for b in conn.metadata_v12().brokers} == {1, 2}
    assert not fb.requests_of(API_DESCRIBE_CONFIGS), "nothing to ask a broker: answered by kstretch"
    assert [(t, n) for t, n, _, _, _ in got] == asked, "every resource answered, in the client's order"
    for rtype, name, err, msg, _ in got:
        assert err == INVALID_REQUEST, f"{rtype} {name!r} answered {err}"
        assert msg and "names no broker of this cluster" in msg
    assert k2.log_lines("DescribeConfigs v1", "5 broker resource(s) answered INVALID_REQUEST", '"99"'), k2.log()
    assert k2.metrics()["kstretch_regional_broker_configs_refused"] == len(asked)


def test_a_malformed_describe_configs_closes_only_its_client_with_a_log_line(scripted_node):
    fb, _, k1 = scripted_node
    valid = describe_configs_v1([(BROKER, "1")])
    hostile = [
        valid[:7],  # cut inside the first resource's name
        kafkawire.Writer().int32(0x7fffffff).bytes(),  # a count far beyond the bytes there
        kafkawire.Writer().int32(1).int8(BROKER).int16(-2).bytes(),  # a name length below -1
    ]
    with kafkawire.Connection(LOCALHOST, k1.listen_port, 10) as bystander:
        for i, body in enumerate(hostile):
            with socket.create_connection((LOCALHOST, k1.listen_port), timeout=10) as s:
                s.sendall(kafkawire.encode_request(API_DESCRIBE_CONFIGS, 1, 100 + i, body))
                assert s.recv(1) == b"", f"hostile body {i} was answered"
            assert {b.node_id for b in bystander.metadata_v12().brokers} == {1, 2}
    lines = k1.log_lines("malformed request: DescribeConfigs")
    assert len(lines) == len(hostile), k1.log()
    assert all("at byte" in line and "reading" in line for line in lines)
    assert k1.alive()


API_DESCRIBE_PRODUCERS = 61
NOT_LEADER_OR_FOLLOWER = 6


def describe_producers_v0(topics):
    """DescribeProducers v0 (flexible): topics are (name, [partition indexes])."""
    w = kafkawire.Writer().compact_array_len(topics)
    for name, parts in topics:
        w.compact_string(name).uvarint(len(parts) + 1)
        for p in parts:
            w.int32(p)
        w.empty_tags()
    return w.empty_tags().bytes()


def test_describe_producers_of_partitions_without_a_known_leader_is_answered_not_leader_and_a_bad_one_closes(
        scripted_node):
    """The scripted cluster has no topic: no partition has a leader the node
    knows, so each is answered NOT_LEADER_OR_FOLLOWER (the client refreshes
    its metadata and retries) and nothing reaches a broker; a DescribeProducers
    whose partition count runs past its bytes closes only its client."""
    fb, _, k = scripted_node
    with kafkawire.Connection(LOCALHOST, k.listen_port, 10) as conn:
        r = conn.request(API_DESCRIBE_PRODUCERS, 0, describe_producers_v0([("x", [0, 3]), ("y", [1])]))
        assert r.int32("throttle_time_ms") == 0
        got = []
        for _ in range(r.uvarint("topics") - 1):
            name = r.compact_string()
            for _ in range(r.uvarint("partitions") - 1):
                index, err = r.int32(), r.int16()
                r.compact_string(nullable=True)
                assert r.uvarint("active producers") == 1
                r.tagged_fields()
                got.append((name, index, err))
            r.tagged_fields()
        r.tagged_fields()
        r.end(True, "DescribeProducersResponse v0")
        assert got == [("x", 0, NOT_LEADER_OR_FOLLOWER), ("x", 3, NOT_LEADER_OR_FOLLOWER),
                       ("y", 1, NOT_LEADER_OR_FOLLOWER)], got
        with socket.create_connection((LOCALHOST, k.listen_port), timeout=10) as s:
            bad = kafkawire.Writer().compact_array_len([1]).compact_string("x").uvarint(1000).int32(0).bytes()
            s.sendall(kafkawire.encode_request(API_DESCRIBE_PRODUCERS, 0, 9, bad))
            assert s.recv(1) == b"", "a malformed DescribeProducers was answered"
        assert {b.node_id for b in conn.metadata_v12().brokers} == {1, 2}, "the first client is still served"
    assert not fb.requests_of(API_DESCRIBE_PRODUCERS)
    assert k.log_lines("malformed request: DescribeProducers", "at byte"), k.log()
