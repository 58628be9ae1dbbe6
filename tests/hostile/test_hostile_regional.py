"""Hostile peers of a kstretch in mode=regional: clients sending thousands of
mutated requests, and a broker that misbehaves toward the shared upstream
connections.

The broker is scripted (fakebroker.py): librdkafka's mock aborts on a
malformed Produce (see test_hostile_clients.py). One listener stands for two
brokers, node 3 (rack eu-a) and node 4 (rack eu-b); its Metadata v12 carries
the topics the captured requests name and the probe topic, even partitions
led by node 3 and odd ones by node 4, so a regional session splits Produce,
Fetch, ListOffsets, OffsetForLeaderEpoch and DeleteRecords into a part per
node, sends them on the worker's shared connections and merges the answers.
The broker (RegionalSink) answers what it can read: the split APIs at the
version it decodes (Produce v9, Fetch v12, ListOffsets v7,
OffsetForLeaderEpoch v4, DeleteRecords v2) from a small log it keeps, so a
Fetch reads back what a Produce wrote; other versions of Produce, Fetch,
Metadata, FindCoordinator and ApiVersions with captured answers (their
correlation ids set), and it closes the connection on anything else.

    KSTRETCH_FUZZ_SEED=N     replay a run (the seed is printed; default: from the clock)
    KSTRETCH_FUZZ_CASES=N    cases (default 20,000)
    KSTRETCH_FUZZ_SECONDS=S  time budget for the cases (default 90 s; the run stops early, never late)
"""
import collections
import os
import struct
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

import harness
import hostilelib
import kafkawire
import netfuzz
from fakebroker import FakeBroker
from hostilelib import LOCALHOST
from netfuzz import pointing_at, vector_pairs

PROBE = "rfuzz"
PROBE_PARTITIONS = 4
# The topics of the captured requests (by name, or by the id they carry), 12 partitions each.
CAPTURED_TOPICS = [("t", "a44fa642f01e47488f098a53417e5779"), ("kp-topic", None), ("kjs-topic", None),
                   ("t44", "9c66c6dea87b4e94ac7e4307dd39545a")]
NODES = ((3, "eu-a"), (4, "eu-b"))
NODE_ID = 1  # the regional node's own id: the only broker its clients see
NOT_LEADER_OR_FOLLOWER = 6
UNKNOWN_TOPIC_OR_PARTITION = 3
LEADER_EPOCH = 7
BATCH = 500
THREADS = 16
POOL = 2
WORKERS = 2
# As for mapped mode (test_hostile_clients.py): 16 fuzz connections at a time,
# each bounded by its output watermarks; RSS after a batch at most this above
# the warm baseline.
RSS_GROWTH_BOUND_KIB = 32 << 10


def leader(partition):
    return NODES[partition % 2][0]


def topic_id(name, hex_id):
    return bytes.fromhex(hex_id) if hex_id else struct.pack(">16s", name.encode().ljust(16, b"\x01"))


def find_coordinator_answer(version, node_id, host, port):
    """FindCoordinatorResponse v0-3 naming one coordinator."""
    w = kafkawire.Writer()
    if version >= 1:
        w.int32(0)
    w.int16(0)
    if version >= 3:
        w.compact_string(None).int32(node_id).compact_string(host).int32(port).empty_tags()
    else:
        if version >= 1:
            w.string(None)
        w.int32(node_id).string(host).int32(port)
    return w.bytes()


def records_in(batch):
    """The record count of a v2 batch (1 when it is too short to say)."""
    return max(1, struct.unpack(">i", batch[57:61])[0]) if len(batch) >= 61 else 1


