"""The fault suite's workload (a transactional, idempotent acks=all producer and
group consumers, all through kstretch), its bookkeeping (what was acknowledged,
what each group read) and the results table.

    w = Workload(tmp_path, k.bootstrap, TOPIC, tag="down", count=15000, rate=1000)
    w.start_producer(); w.start_consumer("live")
    ... inject the fault ...
    w.wait_producer(); w.finish_consumer("live")
    outcome = w.check("live", partitions=12)     # asserts nothing: returns the figures
"""
import collections
import json
import os
import signal
import subprocess
import time

import harness
import kafkawire
import records

HERE = os.path.dirname(os.path.abspath(__file__))
CLIENT = os.path.join(HERE, "fault_client.py")
LOCALHOST = "127.0.0.1"


def read_rows(path):
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        return []
    # A line being written when read may be cut: keep whole lines only.
    if text and not text.endswith("\n"):
        text = text[:text.rfind("\n") + 1]
    return records.parse_consumed(text)


def sequence(value):
    return int(value.split("/")[1])


class Workload:
    """A producer and group consumers (fault_client.py subprocesses on
    librdkafka 2.12) through one bootstrap address. Every process is killed
    by close() whatever happens."""

    def __init__(self, tmp_path, bootstrap, topic, tag, count, rate, txn_size=500, deadline_s=150, linger_ms=5):
        self.dir = str(tmp_path / f"workload-{tag}")
        os.makedirs(self.dir, exist_ok=True)
        self.bootstrap, self.topic, self.tag = bootstrap, topic, tag
        self.count, self.rate, self.txn_size, self.deadline_s = count, rate, txn_size, deadline_s
        self.linger_ms = linger_ms
        self.env = harness.modern_rdkafka_env()
        self.producer = None
        self.consumers = {}
        self._logs = []
        self._counters = {}

    def _spawn(self, name, argv):
        err = open(os.path.join(self.dir, f"{name}.stderr"), "wb")
        self._logs.append(err)
        return subprocess.Popen([harness.PYTHON, CLIENT, *argv], stdout=subprocess.DEVNULL, stderr=err, env=self.env)

    def stderr(self, name, limit=3000):
        try:
            with open(os.path.join(self.dir, f"{name}.stderr"), encoding="utf-8", errors="replace") as f:
                return f.read()[-limit:]
        except OSError:
            return ""

    def start_producer(self):
        self.producer = self._spawn("producer", ["produce", self.bootstrap, self.topic, self.tag, str(self.count),
                                                 str(self.rate), str(self.txn_size), self.dir, str(self.deadline_s),
                                                 "--linger-ms", str(self.linger_ms)])
        return self.producer

    def start_consumer(self, group, rate=None):
        argv = ["consume", self.bootstrap, self.topic, group, self.dir, str(self.deadline_s)]
        if rate:
            argv += ["--rate", str(rate)]
        self.consumers[group] = self._spawn(f"consumer-{group}", argv)
        return self.consumers[group]

    def _lines(self, name):
        if name not in self._counters:
            self._counters[name] = harness.LineCounter(os.path.join(self.dir, name))
        return self._counters[name]()

    def acked_count(self):
        return self._lines("acked.tsv")

    def consumed_count(self, group):
        return self._lines(f"consumed-{group}.tsv")

    def wait_acked(self, n, timeout):
        harness.wait_until(lambda: self.acked_count() >= n, timeout,
                           what=f"{n} acknowledged records ({self.acked_count()} so far)")

    def wait_consumed(self, group, n, timeout):
        harness.wait_until(lambda: self.consumed_count(group) >= n, timeout, interval=0.1,
                           what=f"group {group} reading {n} records ({self.consumed_count(group)} so far)")

    def wait_producer(self, timeout=None):
        try:
            rc = self.producer.wait(timeout=timeout or self.deadline_s + 10)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the producer is still running\n{self.stderr('producer')}") from None
        assert rc == 0, f"the producer exited with {rc}\n{self.stderr('producer')}"

    def finish_consumer(self, group, timeout=60, stall=None):
        """Lets the group read every acknowledged record, then stops it. Stops
        waiting after `timeout` seconds, or, with `stall`, once the group has
        read nothing for that many seconds."""
        want = self.acked_count()
        deadline = time.monotonic() + timeout
        proc = self.consumers[group]
        seen, moved = -1, time.monotonic()
        while time.monotonic() < deadline and proc.poll() is None:
            n = self.consumed_count(group)
            if n >= want:
                break
            if n != seen:
                seen, moved = n, time.monotonic()
            elif stall is not None and time.monotonic() - moved > stall:
                break
            time.sleep(0.1)
        open(os.path.join(self.dir, f"stop-{group}"), "w").close()
        try:
            rc = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise AssertionError(f"consumer {group} did not stop\n{self.stderr('consumer-' + group)}") from None
        assert rc == 0, f"consumer {group} exited with {rc}\n{self.stderr('consumer-' + group)}"

    def producer_stats(self):
        try:
            with open(os.path.join(self.dir, "producer.json")) as f:
                return json.load(f)
        except OSError:
            return {}

    def consumer_stats(self, group):
        try:
            with open(os.path.join(self.dir, f"consumer-{group}.json")) as f:
                return json.load(f)
        except OSError:
            return {}

    def check(self, group, partitions):
        """The figures of one group's reading against what was acknowledged."""
        acked = read_rows(os.path.join(self.dir, "acked.tsv"))
        try:
            with open(os.path.join(self.dir, "aborted.tsv"), encoding="utf-8") as f:
                aborted = {tuple(line.rstrip("\n").split("\t", 1)) for line in f if line.strip()}
        except OSError:
            aborted = set()
        consumed = read_rows(os.path.join(self.dir, f"consumed-{group}.tsv"))
        return verify(acked, aborted, consumed, partitions)

    def close(self):
        for p in [self.producer, *self.consumers.values()]:
            if p is not None and p.poll() is None:
                p.kill()
                p.wait(timeout=10)
        for f in self._logs:
            f.close()


