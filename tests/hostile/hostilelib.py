"""Helpers of the hostile-input suite: kstretch at rest, memory bounds, a
real client's round trip through kstretch.

KSTRETCH_SANITIZED=1 (set when the suite runs against the ASan+UBSan build)
turns memory bounds into figures that are reported, not asserted: ASan's
shadow memory and quarantine multiply RSS.
"""
import os
import subprocess

import harness
import records

SANITIZED = os.environ.get("KSTRETCH_SANITIZED") == "1"
LOCALHOST = "127.0.0.1"


def assert_rss_within(rss, limit_kib, what):
    """RSS bound: asserted, except under sanitizers (then only reported)."""
    if SANITIZED:
        print(f"(sanitized build: not asserting) {what}: {rss / 1024:.1f} MiB, bound {limit_kib / 1024:.0f} MiB")
        return
    assert rss <= limit_kib, f"{what}: kstretch RSS {rss / 1024:.1f} MiB, bound {limit_kib / 1024:.0f} MiB"


def kcat(*args):
    return [harness.kcat_path(), *args]


def produce_and_read_back(bootstrap, topic, tag, count=20, timeout=30, idempotent=True):
    """A real client (kcat on librdkafka 2.12, acks=all, idempotent unless
    told otherwise) produces `count` records tagged `tag` through `bootstrap`,
    then a kcat consumer reads the topic from the beginning: every one of them
    must be there once."""
    env = harness.modern_rdkafka_env()
    sent = records.make_records(tag, count)
    harness.run(kcat("-b", bootstrap, "-P", "-t", topic, "-K", "\t", "-X", "acks=all", "-X",
                     f"enable.idempotence={'true' if idempotent else 'false'}", "-X", "message.timeout.ms=20000"),
                input="".join(f"{k}\t{v}\n" for k, v in sent).encode(), env=env, timeout=timeout,
                what=f"kcat producer ({tag})")
    r = harness.run(kcat("-b", bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-f", harness.KCAT_FORMAT),
                    env=env, timeout=timeout, what=f"kcat consumer ({tag})")
    got = [(k, v) for _, _, k, v in records.parse_consumed(r.stdout.decode())]
    mine = [kv for kv in got if kv[1].startswith(f"{tag}/")]
    assert sorted(mine) == sorted(sent), f"{tag}: read {len(mine)} of the {len(sent)} records produced"
    return len(got)


def group_read(bootstrap, topic, group, timeout=60):
    """Every record of the topic, read by a kcat group consumer."""
    return harness.kcat_consume(bootstrap, topic, group, harness.modern_rdkafka_env(), timeout=timeout)


def log_line_count(k, needle):
    """Lines of kstretch's log containing `needle`, counted without holding the log in memory."""
    n = 0
    with open(k.proc.log_path, "rb") as f:
        for line in f:
            if needle in line:
                n += 1
    return n


def log_size(k):
    try:
        return os.path.getsize(k.proc.log_path)
    except OSError:
        return 0


def run_quiet(argv, timeout):
    return subprocess.run(argv, capture_output=True, timeout=timeout)


def start_kstretch_under(prefix, starter, log_dir, upstream_bootstrap, name, max_node_id=3, workers=2,
                         extra_args=(), ready_timeout=60.0):
    """kstretch started as harness.Kstretch.start does, but behind `prefix`
    (e.g. valgrind ...); handed to the start_kstretch fixture (`starter`), which
    stops it at teardown and fails the test unless it exits 0."""
    harness.require_executable(harness.KSTRETCH, "kstretch")
    host = LOCALHOST
    block = harness.free_ports(max_node_id + 1, host, consecutive=True)
    listen_port, admin_port = harness.free_ports(2, host, avoid=block)
    argv = [*prefix, harness.KSTRETCH, "--bootstrap-servers", upstream_bootstrap, "--listen", f"{host}:{listen_port}",
            "--broker-port-base", str(block[0]), "--workers", str(workers), "--admin-listen", f"{host}:{admin_port}",
            "--log-level", "info", *extra_args]
    proc = harness.ManagedProcess(name, argv, log_dir)
    k = harness.Kstretch(proc, host, listen_port, block[0], admin_port, max_node_id)
    starter.started.append(k)
    k.wait_log(lambda text: "ready:" in text, ready_timeout, "the \"ready:\" line")
    return k
