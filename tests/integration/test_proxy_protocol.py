"""kstretch behind an L4 balancer that speaks the PROXY protocol (proxy.protocol).

A real HAProxy stands in front of every kstretch port (`send-proxy-v2`), on
127.0.0.2, the address kstretch advertises; kstretch listens on 127.0.0.1. A
client connecting from 127.0.0.5 is placed by `rack.cidr 127.0.0.5/32=us-a`:
kstretch only sees HAProxy's connections, so it can place the client only from
the PROXY header. A connection that skips the balancer (no header) is closed
with a log line; a real client (kcat) produces and reads back through it all.
"""
import socket
import time

import harness
import kafkawire
import records

LB_HOST = "127.0.0.2"
CLIENT_HOST = "127.0.0.5"
TOPIC = "t"
PARTITIONS = 6


def haproxy_in_front(k, tmp_path, version="v2", ports=None):
    """HAProxy on LB_HOST in front of every port of kstretch k (or of `ports`, each on 127.0.0.1)."""
    ports = ports or [k.listen_port] + sorted(k.listener_ports() - {k.listen_port})
    lines = ["global", "  maxconn 200", "defaults", "  mode tcp", "  timeout connect 5s", "  timeout client 60s",
             "  timeout server 60s"]
    for port in ports:
        lines += [f"listen p{port}", f"  bind {LB_HOST}:{port}",
                  f"  server k 127.0.0.1:{port} send-proxy{'-v2' if version == 'v2' else ''}"]
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text("\n".join(lines) + "\n")
    p = harness.ManagedProcess("haproxy", ["haproxy", "-f", str(cfg), "-db"], str(tmp_path))
    try:
        harness.wait_until(lambda: all(port_accepts(LB_HOST, port, p) for port in ports), 10,
                           what="haproxy listening")
    except BaseException:
        p.stop()
        raise
    return p


def port_accepts(host, port, p):
    assert p.proc.poll() is None, f"haproxy exited: {p.stderr_tail()}"
    try:
        socket.create_connection((host, port), timeout=1).close()
        return True
    except OSError:
        return False


def from_client_host(port):
    """A kafkawire connection to the balancer from 127.0.0.5."""
    c = kafkawire.Connection.__new__(kafkawire.Connection)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(10)
    s.bind((CLIENT_HOST, 0))
    s.connect((LB_HOST, port))
    c.sock, c.client_id, c._corr = s, "kstretch-tests", 0
    return c


def test_behind_haproxy_send_proxy_v2_the_client_is_placed_by_its_own_address(start_cluster, start_kstretch,
                                                                              tmp_path):
    harness.require_executable("/usr/sbin/haproxy", "haproxy", "run `make deps`")
    c = start_cluster(regions="eu:2,us:2,ap:2", topics=[f"{TOPIC}:{PARTITIONS}:3"])
    k = start_kstretch(c, extra_args=("--proxy-protocol", "v2", "--advertised-host", LB_HOST,
                                      "--rack-cidr", f"{CLIENT_HOST}/32=us-a"))
    lb = haproxy_in_front(k, tmp_path)
    try:
        conn = from_client_host(k.listen_port)
        with conn:
            md = conn.metadata_v12([TOPIC])
            local = conn.sock.getsockname()
        assert {b.host for b in md.brokers} == {LB_HOST}, "kstretch did not advertise the balancer's host"
        # The session is named by the client's own address and placed from it.
        addr = f"{local[0]}:{local[1]}"
        harness.wait_until(lambda: k.log_lines(f"session {addr}: client in rack us-a"), 5,
                           what="kstretch placing the client from the PROXY header")
        assert k.log_lines(f"session {addr}: PROXY header: the client is {addr}, connected through 127.0.0.1:")

        # A real client through the balancer: everything it learns is the balancer's.
        sent = records.make_records("lb", 600)
        env = harness.modern_rdkafka_env()
        harness.run([harness.kcat_path(), "-b", f"{LB_HOST}:{k.listen_port}", "-P", "-t", TOPIC, "-K", "\t",
                     "-X", "acks=all"], input="".join(f"{key}\t{v}\n" for key, v in sent).encode(), env=env,
                    timeout=90, what="kcat producer")
        got = harness.kcat_consume(f"{LB_HOST}:{k.listen_port}", TOPIC, "lb-group", env, timeout=90)
        records.assert_same_records(sent, got, PARTITIONS)

        # Straight to kstretch, skipping the balancer: no header, closed and logged.
        before = k.metrics()["kstretch_protocol_errors"]
        s = socket.create_connection(("127.0.0.1", k.listen_port), timeout=5)
        s.sendall(kafkawire.encode_request(kafkawire.API_API_VERSIONS, 0, 1, b""))
        try:
            assert s.recv(1) == b"", "kstretch answered a connection without a PROXY header"
        except ConnectionResetError:
            pass
        s.close()
        harness.wait_until(lambda: k.log_lines("no valid PROXY protocol v2 header"), 5, what="the log line")
        assert k.metrics()["kstretch_protocol_errors"] == before + 1
    finally:
        lb.stop()


def test_a_v1_header_sent_in_pieces_names_the_client(start_cluster, start_kstretch):
    c = start_cluster(regions="eu:1", topics=["t:1:1"])
    k = start_kstretch(c, max_node_id=3, extra_args=("--proxy-protocol", "v1", "--rack-cidr", "10.7.0.0/16=us-a"))
    with kafkawire.Connection("127.0.0.1", k.listen_port, timeout=10) as conn:
        header = b"PROXY TCP4 10.7.1.2 10.0.0.1 41000 9092\r\n"
        for i in range(0, len(header), 5):  # a trickle: kstretch waits for the whole line
            conn.sock.sendall(header[i:i + 5])
            time.sleep(0.02)
        assert conn.api_versions(version=2).error_code == 0
        conn.metadata_v12()
    harness.wait_until(lambda: k.log_lines("session 10.7.1.2:41000: client in rack us-a"), 5,
                       what="the client placed from the v1 header")


