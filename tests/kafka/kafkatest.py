"""What the real-Kafka tests share: the checks that a client went through
kstretch only, and the bytes each real broker served."""
import harness

CLIENT_TIMEOUT_S = 120


def relay_snapshot(cluster):
    return cluster.relay_bytes()


def relay_delta(before, after):
    """Per broker: bytes and connections counted by its relays between two snapshots,
    and which processes connected ({pid: connections})."""
    out = {}
    for broker, a in after.items():
        b = before.get(broker, {"to_broker": 0, "from_broker": 0, "connections": 0, "peer_pids": {}})
        pids = {int(p): n - b["peer_pids"].get(p, 0) for p, n in a["peer_pids"].items()}
        out[broker] = {"to_broker": a["to_broker"] - b["to_broker"],
                       "from_broker": a["from_broker"] - b["from_broker"],
                       "connections": a["connections"] - b["connections"],
                       "peer_pids": {p: n for p, n in pids.items() if n > 0}}
    return out


# A relay names a connection's process by finding its socket once it accepted
# it; a connection its peer already closed by then (kstretch closing a broker
# connection milliseconds after opening it, when its client gave up) is
# counted with pid -1: gone before it could be named. At most this many such
# connections in a window are taken as that, and never on a broker no
# kstretch connection reached; any named process other than kstretch fails.
UNNAMED_MAX = 2


def assert_only_kstretch_reached_the_brokers(delta, k):
    """Every connection the brokers' client listeners accepted in the window came
    from kstretch's process: the clients learned no broker address but kstretch's."""
    others = {broker: d["peer_pids"] for broker, d in delta.items()
              if set(d["peer_pids"]) - {k.pid, -1}}
    assert not others, f"connections to brokers from processes other than kstretch ({k.pid}): {others}"
    unnamed = sum(d["peer_pids"].get(-1, 0) for d in delta.values())
    assert unnamed <= UNNAMED_MAX, f"{unnamed} broker connections whose process was gone before it was named: {delta}"
    assert any(d["peer_pids"].get(k.pid) for d in delta.values()) or not unnamed, \
        f"only unnamed connections reached the brokers: {delta}"
    assert sum(d["connections"] for d in delta.values()) > 0, "kstretch made no connection to the brokers"


def librdkafka_version(stderr):
    return harness.client_version(stderr)
