"""The Java test clients of the real-Kafka suite: Apache kafka-clients 4.4
driven by tests/kafka/clients/java/KafkaRoundtrip.java (produce, consume,
txn, admin; its header says what each sub-command takes and prints).

    classes = build_java_clients(tmp_or_build_dir)      # javac, skipped when up to date
    r = java_client(["produce", k.bootstrap, topic, input_tsv], timeout=90)
    c = java_cmd(["consume", k.bootstrap, topic, group, "5000", "60"], log_dir, "consumer")
    ...                                                  # produce while it reads
    r = c.wait(timeout=90)                               # r.returncode, r.stdout, r.stderr

The sources are compiled at test time against the jars `make deps` resolved
($KSTRETCH_KAFKA_LIBS, by default ~/.cache/kstretch/kafka-4.4.0/libs). A
missing java, javac or jar fails the test (never skips it).

Exit codes of the clients: 0 ok, 2 usage, 3 produce failed, 4 fewer records
than expected in time, 5 any other failure.
"""
import glob
import os
import shutil
import subprocess
import tempfile
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SOURCES = os.path.join(HERE, "clients", "java")
LOG4J2_CONFIG = os.path.join(SOURCES, "log4j2.properties")
MAIN_CLASS = "KafkaRoundtrip"

KAFKA_VERSION = "4.4.0"
_CACHE = os.environ.get("KSTRETCH_CACHE") or os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "kstretch")
KAFKA_LIBS = os.environ.get("KSTRETCH_KAFKA_LIBS") or os.path.join(_CACHE, f"kafka-{KAFKA_VERSION}", "libs")
BUILD = os.environ.get("KSTRETCH_BUILD") or os.path.join(REPO, "build")
DEFAULT_CLASSES = os.path.join(BUILD, "tests", "kafka", "java-classes")

# Small JVMs for a 2-core machine: a client needs little heap, the serial
# collector has no GC threads to compete, C1 alone starts and warms fastest.
JVM_FLAGS = ("-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xshare:auto")
JAVAC_TIMEOUT_S = 180
STOP_GRACE_S = 5.0
STDERR_TAIL = 4000

EXIT_CODES = {0: "ok", 2: "usage", 3: "produce failed", 4: "fewer records than expected in time",
              5: "other failure"}

HINT = "run `make deps`"

_built = None  # the classes directory build_java_clients made last


def _tool(name):
    path = shutil.which(name)
    if not path:
        pytest.fail(f"{name} is not installed ({HINT})", pytrace=False)
    return path


def kafka_libs():
    """The directory of the Kafka jars; fails the test when kafka-clients is not there."""
    jar = os.path.join(KAFKA_LIBS, f"kafka-clients-{KAFKA_VERSION}.jar")
    if not os.path.exists(jar):
        pytest.fail(f"kafka-clients {KAFKA_VERSION} is missing: {jar} ({HINT})", pytrace=False)
    return KAFKA_LIBS


def _classpath(classes):
    return classes + os.pathsep + os.path.join(kafka_libs(), "*")


def _up_to_date(sources, out_dir):
    for src in sources:
        cls = os.path.join(out_dir, os.path.splitext(os.path.basename(src))[0] + ".class")
        try:
            if os.path.getmtime(cls) < os.path.getmtime(src):
                return False
        except OSError:
            return False
    return True


def build_java_clients(out_dir=DEFAULT_CLASSES):
    """Compiles the Java clients into `out_dir` (javac against the Kafka jars)
    unless every source's class file there is newer than the source. Returns
    `out_dir`, which java_client and java_cmd then use by default.

    javac writes into a fresh directory next to `out_dir` and the class files
    are then moved in one by one, so a concurrent build never leaves a
    half-written class file for a JVM to load."""
    global _built
    sources = sorted(glob.glob(os.path.join(SOURCES, "*.java")))
    if not sources:
        pytest.fail(f"no Java sources in {SOURCES}", pytrace=False)
    out_dir = os.path.abspath(out_dir)
    libs = kafka_libs()
    if _up_to_date(sources, out_dir):
        _tool("java")
        _built = out_dir
        return out_dir
    javac = _tool("javac")
    _tool("java")
    os.makedirs(out_dir, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".javac-", dir=os.path.dirname(out_dir))
    try:
        argv = [javac, "--release", "17", "-encoding", "UTF-8", "-Xlint:all", "-Werror", "-d", tmp,
                "-cp", os.path.join(libs, "*"), *sources]
        try:
            r = subprocess.run(argv, capture_output=True, timeout=JAVAC_TIMEOUT_S)
        except subprocess.TimeoutExpired as e:
            raise AssertionError(f"javac did not finish within {JAVAC_TIMEOUT_S}s\n--- stderr ---\n"
                                 f"{_tail(e.stderr)}") from None
        if r.returncode != 0:
            raise AssertionError(f"javac exited with {r.returncode}\n--- javac output ---\n"
                                 f"{_tail(r.stdout + r.stderr)}")
        for name in sorted(os.listdir(tmp)):
            os.replace(os.path.join(tmp, name), os.path.join(out_dir, name))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _built = out_dir
    return out_dir


