"""A network fuzzer against a running kstretch: thousands of mutated requests
on real connections, and after every batch a real client still produces and
consumes through kstretch, kstretch is the same process, has as many
descriptors as before and its memory stays under a stated bound.

Where the mutated requests go: librdkafka's mock (the simulator) does not
survive them (a malformed Produce aborts it: rdbuf.c:834 rd_slice_init_full:
Assertion `r == 0' failed, seed 3908983977), so kstretch's bootstrap server and
node 3 are a scripted broker (fakebroker.py, which closes on what it cannot
read and answers what it can with captured real answers), while nodes 1 and 2
are the simulator's, with the canary topic on them; the simulator advertises
node 3 at the scripted broker, so every Metadata agrees. Fuzz cases go to the
bootstrap listener and node 3's; the real client (kcat) bootstraps from node
1's listener and produces to, and reads from, nodes 1 and 2 through the same
kstretch.

    KSTRETCH_FUZZ_SEED=N     replay a run (the seed is printed; default: from the clock)
    KSTRETCH_FUZZ_CASES=N    cases (default 10,000)
    KSTRETCH_FUZZ_SECONDS=S  time budget for the cases (default 120 s; the run stops early, never late)
"""
import collections
import os
import struct
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

CANARY = "canary"
BATCH = 500
THREADS = 16
# kstretch holds per connection at most its output watermarks (4 MiB each
# way) while a frame passes; 16 fuzz connections at a time, most closed in
# milliseconds. Bound: RSS after a batch at most this above the warm baseline.
RSS_GROWTH_BOUND_KIB = 32 << 10


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


class Sink:
    """The scripted broker's answers: what a real broker would say to the
    requests it can read (captured answers of the same API and version,
    pointed at itself; its own Metadata v12; FindCoordinator naming node 3),
    and a closed connection for anything else."""

    def __init__(self, fb):
        self.fb = fb
        self.pairs = {key: [pointing_at(r, fb.port) for r in resps]
                      for key, (_, resps) in vector_pairs().items()}
        self.answered = collections.Counter()
        for api in (kafkawire.API_PRODUCE, kafkawire.API_FETCH, kafkawire.API_METADATA, kafkawire.API_FIND_COORDINATOR,
                    kafkawire.API_API_VERSIONS):
            fb.handlers[api] = self.answer

    def answer(self, header, body):
        try:
            key = (header.api_key, header.api_version)
            if header.api_key == kafkawire.API_METADATA:
                # Only the broker list every other answer agrees with (captured
                # answers name the capture's brokers and nodes 1-6).
                out = kafkawire.metadata_response_v12(self.fb.broker_list) if header.api_version == 12 else None
            elif header.api_key == kafkawire.API_FIND_COORDINATOR and 0 <= header.api_version <= 3:
                out = find_coordinator_answer(header.api_version, 3, self.fb.host, self.fb.port)
            elif key in self.pairs and header.api_key != kafkawire.API_FIND_COORDINATOR:
                frame = self.pairs[key][0]
                self.answered[key] += 1
                return FakeBroker.Raw(frame[:4] + struct.pack(">i", header.correlation_id) + frame[8:])
            else:
                out = None
            if out is not None:
                self.answered[key] += 1
            return out
        except Exception:  # noqa: BLE001 - a request it cannot make sense of: close, as a broker would
            return None


@pytest.fixture
def target(start_cluster, start_kstretch):
    c = start_cluster(regions="eu:1,us:1,ap:1", topics=[f"{CANARY}:2:1"])
    assert sorted(c.leaders(CANARY).values()) == [1, 2], c.leaders(CANARY)
    with FakeBroker(brokers=[(3, "ap-a")], backlog=1024) as fb:
        fb.broker_list = [kafkawire.MetadataBroker(b["id"], b["host"], b["port"], b["rack"]) for b in c.brokers
                          if b["id"] != 3] + [kafkawire.MetadataBroker(3, fb.host, fb.port, "ap-a")]
        c.must(f"advertise 3 {fb.host} {fb.port}")
        sink = Sink(fb)
        k = start_kstretch(fb.bootstrap, max_node_id=3, extra_args=("--log-level", "info"))
        yield c, k, fb, sink
        k.stop()


