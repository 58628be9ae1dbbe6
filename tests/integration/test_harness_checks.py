"""The harness's own checks can fail: the raw Kafka codec encodes what the
protocol specifies and rejects cut or impossible input, and the round-trip
check catches every kind of lost, extra, altered or reordered record."""
import collections
import os
import shutil
import signal
import time
import zlib

import pytest

import harness
import kafkawire
import records

# ---------------------------------------------------------------- kafkawire


def test_a_metadata_v12_request_for_all_topics_encodes_as_the_protocol_specifies():
    frame = kafkawire.encode_request(3, 12, 7, kafkawire.metadata_request_v12(), client_id="c")
    header = b"\x00\x03" + b"\x00\x0c" + b"\x00\x00\x00\x07" + b"\x00\x01c" + b"\x00"  # header v2
    body = b"\x00" + b"\x00" + b"\x00" + b"\x00"  # null topics, no auto-create, no topic ops, no tags
    assert frame == len(header + body).to_bytes(4, "big") + header + body


def test_a_metadata_v12_request_for_one_topic_carries_a_zero_topic_id_and_its_compact_name():
    body = kafkawire.metadata_request_v12(["t"], allow_auto_topic_creation=True)
    assert body == b"\x02" + bytes(16) + b"\x02t" + b"\x00" + b"\x01" + b"\x00" + b"\x00"


def test_a_find_coordinator_request_uses_compact_strings_from_v3_only():
    assert kafkawire.find_coordinator_request(0, "g") == b"\x00\x01g"
    assert kafkawire.find_coordinator_request(1, "g") == b"\x00\x01g\x00"
    assert kafkawire.find_coordinator_request(3, "g") == b"\x02g\x00\x00"
    assert kafkawire.encode_request(10, 3, 1, b"")[4:] == b"\x00\x0a\x00\x03\x00\x00\x00\x01" \
        + b"\x00\x0ekstretch-tests\x00"
    assert kafkawire.encode_request(10, 2, 1, b"")[4:] == b"\x00\x0a\x00\x02\x00\x00\x00\x01" \
        + b"\x00\x0ekstretch-tests"


def real_metadata_body(cluster):
    b = cluster.broker(1)
    with kafkawire.Connection(b["host"], b["port"]) as conn:
        r = conn.request(kafkawire.API_METADATA, 12, kafkawire.metadata_request_v12())
    return r.data[r.pos:]


def test_the_metadata_decoder_raises_truncated_on_every_cut_of_a_real_response(shared_cluster):
    body = real_metadata_body(shared_cluster)
    full = kafkawire.decode_metadata_response_v12(body)
    complete = len(body) - full.trailing_bytes
    assert kafkawire.decode_metadata_response_v12(body[:complete], strict=True) == \
        kafkawire.MetadataResponse(full.throttle_time_ms, full.brokers, full.cluster_id, full.controller_id,
                                   full.topics, 0)
    for n in range(complete):
        with pytest.raises(kafkawire.Truncated):
            kafkawire.decode_metadata_response_v12(body[:n])


@pytest.mark.parametrize("body,error", [
    # 2^31 brokers announced, 3 bytes follow: refused before reading any.
    (b"\x00\x00\x00\x00" + b"\x80\x80\x80\x80\x08" + b"\x00\x00\x00", kafkawire.Truncated),
    # an unsigned varint of six bytes
    (b"\x00\x00\x00\x00" + b"\x80\x80\x80\x80\x80\x01", kafkawire.Malformed),
    # a null brokers array (not nullable)
    (b"\x00\x00\x00\x00" + b"\x00", kafkawire.Malformed),
    # one broker with a null host (not nullable)
    (b"\x00\x00\x00\x00" + b"\x02" + b"\x00\x00\x00\x01" + b"\x00" + b"\x00\x00\x00\x01\x00\x00", kafkawire.Malformed),
    # a host that is not UTF-8
    (b"\x00\x00\x00\x00" + b"\x02" + b"\x00\x00\x00\x01" + b"\x02\xff" + b"\x00\x00\x00\x01\x00\x00",
     kafkawire.Malformed),
])
def test_the_metadata_decoder_rejects_impossible_input(body, error):
    with pytest.raises(error):
        kafkawire.decode_metadata_response_v12(body)