def _classes(classes):
    if classes is not None:
        return classes
    if _built is not None:
        return _built
    return build_java_clients()


def java_argv(args, classes=None, log_level=None, jvm_flags=()):
    """The command line that runs `KafkaRoundtrip ARGS...` (compiling the
    clients into the default directory first if nothing was built yet).
    log_level (info, debug, ...) makes kafka-clients log more than warnings
    on stderr."""
    argv = [_tool("java"), *JVM_FLAGS, *jvm_flags, f"-Dlog4j2.configurationFile={LOG4J2_CONFIG}"]
    if log_level:
        argv.append(f"-Dkstretch.client.log.level={log_level}")
    argv += ["-cp", _classpath(_classes(classes)), MAIN_CLASS, *[str(a) for a in args]]
    return argv


def _tail(data, limit=STDERR_TAIL):
    if data is None:
        return ""
    if isinstance(data, bytes):
        data = data.decode("utf-8", "replace")
    return data[-limit:]


def _describe(args, returncode):
    return f"java {MAIN_CLASS} {' '.join(str(a) for a in args[:1])} exited with {returncode} " \
           f"({EXIT_CODES.get(returncode, 'unexpected')})"


def java_client(args, timeout, classes=None, input=None, env=None, check=True, log_level=None):
    """Runs `KafkaRoundtrip ARGS...` to its end and returns the
    subprocess.CompletedProcess (stdout and stderr as bytes). `timeout` bounds
    the whole run, JVM start included: give it more than the sub-command's
    own timeout (it needs up to 15 s more to commit and close). A client
    still running then is killed and the test fails with the tail of its
    stderr; with check, so does an exit code other than 0."""
    argv = java_argv(args, classes, log_level)
    try:
        r = subprocess.run(argv, input=input, capture_output=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"java {MAIN_CLASS} {args[0] if args else ''} did not finish within {timeout}s "
                             f"(killed)\n--- stderr ---\n{_tail(e.stderr)}") from None
    if check and r.returncode != 0:
        raise AssertionError(f"{_describe(args, r.returncode)}\n--- stderr ---\n{_tail(r.stderr)}")
    return r


class JavaProcess:
    """A Java client running in the background, stdout and stderr in files
    (a consumer's output can be large; nothing is held in a pipe)."""

    def __init__(self, args, log_dir, name, classes=None, env=None, log_level=None):
        self.args = [str(a) for a in args]
        self.name = name
        self.stdout_path = os.path.join(log_dir, f"{name}.stdout")
        self.stderr_path = os.path.join(log_dir, f"{name}.stderr.log")
        argv = java_argv(self.args, classes, log_level)
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env)
        self.started = time.monotonic()

    @property
    def pid(self):
        return self.proc.pid

    def _read(self, path):
        try:
            with open(path, "rb") as f:
                return f.read()
        except OSError:
            return b""

    def stdout(self):
        return self._read(self.stdout_path)

    def stderr(self):
        return self._read(self.stderr_path)

    def wait(self, timeout, check=True):
        """Waits (at most `timeout` s) for the end; returns a CompletedProcess.
        Still running then: killed, and the test fails with its stderr."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise AssertionError(f"{self.name} (java {MAIN_CLASS} {self.args[0]}) still running after "
                                 f"{timeout}s (killed)\n--- stderr ---\n{_tail(self.stderr())}") from None
        r = subprocess.CompletedProcess(self.proc.args, self.proc.returncode, self.stdout(), self.stderr())
        if check and r.returncode != 0:
            raise AssertionError(f"{self.name}: {_describe(self.args, r.returncode)}\n--- stderr ---\n"
                                 f"{_tail(r.stderr)}")
        return r

    def stop(self, grace=STOP_GRACE_S):
        """SIGTERM, then SIGKILL after `grace` seconds; the exit code."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=grace)
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def java_cmd(args, log_dir, name, classes=None, env=None, log_level=None):
    """Starts `KafkaRoundtrip ARGS...` in the background (e.g. a consumer that
    reads while records are produced) and returns its JavaProcess. Whoever
    starts it stops it: `with java_cmd(...) as c:`, or c.wait() / c.stop()."""
    return JavaProcess(args, log_dir, name, classes=classes, env=env, log_level=log_level)