def test_thousands_of_mutated_requests_leave_kstretch_serving_real_clients_with_no_fd_or_memory_growth(
        target, hostile_results):
    c, k, fb, sink = target
    seed = int(os.environ.get("KSTRETCH_FUZZ_SEED") or time.time_ns() % (1 << 32))
    total = int(os.environ.get("KSTRETCH_FUZZ_CASES") or 10000)
    budget = float(os.environ.get("KSTRETCH_FUZZ_SECONDS") or 120)
    print(f"network fuzzer: seed {seed} (KSTRETCH_FUZZ_SEED={seed} replays it), {total} cases, {budget:.0f} s budget")
    ports = [k.listen_port, k.broker_port(3)]
    real = f"{LOCALHOST}:{k.broker_port(1)}"  # the real client's bootstrap: the simulator's node 1

    hostilelib.produce_and_read_back(real, CANARY, "warm", idempotent=False)
    fd0, rss0 = harness.quiet(k)
    t0 = time.monotonic()
    done = 0
    batches = 0
    by_mutator = collections.Counter()
    answered = closed = 0
    bad = []
    peak_rss = rss0
    with ThreadPoolExecutor(THREADS) as pool:
        while done < total and time.monotonic() - t0 < budget:
            cases = [netfuzz.make_case(seed, i, len(ports)) for i in range(done, min(done + BATCH, total))]
            for case, res in zip(cases, pool.map(lambda cs: netfuzz.run_case(cs, LOCALHOST, ports), cases)):
                by_mutator[case.mutator] += 1
                answered += res.answers > 0
                closed += res.closed_by_kstretch
                if res.bad:
                    bad.append(f"{res.bad}: {netfuzz.describe(case)}")
            done += len(cases)
            batches += 1
            last = f"cases {cases[0].number}..{cases[-1].number} (seed {seed})"
            assert c.proc.proc.poll() is None, f"the simulator died after {last}\n{c.proc.stderr_tail()}"
            assert k.alive(), f"kstretch died after {last}\n{k.stderr_tail()}"
            assert not bad, f"after {last}: " + "\n".join(bad[:5])
            fds, rss = harness.quiet(k)
            peak_rss = max(peak_rss, rss)
            assert fds == fd0, f"after {last}: kstretch has {fds} descriptors, {fd0} before the fuzzer"
            hostilelib.assert_rss_within(rss, rss0 + RSS_GROWTH_BOUND_KIB, f"after {last}")
            hostilelib.produce_and_read_back(real, CANARY, f"batch{batches}", idempotent=False)
    elapsed = time.monotonic() - t0
    m = k.metrics()
    figures = (f"{done:,} cases in {elapsed:.0f} s (seed {seed}, {THREADS} connections at a time), "
               f"{answered:,} got answers, {closed:,} closed by kstretch, {m['kstretch_protocol_errors']:,} protocol "
               f"errors logged, {sum(sink.answered.values()):,} requests answered by the broker; after each of {batches} "
               f"batches a kcat producer and consumer went through; kstretch "
               f"fds {fd0} -> {fds}, RSS {rss0 / 1024:.1f} MiB -> peak {peak_rss / 1024:.1f} MiB (bound +"
               f"{RSS_GROWTH_BOUND_KIB >> 10} MiB)")
    print(figures)
    print("cases per mutator:", dict(by_mutator))
    hostile_results["network fuzzer (client side)"] = figures
    assert done >= min(total, 1000), f"only {done} cases ran within {budget} s"
    assert m["kstretch_protocol_errors"] > 0, "no case was malformed enough for kstretch to say so"