def test_tagged_fields_are_kept_and_must_come_in_ascending_order():
    assert kafkawire.Reader(b"\x02\x01\x01a\x05\x00").tagged_fields() == {1: b"a", 5: b""}
    with pytest.raises(kafkawire.Malformed):
        kafkawire.Reader(b"\x02\x05\x00\x01\x00").tagged_fields()


# ---------------------------------------------------------------- records

PARTITIONS = 4
COUNT = 3 * records.KEYS  # every key three times


def deliver(sent):
    """What a correct consumer would read: keyed partitioning, offsets from 0."""
    out, next_offset = [], collections.Counter()
    for k, v in sent:
        p = zlib.crc32(k.encode()) % PARTITIONS
        out.append((p, next_offset[p], k, v))
        next_offset[p] += 1
    return out


def test_the_record_check_accepts_an_exact_round_trip():
    sent = records.make_records("check", COUNT)
    consumed = deliver(sent)
    records.assert_same_records(sent, consumed, PARTITIONS)
    records.assert_same_records(sent, sorted(consumed, key=lambda r: -r[0]), PARTITIONS)  # partitions interleave


def _drop(c):
    return c[:-1]


def _duplicate(c):
    return c + [c[-1]]


def _alter_value(c):
    p, o, k, v = c[5]
    return c[:5] + [(p, o, k, v + "x")] + c[6:]


def _swap_within_partition(c):
    first = [i for i, r in enumerate(c) if r[0] == c[0][0]][:2]
    c = list(c)
    (p0, o0, k0, v0), (p1, o1, k1, v1) = c[first[0]], c[first[1]]
    c[first[0]], c[first[1]] = (p0, o0, k1, v1), (p1, o1, k0, v0)
    return c


def _offset_gap(c):
    return [(p, o + 1 if p == c[0][0] else o, k, v) for p, o, k, v in c]


def _read_out_of_offset_order(c):
    rows = [r for r in c if r[0] == c[0][0]]
    rest = [r for r in c if r[0] != c[0][0]]
    return [rows[1], rows[0]] + rows[2:] + rest


def _key_in_two_partitions(c):
    # The last record produced goes to the end of another partition than
    # the earlier records of its key: order and offsets stay valid.
    p, _, k, v = c[-1]
    q = (p + 1) % PARTITIONS
    last_q = max(o for pp, o, _, _ in c if pp == q)
    return c[:-1] + [(q, last_q + 1, k, v)]


def _one_partition_empty(c):
    return [(0 if p == 1 else p, o, k, v) for p, o, k, v in c]


CORRUPTIONS = [
    (_drop, "1 missing"),
    (_duplicate, "1 unexpected or duplicated"),
    (_alter_value, "1 missing"),
    (_swap_within_partition, "not in production order"),
    (_offset_gap, "offsets are not 0.."),
    (_read_out_of_offset_order, "offsets read out of order"),
    (_key_in_two_partitions, "keys spread over several partitions"),
    (_one_partition_empty, "expected all of 0..3"),
]


@pytest.mark.parametrize("corrupt,caught_by", CORRUPTIONS, ids=[f.__name__.strip("_") for f, _ in CORRUPTIONS])
def test_the_record_check_rejects_a_corrupted_round_trip(corrupt, caught_by):
    sent = records.make_records("check", COUNT)
    with pytest.raises(AssertionError, match=caught_by):
        records.assert_same_records(sent, corrupt(deliver(sent)), PARTITIONS)


# ---------------------------------------------------------------- processes