def verify(acked, aborted, consumed, partitions):
    """Figures for one consumer group.

    acked     [(partition, offset, key, value)] the producer saw committed
    aborted   {(key, value)} records of aborted transactions (the mock lets
              read_committed consumers see them: they are counted apart)
    consumed  [(partition, offset, key, value)] in the order the group read them

    duplicates: acknowledged records read more than once (twice at one offset:
    redelivered by the group; at two offsets: written twice); lost:
    acknowledged records never read; order_violations: a partition read with
    offsets going back, or acknowledged records of one partition stored out of
    production order."""
    acked_values = collections.Counter((k, v) for _, _, k, v in acked)
    by_offset = {}
    redelivered = 0
    back = []
    last_offset = {}
    for p, o, k, v in consumed:
        if (p, o) in by_offset:
            redelivered += 1
            continue
        by_offset[(p, o)] = (k, v)
        if o < last_offset.get(p, -1):
            back.append((p, last_offset[p], o))
        last_offset[p] = max(o, last_offset.get(p, -1))
    read_once = collections.Counter(by_offset.values())
    read_all = collections.Counter((k, v) for _, _, k, v in consumed)
    lost = [kv for kv in acked_values if read_all[kv] == 0]
    duplicates = sum(read_all[kv] - 1 for kv in acked_values if read_all[kv] > 1)
    written_twice = sum(read_once[kv] - 1 for kv in acked_values if read_once[kv] > 1)
    extra = [kv for kv in read_once if kv not in acked_values]
    aborted_seen = [kv for kv in extra if kv in aborted]
    unexpected = [kv for kv in extra if kv not in aborted]

    order = list(back)
    per_partition = collections.defaultdict(list)
    for (p, o), kv in sorted(by_offset.items()):
        if kv in acked_values:
            per_partition[p].append(sequence(kv[1]))
    for p, seqs in per_partition.items():
        order += [(p, a, b) for a, b in zip(seqs, seqs[1:]) if b <= a]
    key_partitions = collections.defaultdict(set)
    for (p, _), (k, _) in by_offset.items():
        key_partitions[k].add(p)
    return {
        "acked": len(acked),
        "consumed": sum(read_all[kv] for kv in acked_values),
        "duplicates": duplicates,
        "written_twice": written_twice,
        "redelivered": redelivered,
        "lost": len(lost),
        "lost_sample": sorted(lost)[:5],
        "aborted_seen": len(aborted_seen),
        "unexpected": len(unexpected),
        "unexpected_sample": sorted(unexpected)[:5],
        "order_violations": len(order),
        "order_sample": order[:5],
        "partitions_used": len(per_partition),
        "keys_split": sum(1 for ps in key_partitions.values() if len(ps) > 1),
    }


