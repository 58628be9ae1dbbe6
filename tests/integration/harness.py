"""Processes the integration tests start and stop: the cluster simulator now,
kstretch itself later.

Every wait here is bounded. A ManagedProcess is always stopped (SIGTERM, then
SIGKILL after a grace period) by whoever started it, and its stderr is kept in
a file so a failure can show what the process said.
"""
import json
import os
import queue
import subprocess
import sys
import threading
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HERE = os.path.dirname(os.path.abspath(__file__))
CLIENTS = os.path.join(HERE, "clients")

_CACHE = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "kstretch")
BUILD = os.environ.get("KSTRETCH_BUILD") or os.path.join(REPO, "build")
NODE_MODULES = os.environ.get("KSTRETCH_NODE_MODULES") or os.path.join(_CACHE, "node", "node_modules")
RDKAFKA_MODERN = os.environ.get("KSTRETCH_RDKAFKA_MODERN") or os.path.join(NODE_MODULES, "node-rdkafka", "build",
                                                                            "deps")
TESTCLUSTER = os.path.join(BUILD, "tests", "cluster", "kstretch-testcluster")
KSTRETCH = os.path.join(BUILD, "proxy", "kstretch")
# Debian's interpreter has pytest, kafka-python and confluent-kafka; a pyenv
# `python3` on PATH may not. Client subprocesses use the interpreter running
# the suite, which `make test` makes /usr/bin/python3.
PYTHON = sys.executable

STOP_GRACE_S = 5.0


def require(path, what, hint="run `make deps build`"):
    """Fails (never skips) the test when a part `make test` installs is missing."""
    if not os.path.exists(path):
        pytest.fail(f"{what} is missing: {path} ({hint})", pytrace=False)
    return path


def require_executable(path, what, hint="run `make build`"):
    require(path, what, hint)
    if not os.access(path, os.X_OK):
        pytest.fail(f"{what} is not executable: {path} ({hint})", pytrace=False)
    return path


def modern_rdkafka_env(env=None):
    """Environment that makes a librdkafka program (kcat, confluent-kafka) load
    the modern 2.12 build instead of Debian's 2.0.2."""
    require(os.path.join(RDKAFKA_MODERN, "librdkafka.so.1"), "librdkafka 2.12 (node-rdkafka build)",
            "run `make deps`")
    env = dict(os.environ if env is None else env)
    old = env.get("LD_LIBRARY_PATH")
    env["LD_LIBRARY_PATH"] = RDKAFKA_MODERN + (os.pathsep + old if old else "")
    return env


class ProcessError(AssertionError):
    pass