def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_process_that_ignores_sigterm_is_killed_after_the_grace_period(tmp_path):
    p = harness.ManagedProcess("stubborn", ["/bin/sh", "-c", "trap '' TERM; echo ready; exec sleep 60"], str(tmp_path))
    assert p.read_line(5) == "ready"
    t0 = time.monotonic()
    assert p.stop(grace=0.5) == -signal.SIGKILL
    assert time.monotonic() - t0 < 3
    assert not alive(p.pid)


def test_a_read_from_a_silent_process_fails_in_bounded_time_with_its_stderr(tmp_path):
    p = harness.ManagedProcess("silent", ["/bin/sh", "-c", "echo 'what I said' >&2; exec sleep 60"], str(tmp_path))
    try:
        t0 = time.monotonic()
        with pytest.raises(harness.ProcessError, match="what I said"):
            time.sleep(0.2)
            p.read_line(0.5)
        assert time.monotonic() - t0 < 3
    finally:
        p.stop()
    assert not alive(p.pid)


def test_the_cluster_fixture_stops_the_simulator_when_a_test_fails(tmp_path):
    # Run a failing test that starts a cluster in a separate pytest session.
    pidfile = tmp_path / "pid"
    rc, out = run_inner_suite(tmp_path,
                              "def test_fails_after_starting_a_cluster(start_cluster):\n"
                              "    c = start_cluster(topics=['t:1:1'])\n"
                              f"    open({str(pidfile)!r}, 'w').write(str(c.proc.pid))\n"
                              "    assert False, 'deliberate failure'\n")
    assert rc == 1 and "deliberate failure" in out and "1 failed" in out, out
    pid = int(pidfile.read_text())
    assert not alive(pid), f"the simulator (pid {pid}) outlived its test"


def run_inner_suite(tmp_path, test_source):
    """Runs `test_source` as test_inner.py in a separate pytest session with
    copies of this suite's conftest and harness; returns (exit code, stdout)."""
    here = os.path.dirname(os.path.abspath(__file__))
    inner = tmp_path / "inner"
    inner.mkdir()
    for name in ("conftest.py", "harness.py"):
        shutil.copy(os.path.join(here, name), inner / name)
    (inner / "test_inner.py").write_text(test_source)
    env = dict(os.environ, KSTRETCH_BUILD=harness.BUILD)
    r = harness.run([harness.PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(inner),
                     str(inner / "test_inner.py")], env=env, timeout=60, check=False, what="inner pytest")
    return r.returncode, r.stdout.decode()


def test_the_kstretch_fixture_shows_kstretch_stderr_when_a_test_fails_and_stops_it(tmp_path):
    pidfile = tmp_path / "pid"
    rc, out = run_inner_suite(tmp_path,
                              "def test_fails_with_kstretch_running(start_cluster, start_kstretch):\n"
                              "    k = start_kstretch(start_cluster(topics=['t:1:1']))\n"
                              f"    open({str(pidfile)!r}, 'w').write(str(k.pid))\n"
                              "    assert False, 'deliberate failure'\n")
    assert rc == 1 and "deliberate failure" in out and "1 failed" in out, out
    assert "kstretch1 stderr (tail)" in out and "ready: 2 workers" in out, out
    pid = int(pidfile.read_text())
    assert not alive(pid), f"kstretch (pid {pid}) outlived its test"


def test_the_kstretch_fixture_errors_when_kstretch_does_not_exit_0(tmp_path):
    # SIGKILL stands for a crash: the test itself passes, its teardown errors.
    rc, out = run_inner_suite(tmp_path,
                              "import os, signal\n"
                              "def test_kstretch_crashes(start_cluster, start_kstretch):\n"
                              "    k = start_kstretch(start_cluster(topics=['t:1:1']))\n"
                              "    os.kill(k.pid, signal.SIGKILL)\n"
                              "    k.wait(timeout=5)\n")
    assert rc == 1 and "1 passed, 1 error" in out, out
    assert "kstretch1 exited with -9, not 0 on SIGTERM" in out, out
