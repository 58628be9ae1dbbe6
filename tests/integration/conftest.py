"""Fixtures for the integration tests.

    def test_x(start_cluster):
        c = start_cluster(regions="eu:2,us:2,ap:2", rtt_ms={"us": 40}, topics=["t:12:3"])
        c.bootstrap, c.brokers, c.topics, c.control("down 2")

    def test_y(start_cluster, start_kstretch):
        c = start_cluster(...)
        k = start_kstretch(c)            # mapped mode in front of c, ready
        k.bootstrap                      # "127.0.0.1:PORT": all a client is given

Everything a fixture starts is stopped at teardown, whatever the outcome
(SIGTERM, then SIGKILL after a grace period). kstretch must then exit 0, or
the test errors at teardown; when a test fails, the tail of each kstretch's
stderr is added to the report.
"""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402


@pytest.fixture
def process_log_dir(tmp_path):
    d = tmp_path / "logs"
    d.mkdir()
    return str(d)


@pytest.fixture
def start_cluster(process_log_dir):
    """Factory: start_cluster(regions=..., rtt_ms=..., topics=[...], follower_region=...) -> harness.Cluster."""
    started = []

    def start(regions="eu:2,us:2,ap:2", rtt_ms=None, topics=(), follower_region=None):
        c = harness.Cluster.start(process_log_dir, regions=regions, rtt_ms=rtt_ms, topics=topics,
                                  follower_region=follower_region, name=f"testcluster{len(started) + 1}")
        started.append(c)
        return c

    yield start
    for c in reversed(started):
        c.stop()


@pytest.fixture
def start_kstretch(process_log_dir):
    """Factory: start_kstretch(cluster_or_bootstrap, max_node_id=6, workers=2, extra_args=()) -> harness.Kstretch.

    kstretch runs with --log-level debug on free 127.0.0.1 ports: a block of
    max_node_id + 1 consecutive ports for broker.port.base, and one each for
    the bootstrap listener and the admin endpoint."""
    started = []

    def start(upstream, max_node_id=6, workers=2, extra_args=(), listen_port=None, host="127.0.0.1", wrapper=(),
              ports_of=None):
        bootstrap = upstream if isinstance(upstream, str) else upstream.bootstrap
        k = harness.Kstretch.start(process_log_dir, bootstrap, max_node_id=max_node_id, workers=workers,
                                   extra_args=extra_args, name=f"kstretch{len(started) + 1}", listen_port=listen_port,
                                   host=host, wrapper=wrapper, ports_of=ports_of)
        started.append(k)
        return k

    start.started = started
    yield start
    failures = []
    for k in reversed(started):
        rc = k.stop()
        if rc != 0:
            failures.append(f"{k.proc.name} exited with {rc}, not 0 on SIGTERM\n--- {k.proc.name} stderr ---\n"
                            f"{k.stderr_tail()}")
    assert not failures, "\n".join(failures)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed test shows the tail of what each kstretch it started wrote on stderr."""
    outcome = yield
    rep = outcome.get_result()
    if not rep.failed or rep.when not in ("setup", "call"):
        return
    factory = getattr(item, "funcargs", {}).get("start_kstretch")
    for k in getattr(factory, "started", ()):
        rep.sections.append((f"{k.proc.name} stderr (tail)", k.stderr_tail(12000)))


STANDARD = dict(regions="eu:2,us:2,ap:2", topics=["t:12:3"])


@pytest.fixture
def cluster(start_cluster):
    """Three regions of two brokers, no added latency, topic `t` with 12 partitions and RF 3."""
    return start_cluster(**STANDARD)


@pytest.fixture(scope="module")
def shared_cluster(tmp_path_factory):
    """The `cluster` layout, started once per test module: only for tests that
    leave its state as they found it (they may send commands that fail)."""
    c = harness.Cluster.start(str(tmp_path_factory.mktemp("shared-logs")), name="testcluster-shared", **STANDARD)
    yield c
    c.stop()
