"""Processes the integration tests start and stop: the cluster simulator,
kstretch itself, and the real clients in between.

Every wait here is bounded. A ManagedProcess is always stopped (SIGTERM, then
SIGKILL after a grace period) by whoever started it, and its stderr is kept in
a file so a failure can show what the process said.
"""
import collections
import json
import os
import queue
import random
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request

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
# KSTRETCH_BIN runs the tests against another kstretch binary (a sanitizer build, an older one).
KSTRETCH = os.environ.get("KSTRETCH_BIN") or os.path.join(BUILD, "proxy", "kstretch")
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


# ---------------------------------------------------------------- clients

LIBRDKAFKA = {
    # Debian's build, linked by kcat and confluent-kafka: older protocol versions.
    "debian-librdkafka-2.0.2": ("2.0.2", False),
    # node-rdkafka's 2.12 build through LD_LIBRARY_PATH: modern protocol versions.
    "librdkafka-2.12": ("2.12.", True),
}
KCAT_FORMAT = "%p\t%o\t%k\t%s\n"


def kcat_path():
    path = shutil.which("kcat")
    if not path:
        pytest.fail("kcat is not installed (run `make deps`)", pytrace=False)
    return path


def librdkafka_env(build):
    """Environment for a librdkafka program (kcat, confluent-kafka) on `build`, a key of LIBRDKAFKA."""
    if LIBRDKAFKA[build][1]:
        return modern_rdkafka_env()
    env = dict(os.environ)
    env.pop("LD_LIBRARY_PATH", None)
    return env


def node_env():
    require(os.path.join(NODE_MODULES, "kafkajs", "package.json"), "kafkajs", "run `make deps`")
    if not shutil.which("node"):
        pytest.fail("node is not installed (run `make deps`)", pytrace=False)
    return dict(os.environ, NODE_PATH=NODE_MODULES, KSTRETCH_NODE_MODULES=NODE_MODULES)


def kcat_consume(bootstrap, topic, group, env, timeout=60):
    """A kcat balanced consumer (-G) from the earliest offset that exits once
    every assigned partition reached its end (-e); returns what it read as
    [(partition, offset, key, value)] in consumption order."""
    import records  # here, so that harness.py stands alone (test_harness_checks copies it)

    r = run([kcat_path(), "-b", bootstrap, "-G", group, "-X", "auto.offset.reset=earliest", "-e",
             "-f", KCAT_FORMAT, topic],
            env=env, timeout=timeout, what="kcat consumer")
    return records.parse_consumed(r.stdout.decode())


def client_version(stderr):
    """The "client-version: ..." line the client scripts write on stderr."""
    if isinstance(stderr, bytes):
        stderr = stderr.decode("utf-8", "replace")
    for line in stderr.splitlines():
        if line.startswith("client-version: "):
            return line[len("client-version: "):]
    return ""


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


KAFKACLUSTER = os.path.join(REPO, "tests", "cluster", "kafkacluster.py")
KAFKA_LIBS = os.environ.get("KSTRETCH_KAFKA_LIBS") or os.path.join(_CACHE, "kafka-4.4.0", "libs")