class RegionalSink:
    """The scripted broker's answers (see the module's docstring). `misbehave`,
    when set, is asked first: fn(header, decoded request or None, the proper
    answer body) -> an answer to give instead (any FakeBroker handler
    result), or None to answer properly."""

    def __init__(self, fb):
        self.fb = fb
        fb.broker_list = [kafkawire.MetadataBroker(n, fb.host, fb.port, rack) for n, rack in NODES]
        self.pairs = {key: [pointing_at(r, fb.port) for r in resps] for key, (_, resps) in vector_pairs().items()}
        self.topics = {name: (topic_id(name, hex_id), 12) for name, hex_id in CAPTURED_TOPICS}
        self.topics[PROBE] = (topic_id(PROBE, None), PROBE_PARTITIONS)
        self.lock = threading.Lock()
        self.log = collections.defaultdict(list)  # (topic, partition) -> [(base offset, batch)]
        self.next_offset = collections.Counter()
        self.answered = collections.Counter()
        self.misbehave = None
        self.decoders = {
            (kafkawire.API_PRODUCE, 9): (kafkawire.decode_produce_request_v9, self.produce),
            (kafkawire.API_FETCH, 12): (kafkawire.decode_fetch_request_v12, self.fetch),
            (kafkawire.API_LIST_OFFSETS, 7): (kafkawire.decode_list_offsets_request_v7, self.list_offsets),
            (kafkawire.API_OFFSET_FOR_LEADER_EPOCH, 4): (kafkawire.decode_offset_for_leader_epoch_request_v4,
                                                         self.offset_for_leader_epoch),
            (kafkawire.API_DELETE_RECORDS, 2): (kafkawire.decode_delete_records_request_v2, self.delete_records),
            (kafkawire.API_METADATA, 12): (lambda r: None, lambda _: self.metadata()),
        }
        for api in (kafkawire.API_PRODUCE, kafkawire.API_FETCH, kafkawire.API_LIST_OFFSETS, kafkawire.API_METADATA,
                    kafkawire.API_FIND_COORDINATOR, kafkawire.API_API_VERSIONS, kafkawire.API_DELETE_RECORDS,
                    kafkawire.API_OFFSET_FOR_LEADER_EPOCH):
            fb.handlers[api] = self.answer

    def metadata(self):
        topics = []
        for name, (tid, n) in sorted(self.topics.items()):
            parts = [kafkawire.MetadataPartition(0, p, leader(p), LEADER_EPOCH, [leader(p), leader(p + 1)],
                                                 [leader(p), leader(p + 1)], []) for p in range(n)]
            topics.append(kafkawire.MetadataTopic(0, name, tid, False, parts, -2147483648))
        return kafkawire.metadata_response_v12(self.fb.broker_list, controller_id=NODES[0][0], topics=topics)

    def known(self, topic, partition):
        return topic in self.topics and 0 <= partition < self.topics[topic][1]

    def produce(self, req):
        acks, parts = req
        out = []
        with self.lock:
            for topic, p, batch in parts:
                if not self.known(topic, p):
                    out.append((topic, p, UNKNOWN_TOPIC_OR_PARTITION, -1))
                    continue
                base = self.next_offset[topic, p]
                if batch:
                    self.next_offset[topic, p] += records_in(batch)
                    if topic == PROBE:
                        self.log[topic, p].append((base, kafkawire.with_base_offset(batch, base)))
                out.append((topic, p, 0, base))
        return FakeBroker.NO_RESPONSE if acks == 0 else kafkawire.produce_response_v9(out)

    def fetch(self, parts):
        out = []
        with self.lock:
            for topic, p, offset in parts:
                if not self.known(topic, p):
                    out.append((topic, p, UNKNOWN_TOPIC_OR_PARTITION, -1, None))
                    continue
                records = b"".join(b for base, b in self.log[topic, p] if base >= offset)
                out.append((topic, p, 0, self.next_offset[topic, p], records))
        return kafkawire.fetch_response_v12(out)

    def list_offsets(self, parts):
        with self.lock:
            return kafkawire.list_offsets_response_v7(
                [(t, p, 0, self.next_offset[t, p] if ts == -1 else 0) if self.known(t, p)
                 else (t, p, UNKNOWN_TOPIC_OR_PARTITION, -1) for t, p, ts in parts])

    def offset_for_leader_epoch(self, parts):
        with self.lock:
            return kafkawire.offset_for_leader_epoch_response_v4(
                [(t, p, 0, LEADER_EPOCH, self.next_offset[t, p]) if self.known(t, p)
                 else (t, p, UNKNOWN_TOPIC_OR_PARTITION, -1, -1) for t, p, _ in parts])

    def delete_records(self, parts):
        return kafkawire.delete_records_response_v2(
            [(t, p, 0, off) if self.known(t, p) else (t, p, UNKNOWN_TOPIC_OR_PARTITION, -1) for t, p, off in parts])

    def answer(self, header, body):
        try:
            key = (header.api_key, header.api_version)
            req = None
            if key in self.decoders:
                decode, build = self.decoders[key]
                req = decode(body)
                out = build(req)
            elif header.api_key == kafkawire.API_FIND_COORDINATOR and 0 <= header.api_version <= 3:
                out = find_coordinator_answer(header.api_version, NODES[0][0], self.fb.host, self.fb.port)
            elif key in self.pairs and header.api_key not in (kafkawire.API_FIND_COORDINATOR,
                                                               kafkawire.API_METADATA):
                # Captured Metadata answers name the capture's brokers: only the v12 one above agrees with the rest.
                frame = self.pairs[key][0]
                out = FakeBroker.Raw(frame[:4] + struct.pack(">i", header.correlation_id) + frame[8:])
            else:
                return None
            if self.misbehave:
                instead = self.misbehave(header, req, out)
                if instead is not None:
                    return instead
            self.answered[key] += 1
            return out
        except Exception:  # noqa: BLE001 - a request it cannot make sense of: close, as a broker would
            return None


