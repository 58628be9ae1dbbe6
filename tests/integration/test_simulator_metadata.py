"""The stretched-cluster simulator answers modern Metadata (v12, flexible
encoding) as a three-region cluster would: racks interleaved by node id,
every partition replicated once per region, leaders spread over the regions.
Checked with raw requests (kafkawire), independently of any Kafka client."""
import kafkawire

RACKS = ["eu-a", "us-a", "ap-a", "eu-b", "us-b", "ap-b"]
REGION_OF = {1: "eu", 2: "us", 3: "ap", 4: "eu", 5: "us", 6: "ap"}


def ask(cluster, node_id=1, topics=None):
    b = cluster.broker(node_id)
    return kafkawire.metadata_v12(b["host"], b["port"], topics)


def test_the_simulator_advertises_metadata_v12_in_api_versions(shared_cluster):
    b = shared_cluster.broker(1)
    with kafkawire.Connection(b["host"], b["port"]) as conn:
        av = conn.api_versions(version=2)
    assert av.error_code == 0
    lo, hi = av.api_keys[kafkawire.API_METADATA]
    assert lo <= 12 <= hi


def test_metadata_v12_lists_six_brokers_with_racks_interleaved_by_region(shared_cluster):
    md = ask(shared_cluster)
    assert [b.node_id for b in md.brokers] == [1, 2, 3, 4, 5, 6]
    assert [b.rack for b in md.brokers] == RACKS
    for b in md.brokers:
        sim = shared_cluster.broker(b.node_id)
        assert (b.host, b.port) == (sim["host"], sim["port"])
        assert sim["rack"] == b.rack and sim["region"] == REGION_OF[b.node_id]
    assert md.throttle_time_ms == 0
    assert md.cluster_id


def test_metadata_v12_partition_leaders_match_the_simulator_and_span_all_three_regions(shared_cluster):
    md = ask(shared_cluster)
    [t] = md.topics
    assert (t.error_code, t.name, t.is_internal) == (0, "t", False)
    assert t.topic_id != kafkawire.ZERO_UUID
    sim = {p["partition"]: p for p in shared_cluster.topic("t")["partitions"]}
    assert sorted(p.partition_index for p in t.partitions) == list(range(12))
    for p in t.partitions:
        assert p.error_code == 0
        assert p.leader_id == sim[p.partition_index]["leader"], f"partition {p.partition_index}"
        assert p.replica_nodes == sim[p.partition_index]["replicas"]
        assert sorted(p.isr_nodes) == sorted(p.replica_nodes)
        assert p.offline_replicas == []
        assert p.leader_id in p.replica_nodes
        assert sorted(REGION_OF[r] for r in p.replica_nodes) == ["ap", "eu", "us"], \
            f"partition {p.partition_index} replicas {p.replica_nodes} are not one per region"
    assert {REGION_OF[p.leader_id] for p in t.partitions} == {"eu", "us", "ap"}


def test_every_broker_answers_the_same_metadata(shared_cluster):
    first = ask(shared_cluster, 1)
    for node_id in range(2, 7):
        md = ask(shared_cluster, node_id)
        assert md.brokers == first.brokers
        assert md.topics == first.topics


def test_metadata_v12_for_one_topic_by_name_answers_only_that_topic(start_cluster):
    c = start_cluster(topics=["t:12:3", "other:3:3"])
    assert sorted(t.name for t in ask(c).topics) == ["other", "t"]
    md = ask(c, topics=["other"])
    assert [(t.name, len(t.partitions)) for t in md.topics] == [("other", 3)]


def test_metadata_v12_for_an_unknown_topic_without_auto_creation_is_unknown_topic_or_partition(shared_cluster):
    [t] = ask(shared_cluster, topics=["no-such-topic"]).topics
    assert (t.name, t.error_code, t.partitions) == ("no-such-topic", 3, [])


def test_mock_metadata_v12_responses_end_with_one_extra_byte_that_clients_ignore(shared_cluster):
    # librdkafka 2.12's mock writes the top-level tagged fields of Metadata v9+
    # twice. Clients do not check for trailing bytes; kstretch must not either
    # when it decodes this response (and a strict decoder sees the extra byte).
    md = ask(shared_cluster)
    assert md.trailing_bytes == 1
    b = shared_cluster.broker(1)
    with kafkawire.Connection(b["host"], b["port"]) as conn:
        r = conn.request(kafkawire.API_METADATA, 12, kafkawire.metadata_request_v12())
        assert r.data[-1:] == b"\x00"
        try:
            kafkawire.decode_metadata_response_v12(r, strict=True)
        except kafkawire.Malformed as e:
            assert "1 trailing bytes" in str(e)
        else:
            raise AssertionError("a strict decoder accepted the trailing byte")


def test_the_mock_reports_controller_id_0_which_is_not_a_broker(shared_cluster):
    # The mock never sets its controller id; kstretch's regional mode must not
    # expect the controller to be one of the brokers it lists.
    md = ask(shared_cluster)
    assert md.controller_id == 0
    assert 0 not in [b.node_id for b in md.brokers]