class KafkaCluster(Cluster):
    """A running tests/cluster/kafkacluster.py: real Apache Kafka brokers
    (KRaft) with the simulator's control surface (down, up, leader, rtt,
    state) plus `stats` (bytes through each broker's relays) and `create`.

    .bootstraps {region: "host:port,..."}: the bootstrap of each client region
    (.bootstrap is the default client region's, the first one's).

    security= "plaintext" (default), "sasl_plaintext", "ssl" or "sasl_ssl" for
    the client listeners; certs= a tests/integration/certs.py directory (ssl,
    sasl_ssl); reauth_ms= the brokers' connections.max.reauth.ms. .security and
    .sasl_users ({mechanism: {user: password}}) say what the brokers take.
    """

    # JVMs on 2 cores: the controller and the brokers start in 20-40 s.
    START_TIMEOUT_S = 150.0
    CONTROL_TIMEOUT_S = 120.0

    @classmethod
    def start(cls, log_dir, regions="eu:1,us:1,ap:1", topics=(), min_insync=1, replica_selector="none",
              rtt_ms=None, client_region=None, relay=True, name=None, security="plaintext", certs=None,
              reauth_ms=None, meta_listener=False):
        require(os.path.join(KAFKA_LIBS, "kafka_2.13-4.4.0.jar"), "Apache Kafka 4.4.0", "run `make deps`")
        argv = [PYTHON, KAFKACLUSTER, "--regions", regions, "--min-insync", str(min_insync),
                "--replica-selector", replica_selector, "--work", os.path.join(log_dir, name or "kafkacluster")]
        for t in topics:
            argv += ["--topic", t]
        if rtt_ms:
            argv += ["--rtt-ms", rtt_ms if isinstance(rtt_ms, str) else ",".join(f"{r}={ms}" for r, ms in rtt_ms.items())]
        if client_region:
            argv += ["--client-region", client_region]
        if not relay:
            argv.append("--no-relay")
        argv += ["--security", security]
        if certs:
            argv += ["--certs", certs]
        if reauth_ms is not None:
            argv += ["--reauth-ms", str(reauth_ms)]
        if meta_listener:
            argv.append("--meta-listener")
        proc = ManagedProcess(name or "kafkacluster", argv, log_dir)
        try:
            line = proc.read_line(cls.START_TIMEOUT_S)
            try:
                state = json.loads(line)
            except ValueError:
                proc._fail(f"first line is not JSON: {line!r}")
            return cls(proc, state)
        except BaseException:
            proc.stop(grace=40)
            raise

    def _set_state(self, state):
        super()._set_state(state)
        self.bootstraps = state["bootstraps"]
        self.work = state["work"]
        self.security = state.get("security", "plaintext")
        self.sasl_users = state.get("sasl_users", {})
        self.meta_bootstrap = state.get("meta_bootstrap")

    def control(self, cmd, timeout=CONTROL_TIMEOUT_S):
        return super().control(cmd, timeout)

    def broker_log(self, node_id):
        with open(os.path.join(self.work, "logs", f"broker-{node_id}.log"), "rb") as f:
            return f.read().decode("utf-8", "replace")

    def broker_process_alive(self, node_id):
        """Whether a JVM runs broker node_id's configuration now."""
        config = f"broker-{node_id}.properties"
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if f.read().split(b"\0")[-2:-1] == [os.path.join(self.work, config).encode()]:
                        return True
            except OSError:
                continue
        return False

    def relay_bytes(self):
        """{broker id: {"to_broker", "from_broker", "connections"}} counted by the relays."""
        return {int(k): v for k, v in self.must("stats")["bytes"].items()}

    def stop(self):
        # The launcher stops each JVM with a controlled shutdown (up to 30 s each).
        return self.proc.stop(grace=60)


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


def fd_count(pid):
    """Open file descriptors of a process."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_kib(pid):
    """VmRSS of a process, in KiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS in /proc/{pid}/status")