def extra_seeds():
    """Requests of the split APIs at the versions the sink answers in full
    (no captured vectors exist for ListOffsets, OffsetForLeaderEpoch,
    DeleteRecords), each over partitions of both nodes."""
    parts = [(PROBE, p) for p in range(PROBE_PARTITIONS)] + [("t", 0), ("t", 5), ("nosuch", 0), (PROBE, 99)]
    batch = kafkawire.record_batch([(b"k", b"fuzz")])
    reqs = {
        "regional-produce-v9": (kafkawire.API_PRODUCE, 9,
                                kafkawire.produce_request_v9([(t, p, batch) for t, p in parts])),
        "regional-produce-v9-acks0": (kafkawire.API_PRODUCE, 9,
                                      kafkawire.produce_request_v9([(PROBE, 0, batch), (PROBE, 1, batch)], acks=0)),
        "regional-fetch-v12": (kafkawire.API_FETCH, 12,
                               kafkawire.fetch_request(12, [(t, p, 0) for t, p in parts], max_wait_ms=0)),
        "regional-listoffsets-v7": (kafkawire.API_LIST_OFFSETS, 7,
                                    kafkawire.list_offsets_request_v7([(t, p, -1) for t, p in parts])),
        "regional-offsetforleaderepoch-v4": (kafkawire.API_OFFSET_FOR_LEADER_EPOCH, 4,
                                             kafkawire.offset_for_leader_epoch_request_v4(
                                                 [(t, p, LEADER_EPOCH) for t, p in parts])),
        "regional-deleterecords-v2": (kafkawire.API_DELETE_RECORDS, 2,
                                      kafkawire.delete_records_request_v2([(t, p, 0) for t, p in parts])),
        "regional-metadata-v12": (kafkawire.API_METADATA, 12, kafkawire.metadata_request_v12([PROBE, "t"])),
    }
    return [(name, kafkawire.encode_request(api, ver, 1, body, "fuzz")) for name, (api, ver, body) in reqs.items()]


def start_regional(start_kstretch, fb, *extra):
    (port,) = harness.free_ports(1, LOCALHOST)
    args = ("--mode", "regional", "--region", "eu", "--regional-nodes", f"{NODE_ID}@{LOCALHOST}:{port}",
            "--node-id", str(NODE_ID), "--regional-upstream-connections", str(POOL), "--log-level", "info", *extra)
    return start_kstretch(fb.bootstrap, workers=WORKERS, extra_args=args, listen_port=port)