def test_regional_nodes_behind_haproxy_send_proxy_v2_name_the_client_by_its_own_address(start_cluster, start_kstretch,
                                                                                       tmp_path):
    """Two regional nodes (mode=regional) on 127.0.0.1, each behind HAProxy on LB_HOST at the same port, the
    address regional.nodes lists (what clients are told): the PROXY header names each client, a real client
    produces through one node and reads back through the other, and a connection without a header is closed."""
    harness.require_executable("/usr/sbin/haproxy", "haproxy", "run `make deps`")
    c = start_cluster(regions="eu:2,us:2,ap:2", topics=[f"{TOPIC}:{PARTITIONS}:3"], follower_region="eu")
    p1, p2 = harness.free_ports(2, "127.0.0.1")
    nodes = f"1@{LB_HOST}:{p1},2@{LB_HOST}:{p2}"
    ks = [start_kstretch(c, extra_args=("--mode", "regional", "--region", "eu", "--regional-nodes", nodes,
                                        "--node-id", str(node_id), "--proxy-protocol", "v2"), listen_port=port)
          for node_id, port in ((1, p1), (2, p2))]
    lb = haproxy_in_front(ks[0], tmp_path, ports=[p1, p2])
    try:
        conn = from_client_host(p1)
        with conn:
            md = conn.metadata_v12([TOPIC])
            local = conn.sock.getsockname()
        assert sorted((b.node_id, b.host, b.port) for b in md.brokers) == [(1, LB_HOST, p1), (2, LB_HOST, p2)]
        # The session is named by the client's own address, not HAProxy's.
        addr = f"{local[0]}:{local[1]}"
        harness.wait_until(lambda: ks[0].log_lines(f"regional {addr}: PROXY header: the client is {addr}, "
                                                   "connected through 127.0.0.1:"), 5,
                           what="kstretch naming the client from the PROXY header")

        # A real client through the balancer: produced through node 1, read back through node 2.
        sent = records.make_records("regional-lb", 600)
        env = harness.modern_rdkafka_env()
        harness.run([harness.kcat_path(), "-b", f"{LB_HOST}:{p1}", "-P", "-t", TOPIC, "-K", "\t",
                     "-X", "acks=all"], input="".join(f"{key}\t{v}\n" for key, v in sent).encode(), env=env,
                    timeout=90, what="kcat producer through the balancer to regional node 1")
        r = harness.run([harness.kcat_path(), "-b", f"{LB_HOST}:{p2}", "-C", "-t", TOPIC, "-o", "beginning",
                         "-c", str(len(sent)), "-f", harness.KCAT_FORMAT], env=env, timeout=90,
                        what="kcat consumer through the balancer from regional node 2")
        records.assert_same_records(sent, records.parse_consumed(r.stdout.decode()), PARTITIONS)
        for k in ks:
            assert k.metrics()["kstretch_regional_fragments_failed"] == 0

        # Straight to node 2, skipping the balancer: no header, closed and logged.
        before = ks[1].metrics()["kstretch_protocol_errors"]
        s = socket.create_connection(("127.0.0.1", p2), timeout=5)
        s.sendall(kafkawire.encode_request(kafkawire.API_API_VERSIONS, 0, 1, b""))
        try:
            assert s.recv(1) == b"", "kstretch answered a connection without a PROXY header"
        except ConnectionResetError:
            pass
        s.close()
        harness.wait_until(lambda: ks[1].log_lines("no valid PROXY protocol v2 header"), 5, what="the log line")
        harness.wait_until(lambda: ks[1].metrics()["kstretch_protocol_errors"] == before + 1, 5,
                           what="the connection without a header counted")
    finally:
        lb.stop()


def test_a_regional_node_reads_a_v1_header_sent_in_pieces(start_cluster, start_kstretch):
    """A regional session reads its requests into blocks it takes them from by reference: a header that
    comes in pieces (several reads, several blocks' pieces) is dropped from them and the requests after it
    are served."""
    c = start_cluster(regions="eu:1,us:1", topics=["t:2:2"])
    (p,) = harness.free_ports(1, "127.0.0.1")
    k = start_kstretch(c, extra_args=("--mode", "regional", "--region", "eu", "--regional-nodes", f"1@127.0.0.1:{p}",
                                      "--node-id", "1", "--proxy-protocol", "v1"), listen_port=p)
    with kafkawire.Connection("127.0.0.1", p, timeout=10) as conn:
        header = b"PROXY TCP4 10.7.1.2 10.0.0.1 41000 9092\r\n"
        for i in range(0, len(header), 5):  # a trickle: kstretch waits for the whole line
            conn.sock.sendall(header[i:i + 5])
            time.sleep(0.02)
        assert conn.api_versions(version=2).error_code == 0
        md = conn.metadata_v12(["t"])
        assert [(b.node_id, b.port) for b in md.brokers] == [(1, p)]
        assert len(md.topics[0].partitions) == 2
    harness.wait_until(lambda: k.log_lines("regional 10.7.1.2:41000: PROXY header: the client is 10.7.1.2:41000"),
                       5, what="the client named from the v1 header")
    assert k.metrics()["kstretch_protocol_errors"] == 0
