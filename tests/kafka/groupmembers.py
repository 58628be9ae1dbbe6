"""Consumer-group members of the real-Kafka suite, one process each, whatever
the client (the member contract of tests/integration/clients/group_member.py):

    stdout: PARTITION<TAB>OFFSET<TAB>KEY<TAB>VALUE   a record read
            #assigned P,P,... / #revoked P,P,...   partitions given / taken
            #closed                                committed and left the group
    stdin:  a line (or its end): commit, leave the group, write #closed, exit 0

    m = Member(argv, tmp_path, "java-1", env)     # started
    wait_for(members, lambda: ..., 60, "what")    # bounded polling of their output
    m.stop(); m.wait(30)                           # a clean leave

`run_group` is the test every client runs: 4 members over the two regional
nodes, half the records, one member leaves, a rebalance, the other half.
"""
import collections
import os
import subprocess
import time

import harness
import kafkatest
import records

TAIL = 3000


class Member:
    """One group member: a process whose stdout goes to a file, stdin a pipe."""

    def __init__(self, argv, log_dir, name, env=None):
        self.name = name
        self.out_path = os.path.join(log_dir, f"{name}.out")
        self.err_path = os.path.join(log_dir, f"{name}.err")
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=out, stderr=err, env=env)

    def _text(self, path):
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def lines(self):
        """The complete lines written so far (a last line still being written is left out)."""
        text = self._text(self.out_path)
        return text[:text.rfind("\n") + 1].splitlines()

    def stderr(self):
        return self._text(self.err_path)[-TAIL:]

    def records(self):
        return records.parse_consumed("".join(f"{x}\n" for x in self.lines() if not x.startswith("#")))

    def owned(self):
        """The partitions it holds now, by its #assigned and #revoked lines."""
        held = set()
        for x in self.lines():
            if x.startswith(("#assigned", "#revoked")):
                parts = {int(p) for p in x.partition(" ")[2].split(",") if p}
                held = held | parts if x.startswith("#assigned") else held - parts
        return held

    def closed(self):
        return "#closed" in self.lines()

    def stop(self):
        """Tells it to commit and leave (a line on stdin, then its end)."""
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(b"stop\n")
                self.proc.stdin.close()
            except OSError:
                pass

    def wait(self, timeout):
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"{self.name} did not end within {timeout}s of being told to stop (killed)\n"
                                 f"{self.stderr()}") from None
        assert rc == 0 and self.closed(), f"{self.name} exited with {rc}, closed {self.closed()}\n{self.stderr()}"

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def wait_for(members, condition, timeout, what):
    """Polls `condition()` every 0.2 s for at most `timeout` s; fails naming `what`
    and each member's state (or as soon as a member exits on its own)."""
    deadline = time.monotonic() + timeout
    while not condition():
        ended = [m for m in members if m.proc.poll() is not None and not m.closed()]
        if ended or time.monotonic() > deadline:
            state = "; ".join(f"{m.name}: owns {sorted(m.owned())}, read {len(m.records())}, "
                              f"exit {m.proc.poll()}" for m in members)
            tails = "\n".join(f"--- {m.name} stderr ---\n{m.stderr()}" for m in ended or members)
            raise AssertionError(f"{'a member ended' if ended else f'not within {timeout}s'} waiting for {what}: "
                                 f"{state}\n{tails}")
        time.sleep(0.2)


def owners_cover(members, partitions):
    """Each partition held by exactly one of `members`, and each member holding one."""
    held = [m.owned() for m in members]
    return all(held) and sorted(p for h in held for p in h) == list(range(partitions))


def total_read(members):
    return sum(len(m.records()) for m in members)


def run_group(kafka, nodes, topic, sent, partitions, start_member, produce, group, tmp_path, settle_timeout=60,
              disrupt=None):
    """4 members of `group` (start_member(node, name) -> Member), alternately on
    the two regional nodes, read the first half of `sent` (already produced);
    once they hold every partition between them and have read it, member 0
    leaves cleanly; the 3 others take its partitions (a rebalance), the second
    half is produced (produce(records)) and they read it; then they leave.

    Checks: every record read exactly once across the group (offsets 0..n-1 per
    partition, each member's reads in offset order per partition), member 0 read
    some before it left, the 3 others read the rest, and the brokers' committed
    offsets (KafkaControl, not through kstretch) are each partition's log end.
    (Member 0 held partitions when it left, but may have read none of them:
    the others may have read the first half before the group gave it any.)
    disrupt(), when given, is called once the 4 hold every partition and read
    the first half, before member 0 leaves (e.g. the coordinator's broker stops).
    Returns {"times": {...}, "per_member": [...]}."""
    half = len(sent) // 2
    t0 = time.monotonic()
    members = []
    try:
        for i in range(4):
            members.append(start_member(nodes[i % 2], f"member-{i}"))
        wait_for(members, lambda: owners_cover(members, partitions) and total_read(members) >= half,
                 settle_timeout, f"4 members holding the {partitions} partitions and {half} records read")
        t_joined = time.monotonic()
        if disrupt:
            disrupt()
        leaver, rest = members[0], members[1:]
        before_leave = len(leaver.records())
        leaver.stop()
        leaver.wait(30)
        wait_for(rest, lambda: owners_cover(rest, partitions), settle_timeout,
                 "the 3 members left holding every partition")
        t_rebalanced = time.monotonic()
        produce(sent[half:])
        wait_for(rest, lambda: total_read(members) >= len(sent), settle_timeout, f"all {len(sent)} records read")
        t_read = time.monotonic()
        for m in rest:
            m.stop()
        for m in rest:
            m.wait(30)
        t_end = time.monotonic()
    finally:
        for m in members:
            m.kill()

    per_member = [m.records() for m in members]
    for m, got in zip(members, per_member):
        seen = collections.defaultdict(list)
        for p, o, _, _ in got:
            seen[p].append(o)
        assert all(o == sorted(o) and len(set(o)) == len(o) for o in seen.values()), \
            f"{m.name} read a partition out of order or twice"
    consumed = sorted((r for got in per_member for r in got), key=lambda r: (r[0], r[1]))
    records.assert_same_records(sent, consumed, partitions)
    assert len(per_member[0]) == before_leave, "member 0 read on after it left"
    assert sum(len(g) for g in per_member[1:]) == len(sent) - before_leave
    ends = collections.Counter(p for p, _, _, _ in consumed)
    committed = kafka.must(f"offsets {group}")["offsets"]
    assert committed == {f"{topic}:{p}": n for p, n in ends.items()}, \
        f"committed offsets {committed} are not the log ends {dict(ends)}"
    times = {"joined_and_read_half": t_joined - t0, "leave_and_rebalance": t_rebalanced - t_joined,
             "second_half": t_read - t_rebalanced, "close": t_end - t_read, "total": t_end - t0}
    return {"times": {k: round(v, 1) for k, v in times.items()}, "per_member": [len(g) for g in per_member]}


def kcat_producer(bootstrap, topic):
    """produce(records) through kstretch with kcat (librdkafka 2.12), acks=all, idempotent."""
    def produce(recs):
        harness.run([harness.kcat_path(), "-b", bootstrap, "-P", "-t", topic, "-K", "\t", "-X", "acks=all",
                     "-X", "enable.idempotence=true"],
                    input="".join(f"{k}\t{v}\n" for k, v in recs).encode(), env=harness.modern_rdkafka_env(),
                    timeout=kafkatest.CLIENT_TIMEOUT_S, what="kcat producer")
    return produce