def at_rest(k):
    """(descriptors less the shared upstream connections, RSS KiB) with no
    client connected: the pool keeps or reopens its connections as used, so
    they are counted apart (read before and after, equal)."""
    for _ in range(20):
        up0 = k.metrics()["kstretch_regional_upstream_connections"]
        fds, rss = harness.quiet(k)
        if k.metrics()["kstretch_regional_upstream_connections"] == up0:
            return fds - up0, rss
    raise AssertionError("the shared upstream connections kept changing with no client connected")


def produce_v9(conn, parts, acks=-1):
    """Produce v9 of [(topic, partition, batch)] on a kafkawire.Connection: [(topic, partition, error, base)]."""
    r = conn.request(kafkawire.API_PRODUCE, 9, kafkawire.produce_request_v9(parts, acks=acks))
    return kafkawire.decode_produce_response_v9(r)


def probe(k, tag):
    """A well-formed client on a new connection: ApiVersions, Metadata v12
    (the virtual node alone, leading every partition), a Produce v9 of one
    record to every probe partition (split over nodes 3 and 4, merged without
    error), a Fetch v12 reading each back and a ListOffsets v7 of the ends."""
    with kafkawire.Connection(LOCALHOST, k.listen_port, client_id="probe") as c:
        av = c.api_versions(2)
        assert av.error_code == 0 and av.api_keys[kafkawire.API_PRODUCE][1] >= 9, av
        md = c.metadata_v12([PROBE])
        assert [(b.node_id, b.port, b.rack) for b in md.brokers] == [(NODE_ID, k.listen_port, "eu")], md.brokers
        t = md.topic(PROBE)  # the broker names every topic it has, as asked or not
        assert t.error_code == 0 and [p.leader_id for p in t.partitions] == [NODE_ID] * PROBE_PARTITIONS, t
        values = {p: f"{tag}/{p}".encode() for p in range(PROBE_PARTITIONS)}
        got = produce_v9(c, [(PROBE, p, kafkawire.record_batch([(b"probe", v)])) for p, v in values.items()])
        assert [(tp, p, err) for tp, p, err, _ in got] == [(PROBE, p, 0) for p in values], f"{tag}: Produce {got}"
        base = {p: b for _, p, _, b in got}
        r = c.request(kafkawire.API_FETCH, 12,
                      kafkawire.fetch_request(12, [(PROBE, p, base[p]) for p in values], max_wait_ms=0))
        err, session, parts = kafkawire.decode_fetch_response_v12(r)
        assert (err, session) == (0, 0)
        assert [(p, e) for _, p, e, _, _ in parts] == [(p, 0) for p in values], f"{tag}: Fetch {parts}"
        for _, p, _, hw, records in parts:
            assert hw == base[p] + 1 and values[p] in records, f"{tag}: partition {p} did not read back its record"
        r = c.request(kafkawire.API_LIST_OFFSETS, 7,
                      kafkawire.list_offsets_request_v7([(PROBE, p, -1) for p in values]))
        ends = kafkawire.decode_list_offsets_response_v7(r)
        assert ends == [(PROBE, p, 0, base[p] + 1) for p in values], f"{tag}: ListOffsets {ends}"


@pytest.fixture
def regional(start_kstretch):
    """A regional node in front of the scripted broker, warm (one probe through it)."""
    with FakeBroker(brokers=[NODES[0]], backlog=1024) as fb:
        sink = RegionalSink(fb)
        k = start_regional(start_kstretch, fb)
        probe(k, "warm")
        yield k, fb, sink
        k.stop()