class PeakRss:
    """The highest VmRSS (KiB) of a process while the block runs, sampled
    every `interval` s by a thread:

        with harness.PeakRss(k.pid) as rss:
            ...                     # the load
        rss.peak, rss.start
    """

    def __init__(self, pid, interval=0.02):
        self.pid, self.interval = pid, interval
        self.start = self.peak = rss_kib(pid)
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self):
        while not self._done.is_set():
            self.peak = max(self.peak, rss_kib(self.pid))
            time.sleep(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._done.set()
        self._thread.join(timeout=5)
        self.peak = max(self.peak, rss_kib(self.pid))


def cpu_seconds(pid):
    """User + system CPU time of a process so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class LineCounter:
    """Counts the lines of a file that grows, reading just what was appended
    since the last call (a long run's files reach hundreds of MB). A file
    that got shorter (rewritten) is counted again from its start; one that
    does not exist has 0 lines."""

    def __init__(self, path):
        self.path, self.pos, self.lines = path, 0, 0

    def __call__(self):
        try:
            with open(self.path, "rb") as f:
                if os.fstat(f.fileno()).st_size < self.pos:
                    self.pos = self.lines = 0
                f.seek(self.pos)
                data = f.read()
        except OSError:
            self.pos = self.lines = 0
            return 0
        self.pos += len(data)
        self.lines += data.count(b"\n")
        return self.lines


def count_lines(path):
    """Lines in a file (0 while it does not exist)."""
    return LineCounter(path)()


def quiet(k, timeout=20.0):
    """Waits until kstretch has no client connection; returns (fds, RSS KiB).
    (The admin endpoint closes its side of a /metrics request a moment after
    the answer: the descriptors are counted 0.3 s after the last one.)"""
    wait_until(lambda: k.metrics()["kstretch_connections_active"] == 0, timeout, interval=0.1,
               what="kstretch with no client connection left")
    time.sleep(0.3)
    return fd_count(k.pid), rss_kib(k.pid)


def wait_until(predicate, timeout, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} not reached within {timeout}s")
        time.sleep(interval)


# ---------------------------------------------------------------- kstretch

# Ports the tests pick for kstretch's listeners: below Linux's ephemeral range
# (net.ipv4.ip_local_port_range starts at 32768), so no client connection of
# this machine can be holding one when kstretch binds it.
PORT_RANGE = (20000, 32000)


def _port_free(port, host="127.0.0.1"):
    """Nothing listens on (host, port) now: a plain bind (no SO_REUSEADDR, no
    SO_REUSEPORT, so another SO_REUSEPORT listener is seen too) succeeds."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def free_ports(count, host="127.0.0.1", consecutive=False, avoid=(), attempts=500):
    """`count` free ports on host in PORT_RANGE, consecutive or not, none in `avoid`."""
    rng = random.Random()
    lo, hi = PORT_RANGE
    if consecutive:
        for _ in range(attempts):
            first = rng.randrange(lo, hi - count)
            block = list(range(first, first + count))
            if not set(block) & set(avoid) and all(_port_free(p, host) for p in block):
                return block
        raise AssertionError(f"no {count} consecutive free ports in {lo}..{hi} after {attempts} tries")
    ports = []
    for _ in range(attempts):
        p = rng.randrange(lo, hi)
        if p not in ports and p not in avoid and _port_free(p, host):
            ports.append(p)
            if len(ports) == count:
                return ports
    raise AssertionError(f"no {count} free ports in {lo}..{hi} after {attempts} tries")


STOPPED_RE = re.compile(r"stopped: (?P<connections>\d+) connections, (?P<requests>\d+) requests, "
                        r"(?P<responses_rewritten>\d+) responses rewritten, (?P<bytes_copied>\d+) bytes copied "
                        r"of (?P<bytes_from_brokers>\d+) from brokers")


class Kstretch:
    """A running kstretch in mapped mode, every listener on 127.0.0.1.

    .bootstrap          "127.0.0.1:PORT" of the bootstrap listener (all a client is given)
    .broker_port(id)    the listener of node `id` (broker.port.base + id)
    .log()              what it wrote on stderr so far
    .metrics()          /metrics of its admin endpoint, as {name: value}
    .rss_kib()          VmRSS from /proc
    .stop()             SIGTERM; returns the exit code; .stopped is its final counters line, parsed
    """

    READY_TIMEOUT_S = 15.0
    # shutdown.drain.ms is 5 s by default: allow for it, and a little more.
    STOP_GRACE_S = 10.0

    def __init__(self, proc, host, listen_port, port_base, admin_port, max_node_id):
        self.proc = proc
        self.host = host
        self.listen_port = listen_port
        self.port_base = port_base
        self.admin_port = admin_port
        self.max_node_id = max_node_id
        self.bootstrap = f"{host}:{listen_port}"
        self.returncode = None
        self.stopped = None

    @classmethod
    def start(cls, log_dir, upstream_bootstrap, max_node_id=6, workers=2, log_level="debug", extra_args=(),
              name="kstretch", host="127.0.0.1", listen_port=None, wrapper=(), ports_of=None):
        """Starts kstretch in front of `upstream_bootstrap` ("host:port,...") and
        waits (bounded) until it logs "ready:". Listener ports: a free block
        base..base+max_node_id for the brokers, and two more free ports for
        the bootstrap listener and the admin endpoint. `wrapper`: a command
        kstretch's command line is appended to (it must exec it: the pid is
        kstretch's). `ports_of`: another Kstretch whose ports this one takes (an upgrade)."""
        require_executable(KSTRETCH, "kstretch")
        if ports_of is not None:
            block = list(range(ports_of.port_base, ports_of.port_base + max_node_id + 1))
            listen_port, admin_port = ports_of.listen_port, ports_of.admin_port
        else:
            block = free_ports(max_node_id + 1, host, consecutive=True)
            if listen_port is None:  # a regional node is given its own, the address its peers list
                listen_port, admin_port = free_ports(2, host, avoid=block)
            else:
                (admin_port,) = free_ports(1, host, avoid=list(block) + [listen_port])
        argv = [*wrapper, KSTRETCH, "--bootstrap-servers", upstream_bootstrap, "--listen", f"{host}:{listen_port}",
                "--broker-port-base", str(block[0]), "--workers", str(workers),
                "--admin-listen", f"{host}:{admin_port}", "--log-level", log_level, *extra_args]
        proc = ManagedProcess(name, argv, log_dir)
        k = cls(proc, host, listen_port, block[0], admin_port, max_node_id)
        try:
            k.wait_log(lambda text: "ready:" in text, cls.READY_TIMEOUT_S, "the \"ready:\" line")
        except BaseException:
            k.stop()
            raise
        return k

    @property
    def pid(self):
        return self.proc.pid

    def broker_port(self, node_id):
        return self.port_base + node_id

    def broker_address(self, node_id):
        return f"{self.host}:{self.broker_port(node_id)}"

    def listener_ports(self, node_ids=None):
        ids = range(1, self.max_node_id + 1) if node_ids is None else node_ids
        return {self.listen_port} | {self.broker_port(i) for i in ids}

    def log(self):
        try:
            with open(self.proc.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_lines(self, *needles):
        """Lines of the log that contain every one of `needles`."""
        return [line for line in self.log().splitlines() if all(n in line for n in needles)]

    def wait_log(self, predicate, timeout, what):
        """Waits until predicate(log text) holds; fails early if kstretch exits."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.log()
            if predicate(text):
                return text
            if self.proc.proc.poll() is not None:
                self.proc._fail(f"exited while waiting for {what}")
            if time.monotonic() >= deadline:
                self.proc._fail(f"{what} did not appear within {timeout:.1f}s")
            time.sleep(0.05)

    def alive(self):
        return self.proc.proc.poll() is None

    def send_signal(self, sig):
        self.proc.proc.send_signal(sig)

    def wait(self, timeout):
        """Exit code once it exits by itself (after a signal), failing after `timeout`."""
        return self.proc.wait(timeout)

    def metrics(self, timeout=5.0):
        url = f"http://{self.host}:{self.admin_port}/metrics"
        with urllib.request.urlopen(url, timeout=timeout) as r:
            text = r.read().decode()
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                out[name] = float(value) if any(ch in value for ch in ".eEIN") else int(value)
        return out

    def rss_kib(self):
        return rss_kib(self.pid)

    def stderr_tail(self, limit=8000):
        return self.proc.stderr_tail(limit)

    def stop(self):
        """SIGTERM (SIGKILL after STOP_GRACE_S); returns the exit code. Idempotent."""
        if self.returncode is None:
            self.returncode = self.proc.stop(grace=self.STOP_GRACE_S)
            m = STOPPED_RE.search(self.log())
            self.stopped = {k: int(v) for k, v in m.groupdict().items()} if m else None
        return self.returncode


# ---------------------------------------------------------------- the latest clients (make deps-go deps-pip)

# franz-go's client program (tests/kafka/clients/franz) and the virtualenv of
# the latest confluent-kafka and kafka-python from PyPI, both in the cache.
FRANZ = os.environ.get("KSTRETCH_FRANZ") or os.path.join(_CACHE, "bin", "kstretch-franz")
VENV = os.environ.get("KSTRETCH_VENV") or os.path.join(_CACHE, "venv")


def franz_path():
    """kstretch-franz, the franz-go client program (`make deps-go`)."""
    return require_executable(FRANZ, "kstretch-franz (franz-go)", "run `make deps`")


def venv_python():
    """The Python of the PyPI virtualenv (`make deps-pip`): run with it,
    clients/python_roundtrip.py uses the latest confluent-kafka and kafka-python."""
    return require_executable(os.path.join(VENV, "bin", "python"), "the PyPI virtualenv's python", "run `make deps`")


def proc_net_tcp():
    """{socket inode: (remote host, remote port, state)} of every TCP socket in
    /proc/net/tcp and tcp6 (state as the kernel's hex code, "01" established)."""
    out = {}
    for name, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        try:
            with open(f"/proc/net/{name}", encoding="ascii") as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10:
                continue
            host_hex, port_hex = fields[2].split(":")
            raw = b"".join(int(host_hex[i:i + 8], 16).to_bytes(4, "little") for i in range(0, len(host_hex), 8))
            out[fields[9]] = (socket.inet_ntop(family, raw), int(port_hex, 16), fields[3])
    return out


def tcp_peers(pid):
    """{(remote host, remote port)} of the TCP sockets process `pid` holds now,
    connected or connecting (listening ones have no remote port)."""
    return set(tcp_connections(pid))


def tcp_connections(pid):
    """collections.Counter {(remote host, remote port): how many of process
    `pid`'s TCP sockets are connected or connecting to it now}."""
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:["):
                inodes.add(link[len("socket:["):-1])
    except OSError:
        return set()
    table = proc_net_tcp()
    return collections.Counter((host, port) for inode in inodes if inode in table
                               for host, port, state in [table[inode]] if port and state != "0A")


class PeerWatcher:
    """Samples, every `interval` seconds until stop() (and for `limit` seconds
    at most), which addresses process `pid` has TCP connections to: .peers is
    every (host, port) seen. A sampler can miss a connection shorter than
    `interval`, never see one that was not there. .most is, per peer, the
    most connections to it seen in one sample."""

    def __init__(self, pid, interval=0.02, limit=300.0):
        self.pid, self.interval, self.limit = pid, interval, limit
        self.peers, self.samples, self.most = set(), 0, collections.Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"peers-{pid}", daemon=True)
        self._thread.start()

    def _run(self):
        deadline = time.monotonic() + self.limit
        while not self._stop.is_set() and time.monotonic() < deadline:
            now = tcp_connections(self.pid)
            self.peers |= set(now)
            for peer, n in now.items():
                self.most[peer] = max(self.most[peer], n)
            self.samples += 1
            self._stop.wait(self.interval)

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=5)
        return self.peers