def assert_exactly_once(outcome, what):
    assert outcome["acked"] > 0, f"{what}: nothing was acknowledged"
    assert outcome["lost"] == 0, f"{what}: {outcome['lost']} acknowledged records never read, e.g. " \
                                 f"{outcome['lost_sample']}"
    assert outcome["duplicates"] == 0, (f"{what}: {outcome['duplicates']} acknowledged records read more than once "
                                        f"({outcome['written_twice']} written twice, {outcome['redelivered']} "
                                        f"redelivered)")
    assert outcome["unexpected"] == 0, f"{what}: records read that were never produced: " \
                                       f"{outcome['unexpected_sample']}"
    assert outcome["order_violations"] == 0, f"{what}: out of order, e.g. {outcome['order_sample']}"
    assert outcome["keys_split"] == 0, f"{what}: keys spread over several partitions"


def still_serving(k, topic, partitions):
    """kstretch is the process the test started, still running, and answers a Metadata request."""
    assert k.alive(), f"kstretch exited with {k.proc.proc.poll()}\n{k.stderr_tail()}"
    md = kafkawire.metadata_v12(LOCALHOST, k.listen_port, [topic], timeout=10)
    assert len(md.topic(topic).partitions) == partitions
    return True


def restart_kstretch(k, starter, log_dir, name):
    """SIGTERM k, wait for it to exit (0 expected), start the same argv (same
    ports) again; the new Kstretch is handed to the start_kstretch fixture,
    which stops it at teardown. Returns (new kstretch, old exit code, seconds
    without a listener)."""
    t0 = time.monotonic()
    k.send_signal(signal.SIGTERM)
    rc = k.wait(timeout=harness.Kstretch.STOP_GRACE_S)
    k.stop()  # closes its pipes; the exit code stays
    proc = harness.ManagedProcess(name, k.proc.argv, log_dir)
    k2 = harness.Kstretch(proc, k.host, k.listen_port, k.port_base, k.admin_port, k.max_node_id)
    starter.started.append(k2)
    k2.wait_log(lambda text: "ready:" in text, harness.Kstretch.READY_TIMEOUT_S, "the \"ready:\" line")
    return k2, rc, time.monotonic() - t0


# ---------------------------------------------------------------- the results table

COLUMNS = ("scenario", "produced", "acknowledged", "consumed", "duplicates", "lost", "kstretch restarts",
           "kstretch crashes", "notes")


class Results:
    def __init__(self):
        self.rows = []

    def add(self, scenario, workload, outcomes, restarts=0, crashes=0, notes=""):
        """outcomes: verify() results of every group that read the records."""
        ps = workload.producer_stats()
        produced = ps.get("produced", workload.count)
        extra = []
        if ps.get("aborted_txns"):
            extra.append(f"{ps['aborted_txns']} transaction(s) aborted and sent again")
        seen = sum(o["aborted_seen"] for o in outcomes)
        if seen:
            extra.append(f"{seen} records of aborted transactions shown by the mock")
        redelivered = sum(o["redelivered"] for o in outcomes)
        if redelivered:
            extra.append(f"{redelivered} redelivered by the group")
        self.rows.append({
            "scenario": scenario,
            "produced": produced,
            "acknowledged": ps.get("acked", outcomes[0]["acked"] if outcomes else 0),
            "consumed": " + ".join(f"{o['consumed']:,}" for o in outcomes),
            "duplicates": sum(o["duplicates"] for o in outcomes),
            "lost": sum(o["lost"] for o in outcomes),
            "kstretch restarts": restarts,
            "kstretch crashes": crashes,
            "notes": "; ".join(x for x in [notes, *extra] if x),
        })

    def markdown(self):
        lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "|".join("---" if c in ("scenario", "notes") else "---:"
                                                                   for c in COLUMNS) + "|"]
        for r in self.rows:
            lines.append("| " + " | ".join(f"{r[c]:,}" if isinstance(r[c], int) else str(r[c]) for c in COLUMNS)
                         + " |")
        return "\n".join(lines) + "\n"

