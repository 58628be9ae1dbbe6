#!/usr/bin/python3
"""kafkacluster: a stretched cluster of real Apache Kafka brokers (KRaft).

    kafkacluster.py --regions eu:1,us:1,ap:1 [--topic NAME:PARTS:RF ...]
                    [--min-insync N] [--replica-selector rack|none]
                    [--rtt-ms us=40,ap=120 | eu>us=40] [--client-region R]
                    [--no-relay] [--heap 320m] [--work DIR] [--libs DIR]
                    [--security plaintext|sasl_plaintext|ssl|sasl_ssl] [--certs DIR]
                    [--reauth-ms MS] [--meta-listener]

The control surface of kstretch-testcluster (the librdkafka mock simulator),
on real brokers: once every broker is registered and every topic has its
leaders it prints one JSON line on stdout

    {"bootstrap": "127.0.0.1:P,...", "bootstraps": {"eu": ..., ...},
     "brokers": [{"id", "host", "port", "rack", "region", "up", "rtt_ms"}],
     "racks": [...], "topics": [{"name", "rf", "partitions": [{"partition",
     "leader", "replicas", "isr"}]}], "kafka_version": "4.4.0", "work": DIR}

then reads one command per line on stdin and answers each with one JSON line
({"cmd": CMD, "ok": true, ...} or {"cmd": CMD, "ok": false, "error": ...}):

    down ID                 stop broker ID (controlled shutdown, SIGKILL after 30 s)
    up ID                   start it again, answer once it is registered
    leader TOPIC PART ID    Admin API reassignment putting ID first, then a
                            preferred leader election, until ID leads
    rtt REGION MS           round trip between the default client region's
                            clients and REGION's brokers (MS/2 each way)
    rtt FROM TO MS          the same for clients of region FROM
    create NAME:PARTS:RF    another topic
    state                   the JSON of the first line, fresh
    stats                   bytes through each broker's relays, per direction
    groups                  the groups the brokers know, with their type (classic,
                            consumer) and protocol
    offsets GROUP           a group's committed offsets, {"TOPIC:PARTITION": offset}
    scram USER MECH PW      sets USER's SCRAM credential for MECH (SCRAM-SHA-256/512) to PW
    quit

Brokers: node ids interleave the regions as the simulator's do (1=eu-a,
2=us-a, 3=ap-a, 4=eu-b, ...), broker.rack is REGION-LETTER. One dedicated
controller (node id 1000) holds the KRaft quorum, so `down` of any broker
leaves the cluster running. Partition p of a topic has replicas
brokers[(p + j) % n] for j < RF: leaders rotate over the brokers, and with
regions interleaved RF = regions puts one replica in each region.

Region latency: each broker has one client listener per region, each behind a
delay relay (delayrelay.py) that the broker advertises; a client of region R
uses R's bootstrap and sees every broker at R's delay. Replication and the
controller are not delayed. --no-relay advertises the brokers' own ports.

Security (--security) applies to the client listeners only; replication and
the controller stay PLAINTEXT. sasl_plaintext and sasl_ssl enable PLAIN,
SCRAM-SHA-256, SCRAM-SHA-512 and OAUTHBEARER: the PLAIN users are in the
listeners' JAAS configuration, the SCRAM users are written into the metadata
by kafka-storage format (--add-scram), and OAUTHBEARER takes Kafka's unsecured
JWS tokens (any subject: for tests only). The users and passwords are in the
first line's "sasl_users". --reauth-ms sets connections.max.reauth.ms (KIP-368:
the brokers make clients re-authenticate on the same connection). ssl and
sasl_ssl need --certs DIR, made by tests/integration/certs.py: the brokers'
keystore is DIR/server.p12 (PKCS#12, password "changeit"), clients trust
DIR/ca.crt. There is no authorizer: every authenticated principal may do all.

--meta-listener gives each broker one more listener, PLAINTEXT and without
authentication, that advertises the default client region's (relayed)
addresses: for a proxy whose own metadata connection does not authenticate
(kstretch asks for Metadata once at start, before any client). Its addresses
are "meta_bootstrap"; every client connection still goes to the secured ones.

Processes: the JVMs die with the launcher (PR_SET_PDEATHSIG), the launcher
stops them on SIGTERM, SIGINT, EOF on stdin and `quit`, and removes its work
directory unless --work was given. Every wait is bounded.
"""
import argparse
import ctypes
import hashlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import delayrelay  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
KAFKA_VERSION = "4.4.0"
CACHE = os.environ.get("KSTRETCH_CACHE") or os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "kstretch")
LIBS = os.environ.get("KSTRETCH_KAFKA_LIBS") or os.path.join(CACHE, f"kafka-{KAFKA_VERSION}", "libs")
CONTROLLER_ID = 1000
START_TIMEOUT_S = 120
STOP_TIMEOUT_S = 30
SELECTORS = {"rack": "org.apache.kafka.common.replica.RackAwareReplicaSelector", "none": None}
SECURITY = ("plaintext", "sasl_plaintext", "ssl", "sasl_ssl")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER")
# The test users: PLAIN ones in the JAAS configuration, SCRAM ones in the
# metadata. OAUTHBEARER (unsecured JWS) has no users: any subject is accepted.
SASL_USERS = {
    "PLAIN": {"alice": "alice-secret", "bob": "bob-secret"},
    "SCRAM-SHA-256": {"scram256": "scram256-secret"},
    "SCRAM-SHA-512": {"scram512": "scram512-secret"},
}
CERTS_PASSWORD = "changeit"

_libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent():
    _libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def log(msg):
    print(f"kafkacluster: {msg}", file=sys.stderr, flush=True)


class LaunchError(Exception):
    pass


# Ports below Linux's ephemeral range (32768..), so that no outgoing connection
# holds one when a broker binds it, and apart from the 20000.. range the
# integration harness gives kstretch.
PORT_RANGE = (10000, 20000)
_taken = set()


def free_port():
    """A port nothing listens on now, not handed out before by this launcher."""
    rng = random.Random()
    for _ in range(1000):
        port = rng.randrange(*PORT_RANGE)
        if port in _taken:
            continue
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            s.close()
        _taken.add(port)
        return port
    raise LaunchError(f"no free port in {PORT_RANGE}")


def port_open(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def parse_regions(text):
    regions = []
    for part in text.split(","):
        name, _, count = part.partition(":")
        if not name or not name.isalnum() or not count.isdigit() or not 1 <= int(count) <= 8:
            raise LaunchError(f"--regions: {part!r} is not NAME:COUNT (COUNT 1..8)")
        regions.append((name, int(count)))
    if len({r for r, _ in regions}) != len(regions):
        raise LaunchError("--regions: a region is named twice")
    return regions


def parse_topic(text):
    parts = text.split(":")
    if len(parts) != 3 or not parts[0] or not parts[1].isdigit() or not parts[2].isdigit():
        raise LaunchError(f"topic {text!r} is not NAME:PARTS:RF")
    return parts[0], int(parts[1]), int(parts[2])


def jvm_opts(heap):
    # Small heaps and the serial collector: several brokers share 2 cores.
    return [f"-Xmx{heap}", "-Xms64m", "-XX:+UseSerialGC", "-XX:ActiveProcessorCount=2",
            "-Djava.awt.headless=true", "-Dlog4j2.formatMsgNoLookups=true"]


class Broker:
    def __init__(self, node_id, region, rack):
        self.id = node_id
        self.region = region
        self.rack = rack
        self.repl_port = free_port()
        self.meta_port = None  # --meta-listener
        self.client_ports = {}  # client region -> the broker's own port
        self.advertised = {}  # client region -> the port clients are given
        self.proc = None
        self.log = None


class KafkaCluster:
    def __init__(self, args):
        self.args = args
        self.regions = parse_regions(args.regions)
        self.region_names = [r for r, _ in self.regions]
        self.client_region = args.client_region or self.region_names[0]
        if self.client_region not in self.region_names:
            raise LaunchError(f"--client-region {self.client_region} is not one of the regions")
        self.topics = [parse_topic(t) for t in args.topic]
        for name, parts, rf in self.topics:
            if not 1 <= parts <= 1000 or not 1 <= rf <= self.broker_count():
                raise LaunchError(f"topic {name}: PARTS must be 1..1000 and RF 1..{self.broker_count()}")
        self.security = args.security
        self.sasl = self.security.startswith("sasl_")
        self.tls = self.security.endswith("ssl")
        self.certs = os.path.abspath(args.certs) if args.certs else None
        if self.tls:
            if not self.certs:
                raise LaunchError(f"--security {self.security} needs --certs DIR (tests/integration/certs.py)")
            for name in ("server.p12", "ca.crt"):
                if not os.path.exists(os.path.join(self.certs, name)):
                    raise LaunchError(f"--certs {self.certs} has no {name} (make it with tests/integration/certs.py)")
        if args.reauth_ms is not None and args.reauth_ms < 1000:
            raise LaunchError("--reauth-ms must be at least 1000")
        self.keep_work = bool(args.work)
        self.work = args.work or tempfile.mkdtemp(prefix="kstretch-kafka-")
        os.makedirs(self.work, exist_ok=True)
        self.cluster_id = None
        self.controller = None
        self.control = None
        self.relays = None
        self.rtt = {}  # (client region, broker region) -> ms
        self.brokers = self._plan_brokers()

    def broker_count(self):
        return sum(n for _, n in self.regions)

    def _plan_brokers(self):
        brokers, node_id = [], 1
        for i in range(max(n for _, n in self.regions)):
            for region, n in self.regions:
                if i < n:
                    brokers.append(Broker(node_id, region, f"{region}-{chr(ord('a') + i)}"))
                    node_id += 1
        return brokers

    def broker(self, node_id):
        for b in self.brokers:
            if b.id == node_id:
                return b
        raise LaunchError(f"no broker {node_id}")

    # ------------------------------------------------------------ processes

    def _java(self, name, argv, log_name):
        path = os.path.join(self.work, "logs", log_name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        out = open(path, "ab")
        try:
            return subprocess.Popen(["java"] + argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    preexec_fn=_die_with_parent, cwd=self.work)
        finally:
            out.close()

    def _log4j(self):
        path = os.path.join(self.work, "log4j2.properties")
        with open(path, "w") as f:
            f.write("rootLogger.level=INFO\nrootLogger.appenderRef.out.ref=out\n"
                    "appender.out.type=Console\nappender.out.name=out\n"
                    "appender.out.layout.type=PatternLayout\n"
                    "appender.out.layout.pattern=[%d] %p %m (%c)%n\n"
                    "logger.state.name=state.change.logger\nlogger.state.level=WARN\n"
                    "logger.req.name=kafka.request.logger\nlogger.req.level=WARN\n"
                    "logger.clients.name=org.apache.kafka.clients\nlogger.clients.level=WARN\n"
                    "logger.cfg.name=org.apache.kafka.common.config\nlogger.cfg.level=WARN\n")
        return path

    def _classpath(self):
        jar = os.path.join(LIBS, f"kafka_2.13-{KAFKA_VERSION}.jar")
        if not os.path.exists(jar):
            raise LaunchError(f"Apache Kafka {KAFKA_VERSION} is not in {LIBS} (run `make deps`)")
        return os.path.join(LIBS, "*")

    def _control_classes(self):
        """KafkaControl.java compiled once per source into the cache."""
        src = os.path.join(HERE, "KafkaControl.java")
        with open(src, "rb") as f:
            digest = hashlib.sha256(f.read() + KAFKA_VERSION.encode()).hexdigest()[:16]
        out = os.path.join(CACHE, "classes", f"kafkacontrol-{digest}")
        if not os.path.exists(os.path.join(out, "KafkaControl.class")):
            tmp = out + f".tmp{os.getpid()}"
            os.makedirs(tmp, exist_ok=True)
            r = subprocess.run(["javac", "-nowarn", "-d", tmp, "-cp", self._classpath(), src],
                               capture_output=True, timeout=120)
            if r.returncode != 0:
                raise LaunchError(f"javac KafkaControl.java failed: {r.stderr.decode()[-2000:]}")
            try:
                os.rename(tmp, out)
            except OSError:
                shutil.rmtree(tmp, ignore_errors=True)  # another launcher compiled it first
        return out

    def _start_control(self):
        cp = self._control_classes() + os.pathsep + self._classpath()
        log_path = os.path.join(self.work, "logs", "control.log")
        os.makedirs(os.path.dirname(log_path), exist_ok=True)
        err = open(log_path, "ab")
        self.control = subprocess.Popen(
            ["java", "-Xmx192m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
             f"-Dlog4j2.configurationFile={self._log4j()}", "-Dlog4j2.level=WARN", "-cp", cp, "KafkaControl"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, preexec_fn=_die_with_parent, bufsize=0)
        err.close()
        self._control_lock = threading.Lock()

    def ask(self, line, timeout=60):
        """One KafkaControl command; its parsed answer, or LaunchError."""
        with self._control_lock:
            try:
                self.control.stdin.write((line + "\n").encode())
                self.control.stdin.flush()
            except OSError as e:
                raise LaunchError(f"control JVM gone: {e}")
            out = [None]

            def read():
                out[0] = self.control.stdout.readline()

            t = threading.Thread(target=read, daemon=True)
            t.start()
            t.join(timeout)
            if t.is_alive():
                self._kill(self.control)
                raise LaunchError(f"control JVM did not answer {line.split()[0]!r} within {timeout}s")
            if not out[0]:
                raise LaunchError("control JVM exited (see logs/control.log)")
        answer = json.loads(out[0])
        if not answer.get("ok"):
            raise LaunchError(answer.get("error", "control command failed"))
        return answer

    @staticmethod
    def _kill(proc, grace=STOP_TIMEOUT_S):
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    # --------------------------------------------------------------- config

    def _common_config(self, node_id, roles):
        n = self.broker_count()
        rf = min(3, n)
        isr = min(self.args.min_insync, rf)
        lines = [
            f"process.roles={roles}", f"node.id={node_id}",
            f"controller.quorum.bootstrap.servers=127.0.0.1:{self.controller_port}",
            "controller.listener.names=CONTROLLER",
            f"log.dirs={os.path.join(self.work, f'data-{node_id}')}",
            f"default.replication.factor={rf}", f"min.insync.replicas={isr}",
            f"offsets.topic.replication.factor={rf}", "offsets.topic.num.partitions=10",
            f"transaction.state.log.replication.factor={rf}", f"transaction.state.log.min.isr={isr}",
            "transaction.state.log.num.partitions=10",
            f"share.coordinator.state.topic.replication.factor={rf}",
            f"share.coordinator.state.topic.min.isr={isr}",
            "group.initial.rebalance.delay.ms=0",
            "num.network.threads=2", "num.io.threads=2", "background.threads=2", "num.replica.fetchers=1",
            "log.cleaner.threads=1", "num.recovery.threads.per.data.dir=1",
            "log.segment.bytes=67108864", "auto.create.topics.enable=true",
        ]
        return lines

    def _write(self, name, lines):
        path = os.path.join(self.work, name)
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        return path

    def _controller_config(self):
        lines = self._common_config(CONTROLLER_ID, "controller")
        lines += [f"listeners=CONTROLLER://127.0.0.1:{self.controller_port}",
                  "listener.security.protocol.map=CONTROLLER:PLAINTEXT"]
        return self._write("controller.properties", lines)

    def _broker_config(self, b):
        lines = self._common_config(b.id, "broker")
        names = {r: f"C_{r.upper()}" for r in self.region_names}
        listeners = [f"REPL://127.0.0.1:{b.repl_port}"] + \
            [f"{names[r]}://127.0.0.1:{b.client_ports[r]}" for r in self.region_names]
        advertised = [f"REPL://127.0.0.1:{b.repl_port}"] + \
            [f"{names[r]}://127.0.0.1:{b.advertised[r]}" for r in self.region_names]
        client_protocol = self.security.upper()
        protocols = ["CONTROLLER:PLAINTEXT", "REPL:PLAINTEXT"] + \
            [f"{names[r]}:{client_protocol}" for r in self.region_names]
        if b.meta_port:
            listeners.append(f"META://127.0.0.1:{b.meta_port}")
            advertised.append(f"META://127.0.0.1:{b.advertised[self.client_region]}")
            protocols.append("META:PLAINTEXT")
        lines += [f"broker.rack={b.rack}", "inter.broker.listener.name=REPL",
                  "listeners=" + ",".join(listeners), "advertised.listeners=" + ",".join(advertised),
                  "listener.security.protocol.map=" + ",".join(protocols)]
        for r in self.region_names:
            lines += self._security_config(names[r].lower())
        if self.args.reauth_ms is not None:
            lines.append(f"connections.max.reauth.ms={self.args.reauth_ms}")
        selector = SELECTORS[self.args.replica_selector]
        if selector:
            lines.append(f"replica.selector.class={selector}")
        return self._write(f"broker-{b.id}.properties", lines)

    def _security_config(self, listener):
        """The client listener `listener`'s SASL and TLS settings (none for plaintext)."""
        prefix = f"listener.name.{listener}."
        lines = []
        if self.sasl:
            plain_users = " ".join(f'user_{u}="{pw}"' for u, pw in SASL_USERS["PLAIN"].items())
            lines += [
                prefix + "sasl.enabled.mechanisms=" + ",".join(SASL_MECHANISMS),
                prefix + "plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule "
                         f"required {plain_users};",
                prefix + "scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule "
                         "required;",
                prefix + "scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule "
                         "required;",
                # No server callback handler: Kafka's unsecured JWS validator.
                prefix + "oauthbearer.sasl.jaas.config=org.apache.kafka.common.security.oauthbearer."
                         'OAuthBearerLoginModule required unsecuredLoginStringClaim_sub="broker";',
            ]
        if self.tls:
            lines += [
                prefix + "ssl.keystore.type=PKCS12",
                prefix + f"ssl.keystore.location={os.path.join(self.certs, 'server.p12')}",
                prefix + f"ssl.keystore.password={CERTS_PASSWORD}",
                prefix + f"ssl.key.password={CERTS_PASSWORD}",
                prefix + "ssl.client.auth=none",
            ]
        return lines

    def _scram_args(self):
        """kafka-storage format's --add-scram options: the SCRAM users in the bootstrap metadata."""
        if not self.sasl:
            return ""
        out = ""
        for mech in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
            for user, pw in SASL_USERS[mech].items():
                out += f" --add-scram {mech}=[name={user},password={pw}]"
        return out

    # ------------------------------------------------------------ lifecycle

    def start(self):
        t0 = time.monotonic()
        self.controller_port = free_port()
        for b in self.brokers:
            if self.args.meta_listener:
                b.meta_port = free_port()
            for r in self.region_names:
                b.client_ports[r] = free_port()
                b.advertised[r] = free_port() if not self.args.no_relay else b.client_ports[r]
        if not self.args.no_relay:
            self.relays = delayrelay.RelaySet()
            for b in self.brokers:
                for r in self.region_names:
                    self.relays.add(b.id, r, b.client_ports[r], b.advertised[r])
        for spec in self.args.rtt_ms:
            self._set_rtt_spec(spec)
        self._start_control()
        self.cluster_id = self._random_cluster_id()
        self.ask(f"format {self.cluster_id} {self._controller_config()} --standalone{self._scram_args()}")
        for b in self.brokers:
            self.ask(f"format {self.cluster_id} {self._broker_config(b)}")
        log4j = self._log4j()
        self.controller = self._java("controller", jvm_opts("192m") + [f"-Dlog4j2.configurationFile={log4j}", "-cp",
                                     self._classpath(), "kafka.Kafka", os.path.join(self.work, "controller.properties")],
                                     "controller.log")
        for b in self.brokers:
            self._start_broker(b)
        repl = ",".join(f"127.0.0.1:{b.repl_port}" for b in self.brokers)
        self.ask(f"connect {repl}")
        self._wait_brokers(len(self.brokers), START_TIMEOUT_S - (time.monotonic() - t0))
        for name, parts, rf in self.topics:
            self.create(name, parts, rf)
        log(f"{len(self.brokers)} brokers of Apache Kafka {KAFKA_VERSION} ready in {time.monotonic() - t0:.1f}s "
            f"(work {self.work})")

    def _random_cluster_id(self):
        import base64
        import uuid
        while True:  # as Kafka's own Uuid.randomUuid: none that reads as an option
            cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
            if not cid.startswith("-"):
                return cid

    def _start_broker(self, b):
        argv = jvm_opts(self.args.heap) + [f"-Dlog4j2.configurationFile={os.path.join(self.work, 'log4j2.properties')}",
                                           "-cp", self._classpath(), "kafka.Kafka",
                                           os.path.join(self.work, f"broker-{b.id}.properties")]
        b.proc = self._java(f"broker-{b.id}", argv, f"broker-{b.id}.log")

    def _wait_brokers(self, n, timeout):
        deadline = time.monotonic() + max(timeout, 10)
        while True:
            for b in self.brokers:
                if b.proc is not None and b.proc.poll() is not None:
                    raise LaunchError(f"broker {b.id} exited with {b.proc.returncode} (see {self.work}/logs/broker-{b.id}.log)")
            if self.controller.poll() is not None:
                raise LaunchError(f"the controller exited with {self.controller.returncode}")
            left = deadline - time.monotonic()
            if left <= 0:
                raise LaunchError(f"{n} brokers not registered within {timeout:.0f}s")
            try:
                return self.ask(f"wait-brokers {n} {int(min(left, 5) * 1000)}", timeout=left + 20)
            except LaunchError as e:
                if "not ready within" not in str(e):
                    raise

    def create(self, name, parts, rf):
        n = len(self.brokers)
        assignment = ";".join(",".join(str(self.brokers[(p + j) % n].id) for j in range(rf)) for p in range(parts))
        self.ask(f"create {name} {parts} {rf} {assignment}")

    def down(self, node_id):
        b = self.broker(node_id)
        if b.proc is None or b.proc.poll() is not None:
            raise LaunchError(f"broker {node_id} is already down")
        self._kill(b.proc)
        b.proc = None
        if self.relays:
            self.relays.cut(node_id)
        # Wait until no port of it accepts, its relays' included, so a client's
        # next connect is refused as it is by a broker that is down.
        ports = list(b.client_ports.values()) + (list(b.advertised.values()) if self.relays else []) + \
            ([b.meta_port] if b.meta_port else [])
        deadline = time.monotonic() + 10
        while any(port_open(p) for p in ports) and time.monotonic() < deadline:
            time.sleep(0.1)

    def up(self, node_id):
        b = self.broker(node_id)
        if b.proc is not None and b.proc.poll() is None:
            raise LaunchError(f"broker {node_id} is already up")
        self._start_broker(b)
        self._wait_registered(node_id, START_TIMEOUT_S)
        if self.relays:
            self.relays.restore(node_id)

    def _wait_registered(self, node_id, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.broker(node_id).proc.poll() is not None:
                raise LaunchError(f"broker {node_id} exited with {self.broker(node_id).proc.returncode}")
            nodes = self.ask(f"wait-brokers 1 1000").get("nodes", [])
            if node_id in nodes and port_open(self.broker(node_id).client_ports[self.client_region]):
                return
            time.sleep(0.3)
        raise LaunchError(f"broker {node_id} did not register within {timeout}s")

    def _set_rtt_spec(self, spec):
        for item in spec.split(","):
            pair, _, ms = item.partition("=")
            frm, _, to = pair.rpartition(">")
            try:
                self.set_rtt(frm or self.client_region, to, int(ms))
            except ValueError:
                raise LaunchError(f"--rtt-ms: {item!r} is not REGION=MS or FROM>TO=MS")

    def set_rtt(self, client_region, broker_region, ms):
        for r in (client_region, broker_region):
            if r not in self.region_names:
                raise LaunchError(f"no region {r}")
        if not 0 <= ms <= 10000:
            raise LaunchError("MS must be 0..10000")
        if self.relays is None:
            raise LaunchError("no relays (--no-relay): no latency to set")
        self.rtt[(client_region, broker_region)] = ms
        for b in self.brokers:
            if b.region == broker_region:
                self.relays.set_delay(client_region, b.id, ms / 2000.0)

    def state(self):
        topics = self.ask("describe")["topics"]
        bootstraps = {r: ",".join(f"127.0.0.1:{b.advertised[r]}" for b in self.brokers) for r in self.region_names}
        return {
            "bootstrap": bootstraps[self.client_region], "bootstraps": bootstraps,
            "client_region": self.client_region,
            "brokers": [{"id": b.id, "host": "127.0.0.1", "port": b.advertised[self.client_region],
                         "ports": {r: b.advertised[r] for r in self.region_names},
                         "rack": b.rack, "region": b.region,
                         "up": b.proc is not None and b.proc.poll() is None,
                         "rtt_ms": self.rtt.get((self.client_region, b.region), 0)} for b in self.brokers],
            "racks": [b.rack for b in self.brokers],
            "topics": [t for t in topics if not t["name"].startswith("__")],
            "kafka_version": KAFKA_VERSION, "work": self.work,
            "replica_selector": self.args.replica_selector,
            "security": self.security,
            "sasl_mechanisms": list(SASL_MECHANISMS) if self.sasl else [],
            "sasl_users": SASL_USERS if self.sasl else {},
            "reauth_ms": self.args.reauth_ms,
            "certs": self.certs,
            "meta_bootstrap": ",".join(f"127.0.0.1:{b.meta_port}" for b in self.brokers)
            if self.args.meta_listener else None,
        }

    def stats(self):
        if self.relays is None:
            raise LaunchError("no relays (--no-relay): nothing counted")
        return {"bytes": {str(k): v for k, v in self.relays.stats().items()}}

    def stop(self):
        for b in self.brokers:
            try:
                self._kill(b.proc)
            except Exception as e:  # noqa: BLE001 - stop the rest anyway
                log(f"stopping broker {b.id}: {e}")
        for p in (self.controller, self.control):
            try:
                self._kill(p, grace=10)
            except Exception as e:  # noqa: BLE001
                log(f"stopping: {e}")
        if self.relays:
            self.relays.close()
        if not self.keep_work:
            shutil.rmtree(self.work, ignore_errors=True)

    # ------------------------------------------------------------- commands

    def command(self, line):
        w = line.split()
        if not w:
            return None
        cmd = w[0]
        try:
            if cmd == "down" and len(w) == 2:
                self.down(int(w[1]))
                return self.state()
            if cmd == "up" and len(w) == 2:
                self.up(int(w[1]))
                return self.state()
            if cmd == "leader" and len(w) == 4:
                self.ask(f"leader {w[1]} {int(w[2])} {int(w[3])} 60000", timeout=90)
                return self.state()
            if cmd == "rtt" and len(w) in (3, 4):
                frm = w[1] if len(w) == 4 else self.client_region
                self.set_rtt(frm, w[-2], int(w[-1]))
                return self.state()
            if cmd == "create" and len(w) == 2:
                self.create(*parse_topic(w[1]))
                return self.state()
            if cmd == "state" and len(w) == 1:
                return self.state()
            if cmd == "stats" and len(w) == 1:
                return self.stats()
            if cmd == "groups" and len(w) == 1:
                return {"groups": self.ask("groups")["groups"]}
            if cmd == "offsets" and len(w) == 2:
                return {"offsets": self.ask(f"offsets {w[1]}")["offsets"]}
            if cmd == "scram" and len(w) == 4:
                self.ask(f"scram {w[1]} {w[2]} {w[3]}")
                return self.state()
            raise LaunchError(f"unknown command or wrong arguments: {line!r}")
        except (LaunchError, ValueError) as e:
            return {"ok": False, "error": str(e)}


def main(argv=None):
    ap = argparse.ArgumentParser(description="A stretched cluster of real Apache Kafka brokers (KRaft).")
    ap.add_argument("--regions", default="eu:1,us:1,ap:1")
    ap.add_argument("--topic", action="append", default=[])
    ap.add_argument("--min-insync", type=int, default=1)
    ap.add_argument("--replica-selector", choices=sorted(SELECTORS), default="none")
    ap.add_argument("--rtt-ms", action="append", default=[])
    ap.add_argument("--client-region")
    ap.add_argument("--no-relay", action="store_true")
    ap.add_argument("--heap", default="320m")
    ap.add_argument("--work")
    ap.add_argument("--security", choices=SECURITY, default="plaintext",
                    help="protocol of the client listeners (replication and the controller stay PLAINTEXT)")
    ap.add_argument("--certs", help="directory of tests/integration/certs.py's certificates (ssl, sasl_ssl)")
    ap.add_argument("--reauth-ms", type=int, help="connections.max.reauth.ms of the brokers (KIP-368)")
    ap.add_argument("--meta-listener", action="store_true",
                    help="one more PLAINTEXT listener per broker advertising the client listeners' addresses")
    args = ap.parse_args(argv)

    stopping = []

    def on_signal(signum, _frame):
        stopping.append(signum)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    cluster = None
    try:
        cluster = KafkaCluster(args)
        cluster.start()
        print(json.dumps(cluster.state()), flush=True)
        for line in sys.stdin:
            line = line.strip()
            if not line:
                continue
            if line == "quit":
                print(json.dumps({"cmd": "quit", "ok": True}), flush=True)
                break
            answer = cluster.command(line)
            answer = dict({"cmd": line, "ok": True}, **answer) if answer.get("ok", True) else dict(answer, cmd=line)
            print(json.dumps(answer), flush=True)
        return 0
    except LaunchError as e:
        log(f"error: {e}")
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if cluster is not None:
            cluster.stop()


if __name__ == "__main__":
    sys.exit(main())
