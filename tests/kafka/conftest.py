"""Fixtures of the real-Kafka suite (tests/kafka): the integration suite's
(start_kstretch, process_log_dir, the stderr report; see suite_support.py)
plus clusters of real Apache Kafka brokers (tests/cluster/kafkacluster.py).

JVMs start slowly on 2 cores, so a cluster is started once per test module
(`kafka`, three regions of one broker, RF 3, Kafka's rack-aware replica
selector) and every test makes its own topics with `fresh_topic`. A test that
stops a broker starts it again before it ends.
"""
import itertools
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
for p in (os.path.join(os.path.dirname(HERE), "integration"), HERE):
    if p not in sys.path:
        sys.path.insert(0, p)

import harness  # noqa: E402
import suite_support  # noqa: E402

suite_support.borrow_integration_fixtures(globals())

_topic_numbers = itertools.count(1)


def start_module_cluster(tmp_path_factory, name, **kwargs):
    log_dir = str(tmp_path_factory.mktemp(name))
    return harness.KafkaCluster.start(log_dir, name=name, **kwargs)


@pytest.fixture(scope="module")
def kafka(tmp_path_factory):
    """eu:1,us:1,ap:1 real brokers (ids 1=eu-a, 2=us-a, 3=ap-a), min.insync.replicas 2,
    RackAwareReplicaSelector, relays counting each broker's bytes."""
    c = start_module_cluster(tmp_path_factory, "kafka", regions="eu:1,us:1,ap:1", min_insync=2,
                             replica_selector="rack")
    yield c
    c.stop()


@pytest.fixture
def fresh_topic(request):
    """fresh_topic(cluster, partitions, rf=3) -> the name of a new topic; leaders rotate eu, us, ap."""
    def make(cluster, partitions, rf=3):
        base = request.node.name.replace("test_", "")[:40].replace("[", "-").replace("]", "")
        name = f"{base}-{next(_topic_numbers)}"
        cluster.must(f"create {name}:{partitions}:{rf}")
        cluster.refresh()
        return name
    return make