class ManagedProcess:
    """A child process with line-oriented stdout read by a thread (so reads can
    time out), stdin kept open for commands, and stderr in a log file."""

    def __init__(self, name, argv, log_dir, env=None, cwd=None):
        self.name = name
        self.argv = list(argv)
        self.log_path = os.path.join(log_dir, f"{name}.stderr.log")
        self._lines = queue.Queue()
        self._log = open(self.log_path, "wb")
        try:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=self._log, env=env, cwd=cwd, bufsize=0)
        except OSError:
            self._log.close()
            raise
        self._reader = threading.Thread(target=self._read_stdout, name=f"{name}-stdout", daemon=True)
        self._reader.start()

    @property
    def pid(self):
        return self.proc.pid

    def _read_stdout(self):
        try:
            for raw in iter(self.proc.stdout.readline, b""):
                self._lines.put(raw.decode("utf-8", "replace").rstrip("\r\n"))
        finally:
            self._lines.put(None)  # EOF marker

    def stderr_tail(self, limit=4000):
        try:
            with open(self.log_path, "rb") as f:
                data = f.read()
        except OSError:
            return ""
        return data[-limit:].decode("utf-8", "replace")

    def _fail(self, what):
        rc = self.proc.poll()
        state = "running" if rc is None else f"exited with {rc}"
        raise ProcessError(f"{self.name} ({state}): {what}\n--- {self.name} stderr ---\n{self.stderr_tail()}")

    def read_line(self, timeout):
        """The next stdout line, waiting at most `timeout` seconds."""
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            self._fail(f"no output line within {timeout:.1f}s")
        if line is None:
            self._lines.put(None)  # keep EOF visible to later reads
            self._fail("stdout closed")
        return line

    def write_line(self, line):
        try:
            self.proc.stdin.write((line + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError, OSError) as e:
            self._fail(f"cannot write {line!r} to stdin: {e}")

    def close_stdin(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass

    def wait(self, timeout):
        """Exit code, or a failure if the process is still running after `timeout`."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._fail(f"still running {timeout:.1f}s later")

    def stop(self, grace=STOP_GRACE_S):
        """SIGTERM, then SIGKILL after `grace` seconds. Returns the exit code."""
        if self.proc.poll() is None:
            try:
                self.proc.terminate()
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=grace)
        self.close_stdin()
        self._reader.join(timeout=grace)
        try:
            self.proc.stdout.close()
        except OSError:
            pass
        self._log.close()
        return self.proc.returncode


class Cluster:
    """A running kstretch-testcluster: the stretched Kafka cluster the tests use.

    .bootstrap  "host:port,..." of every broker
    .brokers    list of dicts (id, host, port, rack, region, rtt_ms, up, ...)
    .topics     list of dicts (name, rf, partitions[{partition, leader, follower, replicas}])
    .control(cmd) sends one control command, returns its parsed JSON answer
    """

    # librdkafka 2.12's mock thread can miss the wake-up for an op queued while
    # it drains its wake-up pipe, and then serves it on its next 1 s tick; the
    # simulator's start-up issues ~20 ops, so allow for several such stalls.
    START_TIMEOUT_S = 30.0
    CONTROL_TIMEOUT_S = 10.0

    def __init__(self, proc, state):
        self.proc = proc
        self._set_state(state)

    @classmethod
    def start(cls, log_dir, regions="eu:2,us:2,ap:2", rtt_ms=None, topics=(), follower_region=None, name=None):
        require_executable(TESTCLUSTER, "the cluster simulator kstretch-testcluster")
        argv = [TESTCLUSTER, "--regions", regions]
        if rtt_ms:
            argv += ["--rtt-ms", rtt_ms if isinstance(rtt_ms, str) else ",".join(f"{r}={ms}" for r, ms in rtt_ms.items())]
        for t in topics:
            argv += ["--topic", t]
        if follower_region:
            argv += ["--follower-region", follower_region]
        proc = ManagedProcess(name or "testcluster", argv, log_dir)
        try:
            line = proc.read_line(cls.START_TIMEOUT_S)
            try:
                state = json.loads(line)
            except ValueError:
                proc._fail(f"first line is not JSON: {line!r}")
            return cls(proc, state)
        except BaseException:
            proc.stop()
            raise

    def _set_state(self, state):
        self.state = state
        self.bootstrap = state["bootstrap"]
        self.brokers = state["brokers"]
        self.topics = state["topics"]

    def broker(self, node_id):
        for b in self.brokers:
            if b["id"] == node_id:
                return b
        raise KeyError(node_id)

    def topic(self, name):
        for t in self.topics:
            if t["name"] == name:
                return t
        raise KeyError(name)

    def leaders(self, topic):
        """{partition: leader id} as the simulator placed them."""
        return {p["partition"]: p["leader"] for p in self.topic(topic)["partitions"]}

    def control(self, cmd, timeout=CONTROL_TIMEOUT_S):
        self.proc.write_line(cmd)
        line = self.proc.read_line(timeout)
        try:
            reply = json.loads(line)
        except ValueError:
            self.proc._fail(f"answer to {cmd!r} is not JSON: {line!r}")
        if reply.get("cmd") != cmd:
            self.proc._fail(f"answer to {cmd!r} names another command: {line!r}")
        return reply

    def must(self, cmd):
        """control() that fails the test unless the simulator says ok."""
        reply = self.control(cmd)
        assert reply["ok"] is True, reply
        return reply

    def refresh(self):
        reply = self.must("state")
        self._set_state(reply)
        return self

    def stop(self):
        return self.proc.stop()


def run(argv, *, timeout, env=None, input=None, check=True, what=None):
    """subprocess.run with a bound; on timeout the child is killed (by
    subprocess.run) and the test fails with what it printed."""
    what = what or os.path.basename(argv[0])
    try:
        r = subprocess.run(argv, input=input, capture_output=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        err = (e.stderr or b"")[-4000:].decode("utf-8", "replace")
        raise AssertionError(f"{what} did not finish within {timeout}s\n--- stderr ---\n{err}") from None
    if check and r.returncode != 0:
        raise AssertionError(f"{what} exited with {r.returncode}\n--- stderr ---\n"
                             f"{r.stderr[-4000:].decode('utf-8', 'replace')}")
    return r


def wait_until(predicate, timeout, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} not reached within {timeout}s")
        time.sleep(interval)