def test_thousands_of_mutated_requests_to_a_regional_node_leave_its_split_and_merge_serving_with_no_fd_or_memory_growth(
        regional, hostile_results):
    k, fb, sink = regional
    seed = int(os.environ.get("KSTRETCH_FUZZ_SEED") or time.time_ns() % (1 << 32))
    total = int(os.environ.get("KSTRETCH_FUZZ_CASES") or 20000)
    budget = float(os.environ.get("KSTRETCH_FUZZ_SECONDS") or 90)
    print(f"regional network fuzzer: seed {seed} (KSTRETCH_FUZZ_SEED={seed} replays it), {total} cases, "
          f"{budget:.0f} s budget")
    seeds = extra_seeds()
    ports = [k.listen_port]
    fd0, rss0 = at_rest(k)
    m0 = k.metrics()
    t0 = time.monotonic()
    done = batches = answered = closed = 0
    by_mutator = collections.Counter()
    bad = []
    peak_rss = rss0
    fds = fd0
    with ThreadPoolExecutor(THREADS) as pool:
        while done < total and time.monotonic() - t0 < budget:
            cases = [netfuzz.make_case(seed, i, len(ports), seeds) for i in range(done, min(done + BATCH, total))]
            for case, res in zip(cases, pool.map(lambda cs: netfuzz.run_case(cs, LOCALHOST, ports), cases)):
                by_mutator[case.mutator] += 1
                answered += res.answers > 0
                closed += res.closed_by_kstretch
                if res.bad:
                    bad.append(f"{res.bad}: {netfuzz.describe(case)}")
            done += len(cases)
            batches += 1
            last = f"cases {cases[0].number}..{cases[-1].number} (seed {seed})"
            assert k.alive(), f"kstretch died after {last}\n{k.stderr_tail()}"
            assert not bad, f"after {last}: " + "\n".join(bad[:5])
            fds, rss = at_rest(k)
            peak_rss = max(peak_rss, rss)
            assert fds == fd0, f"after {last}: kstretch has {fds} descriptors besides its upstream pool, {fd0} before"
            hostilelib.assert_rss_within(rss, rss0 + RSS_GROWTH_BOUND_KIB, f"after {last}")
            probe(k, f"batch{batches}")
    elapsed = time.monotonic() - t0
    m = k.metrics()
    frags = m["kstretch_regional_fragments"] - m0["kstretch_regional_fragments"]
    failed = m["kstretch_regional_fragments_failed"] - m0["kstretch_regional_fragments_failed"]
    split = sum(n for (api, _), n in sink.answered.items() if api not in (kafkawire.API_METADATA,
                                                                          kafkawire.API_API_VERSIONS))
    figures = (f"{done:,} cases in {elapsed:.0f} s (seed {seed}, {THREADS} connections at a time) to one regional "
               f"node over a scripted broker standing for nodes 3 and 4: {answered:,} got answers, {closed:,} closed "
               f"by kstretch, {m['kstretch_protocol_errors']:,} protocol errors logged; {frags:,} fragments sent on "
               f"the shared connections ({failed:,} answered as failed), {split:,} Produce/Fetch/ListOffsets/"
               f"OffsetForLeaderEpoch/DeleteRecords/FindCoordinator parts answered by the broker; after each of "
               f"{batches} batches a client's ApiVersions, Metadata v12, Produce v9 split over both nodes, Fetch v12 "
               f"and ListOffsets v7 were merged without error; kstretch fds (besides its upstream pool) {fd0} -> "
               f"{fds}, RSS {rss0 / 1024:.1f} MiB -> peak {peak_rss / 1024:.1f} MiB (bound "
               f"+{RSS_GROWTH_BOUND_KIB >> 10} MiB)")
    print(figures)
    print("cases per mutator:", dict(by_mutator))
    print("answered by the broker:", dict(sink.answered))
    hostile_results["network fuzzer (regional node)"] = figures
    assert done >= min(total, 1000), f"only {done} cases ran within {budget} s"
    assert m["kstretch_protocol_errors"] > 0, "no case was malformed enough for kstretch to say so"
    for key in ((0, 9), (1, 12), (2, 7), (21, 2), (23, 4)):
        assert sink.answered[key] > 0, f"no fuzz case's {key} part reached the broker: the split path went untested"


