"""Fixtures for the integration tests.

    def test_x(start_cluster):
        c = start_cluster(regions="eu:2,us:2,ap:2", rtt_ms={"us": 40}, topics=["t:12:3"])
        c.bootstrap, c.brokers, c.topics, c.control("down 2")

Everything a fixture starts is stopped at teardown, whatever the outcome
(SIGTERM, then SIGKILL after a grace period). A kstretch fixture follows the
same pattern: a factory that wraps harness.ManagedProcess([harness.KSTRETCH,
...], log_dir), waits for its readiness with a bounded read_line/wait_until,
and stops every process it started in its teardown.
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