# ---------------------------------------------------------------- a broker misbehaving toward the shared connections
#
# A client ("victim") produces one record to every probe partition: its part
# for node 3 (even partitions) is answered wrongly, its part for node 4 (odd)
# properly. Another client ("bystander"), connected throughout, produces
# before and after on the same worker's shared connections.

ANSWER_TIMEOUT_MS = 1500  # request.timeout.ms of the node in these tests


def victims_part_for_node_3(header, req):
    return (header.client_id == "victim" and header.api_key == kafkawire.API_PRODUCE and req is not None
            and any(t == PROBE and p % 2 == 0 for t, p, _ in req[1]))


def proper_frame(header, body):
    return kafkawire.encode_response(header.api_key, header.api_version, header.correlation_id, body)


def wrong_correlation_id(header, body):
    return FakeBroker.Raw(kafkawire.encode_response(header.api_key, header.api_version, header.correlation_id + 1000,
                                                    body))


def garbage_answer(header, body):
    return FakeBroker.Raw(kafkawire.encode_response(header.api_key, header.api_version, header.correlation_id,
                                                    bytes(range(200, 237))))


def truncated_answer(header, body):
    frame = proper_frame(header, body)
    cut = len(frame) // 2
    return FakeBroker.Raw(struct.pack(">i", cut - 4) + frame[4:cut])  # a whole frame, the body cut short


def closed_mid_answer(header, body):
    return FakeBroker.Raw(proper_frame(header, body)[:30], close=True)  # the size promises more


def never_answers(header, body):
    return FakeBroker.NO_RESPONSE


# name: (what the broker does to the victim's part, what kstretch's log line says, the connection fails)
PRODUCE_MISBEHAVIOURS = {
    "wrong correlation id": (wrong_correlation_id, "does not answer the oldest request", True),
    "garbage answer": (garbage_answer, "Produce v9: node 3's answer does not decode", False),
    "truncated answer": (truncated_answer, "Produce v9: node 3's answer does not decode", False),
    "closed mid-answer": (closed_mid_answer, "broker closed the connection", True),
    "never answers": (never_answers, f"no answer in request.timeout.ms ({ANSWER_TIMEOUT_MS} ms)", True),
}


def produce_everywhere(conn, tag):
    batch = kafkawire.record_batch([(tag.encode(), tag.encode())])
    return produce_v9(conn, [(PROBE, p, batch) for p in range(PROBE_PARTITIONS)])


def misbehaving_setup(start_kstretch, fb):
    k = start_regional(start_kstretch, fb, "--request-timeout-ms", str(ANSWER_TIMEOUT_MS))
    probe(k, "warm")
    return k


@pytest.mark.parametrize("name", list(PRODUCE_MISBEHAVIOURS))
def test_a_broker_misbehaving_on_a_produce_part_fails_only_that_part_retriably_and_other_sessions_go_on(
        start_kstretch, hostile_results, name):
    answer, logged, conn_fails = PRODUCE_MISBEHAVIOURS[name]
    with FakeBroker(brokers=[NODES[0]], backlog=64) as fb:
        sink = RegionalSink(fb)
        k = misbehaving_setup(start_kstretch, fb)
        fd0, _ = at_rest(k)
        m0 = k.metrics()
        with kafkawire.Connection(LOCALHOST, k.listen_port, client_id="bystander") as by:
            assert [e for _, _, e, _ in produce_everywhere(by, "before")] == [0] * PROBE_PARTITIONS
            sink.misbehave = lambda h, req, out: answer(h, out) if victims_part_for_node_3(h, req) else None
            t0 = time.monotonic()
            with kafkawire.Connection(LOCALHOST, k.listen_port, timeout=ANSWER_TIMEOUT_MS / 1000 * 3 + 5,
                                      client_id="victim") as v:
                got = produce_everywhere(v, "victim")
            took = time.monotonic() - t0
            # The client's own answer: node 3's partitions retriable, node 4's written.
            assert [(p, e) for _, p, e, _ in got] == \
                [(p, NOT_LEADER_OR_FOLLOWER if leader(p) == 3 else 0) for p in range(PROBE_PARTITIONS)], got
            text = k.wait_log(lambda text: logged in text, 10, f"a log line saying '{logged}'")
            line = next(ln for ln in text.splitlines() if logged in ln).split(" ", 2)[-1].strip()  # level: message
            assert "node 3" in line, f"the log line does not name the broker: {line}"
            if answer is never_answers:  # the shared connection's own timeout, not the client's
                # It counts the connection's silence, which began with the bystander's
                # answer a moment before t0: a little under the timeout from here.
                assert ANSWER_TIMEOUT_MS / 1000 - 0.25 <= took < ANSWER_TIMEOUT_MS / 1000 * 2 + 1, \
                    f"answered in {took:.3f} s"
            sink.misbehave = None
            assert [e for _, _, e, _ in produce_everywhere(by, "after")] == [0] * PROBE_PARTITIONS, \
                "a session connected throughout was not served after the broker misbehaved"
        probe(k, "after")
        assert k.alive()
        fds, _ = at_rest(k)
        assert fds == fd0, f"kstretch has {fds} descriptors besides its upstream pool, {fd0} before"
        m = k.metrics()
        failed = m["kstretch_regional_fragments_failed"] - m0["kstretch_regional_fragments_failed"]
        assert failed == (1 if conn_fails else 0), f"{failed} fragments answered as failed"
    hostile_results[f"regional broker: {name}"] = (
        f"the victim's Produce answered in {took:.1f} s, node 3's partitions NOT_LEADER_OR_FOLLOWER, node 4's "
        f"written; logged: {line[:200]}; a session connected throughout served after; fds "
        f"{fd0} -> {fds}")


def test_a_broker_answering_a_whole_request_with_a_wrong_correlation_id_closes_only_that_client(
        start_kstretch, hostile_results):
    """Metadata goes whole to one broker: with its answer lost, the README says
    the client is closed (it reconnects and asks again)."""
    with FakeBroker(brokers=[NODES[0]], backlog=64) as fb:
        sink = RegionalSink(fb)
        k = misbehaving_setup(start_kstretch, fb)
        fd0, _ = at_rest(k)
        with kafkawire.Connection(LOCALHOST, k.listen_port, client_id="bystander") as by:
            by.metadata_v12([PROBE])
            sink.misbehave = lambda h, req, out: (wrong_correlation_id(h, out) if h.client_id == "victim"
                                                  and h.api_key == kafkawire.API_METADATA else None)
            with kafkawire.Connection(LOCALHOST, k.listen_port, timeout=10, client_id="victim") as v:
                with pytest.raises(ConnectionError):
                    v.metadata_v12([PROBE])
            k.wait_log(lambda text: "does not answer the oldest request" in text, 10, "the broker's wrong answer")
            k.wait_log(lambda text: "Metadata v12 (corr 1): cannot answer" in text, 10, "the victim's close")
            sink.misbehave = None
            assert by.metadata_v12([PROBE]).topic(PROBE).error_code == 0
            assert [e for _, _, e, _ in produce_everywhere(by, "after")] == [0] * PROBE_PARTITIONS
        probe(k, "after")
        fds, _ = at_rest(k)
        assert k.alive() and fds == fd0, f"kstretch has {fds} descriptors besides its upstream pool, {fd0} before"
    hostile_results["regional broker: wrong correlation id on a whole request"] = (
        f"the victim's Metadata v12: its connection closed, as the README says; a session connected throughout "
        f"served after; fds {fd0} -> {fds}")


def test_a_broker_throttling_a_part_is_counted_and_the_client_gets_the_largest_throttle_of_its_parts(
        start_kstretch, hostile_results):
    """KIP-219: a broker answers a throttled request with ThrottleTimeMs and
    then stops reading the connection for that long. On a shared connection
    that delays every client whose requests take it; kstretch counts such
    answers (kstretch_regional_throttled_answers, _throttle_ms) and hands the
    client the largest ThrottleTimeMs of its parts, so the client backs off."""
    with FakeBroker(brokers=[NODES[0]], backlog=64) as fb:
        sink = RegionalSink(fb)
        k = misbehaving_setup(start_kstretch, fb)
        m0 = k.metrics()

        def throttle(h, req, out):
            if h.client_id != "throttled" or not isinstance(out, bytes):
                return None
            if h.api_key == kafkawire.API_PRODUCE and any(p % 2 == 0 for _, p, _ in req[1]):  # node 3's part
                return out[:-5] + struct.pack(">i", 300) + out[-1:]  # ThrottleTimeMs, then the empty tags
            if h.api_key == kafkawire.API_FETCH:
                return struct.pack(">i", 200 if any(p % 2 for _, p, _ in req) else 100) + out[4:]
            return None

        sink.misbehave = throttle
        with kafkawire.Connection(LOCALHOST, k.listen_port, client_id="throttled") as c:
            batch = kafkawire.record_batch([(b"t", b"t")])
            r = c.request(kafkawire.API_PRODUCE, 9,
                          kafkawire.produce_request_v9([(PROBE, p, batch) for p in range(PROBE_PARTITIONS)]))
            produce_throttle, = struct.unpack(">i", r.data[-5:-1])
            assert [e for _, _, e, _ in kafkawire.decode_produce_response_v9(r)] == [0] * PROBE_PARTITIONS
            r = c.request(kafkawire.API_FETCH, 12, kafkawire.fetch_request(
                12, [(PROBE, p, 0) for p in range(PROBE_PARTITIONS)], max_wait_ms=0))
            fetch_throttle, = struct.unpack(">i", r.data[r.pos:r.pos + 4])
            err, _, parts = kafkawire.decode_fetch_response_v12(r)
            assert err == 0 and [e for _, _, e, _, _ in parts] == [0] * PROBE_PARTITIONS
        sink.misbehave = None
        m = k.metrics()
    answers = m["kstretch_regional_throttled_answers"] - m0["kstretch_regional_throttled_answers"]
    total = m["kstretch_regional_throttle_ms"] - m0["kstretch_regional_throttle_ms"]
    assert (produce_throttle, fetch_throttle) == (300, 200), "the client gets the largest of its parts' throttles"
    assert (answers, total) == (3, 300 + 200 + 100), (answers, total)
    hostile_results["regional broker: throttles a part (KIP-219)"] = (
        f"the client's Produce answered with ThrottleTimeMs {produce_throttle}, its Fetch {fetch_throttle} (the "
        f"largest of the parts'); kstretch_regional_throttled_answers +{answers}, _throttle_ms +{total}")


def test_a_cluster_of_more_brokers_than_a_split_holds_is_served_as_any_other(start_kstretch, hostile_results):
    """A split's destinations are numbered per request, as its partitions'
    brokers are met, so a cluster's size does not bound it: with 1,100 more
    brokers listed before nodes 3 and 4 (1,102 in all, more than the 1,024
    destinations a split holds; before, every split request was refused as
    malformed there), a client's Produce, Fetch and ListOffsets over nodes 3
    and 4 are split and merged as with two brokers."""
    with FakeBroker(brokers=[NODES[0]], backlog=64) as fb:
        RegionalSink(fb)
        nodes = fb.broker_list
        fb.broker_list = [kafkawire.MetadataBroker(10_000 + i, fb.host, fb.port, "elsewhere")
                          for i in range(1100)] + nodes
        k = start_regional(start_kstretch, fb)
        probe(k, "wide")
        probe(k, "wide again")
        m = k.metrics()
        k.stop()
    assert m["kstretch_protocol_errors"] == 0 and m["kstretch_regional_fragments_failed"] == 0, m
    assert m["kstretch_regional_upstream_connections"] <= WORKERS * POOL * 2 * 2, m
    hostile_results["regional: a cluster of 1,102 brokers"] = (
        f"Produce, Fetch and ListOffsets split over nodes 3 and 4 and merged without error; "
        f"{m['kstretch_regional_upstream_connections']} upstream connections open")
