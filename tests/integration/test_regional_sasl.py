"""SASL in regional mode against a scripted broker (fakebroker.py), which
takes kstretch's own PLAIN credentials on every connection and refuses any
other request on a connection that has not authenticated (per connection:
each is served by its own thread).

- Clients authenticate to the node itself against sasl.users (made with
  `kstretch --sasl-user`): SCRAM-SHA-512 and SCRAM-SHA-256 byte for byte by a
  client written here from RFC 5802 (the server signature checked), PLAIN;
  the principal is in the node's log lines; then Metadata is answered. The
  broker saw kstretch's user on each of its connections before any request.
- Refusals: a wrong password (SASL_AUTHENTICATION_FAILED, 58, with its
  message, then closed), a mechanism not offered (33 with the list), a
  request before authenticating (closed, the client named), a second
  SaslHandshake (34), SaslAuthenticate before SaslHandshake (34), garbage
  and oversized AuthBytes (58), a frame over 512 KiB before authenticating,
  an unknown SaslAuthenticate version (closed): each closes only its own
  connection and the node goes on.
- With sasl.mtls.identity a verified client certificate stands for
  authentication (its subject the principal); a SaslHandshake after it is
  answered 34 and closed.
- With upstream.tls, each shared connection's SASL login runs after its TLS
  handshake, on the TLS connection.
- kstretch's upstream SASL failing (the broker refuses its password, or
  answers garbage) is logged once however many clients retry, clients are
  closed or answered retriably, and once the broker takes the password again
  the same node serves them. A broker that never answers the login fails the
  connection after connect.timeout.ms.
"""
import base64
import hashlib
import hmac
import os
import socket
import struct
import subprocess
import threading
import time

import pytest

import harness
import kafkawire
from fakebroker import FakeBroker

LOCALHOST = "127.0.0.1"
KUSER, KPASSWORD = "kstretch-up", "up-secret"
USERS = {"app": "app-secret", "other,=user": "other-secret"}
SASL_HANDSHAKE = kafkawire.API_SASL_HANDSHAKE
SASL_AUTHENTICATE = kafkawire.API_SASL_AUTHENTICATE


def users_file(tmp_path):
    """sasl.users made the documented way: `kstretch --sasl-user NAME < password`."""
    lines = []
    for user, password in USERS.items():
        r = subprocess.run([harness.KSTRETCH, "--sasl-user", user], input=(password + "\n").encode(),
                           capture_output=True, timeout=30)
        assert r.returncode == 0, r.stderr
        out = r.stdout.decode().splitlines()
        assert [ln.split()[1] for ln in out] == ["SCRAM-SHA-256", "SCRAM-SHA-512"], out
        assert password not in r.stdout.decode()
        lines += out
    path = tmp_path / "sasl.users"
    path.write_text("# made by kstretch --sasl-user\n" + "\n".join(lines) + "\n")
    return str(path)


class SaslBroker:
    """A FakeBroker whose every connection must authenticate as KUSER with PLAIN first."""

    def __init__(self, tls=None):
        self.fb = FakeBroker(brokers=[(1, "eu-a")], tls=tls)
        self.fb.api_versions.update({SASL_HANDSHAKE: (0, 1), SASL_AUTHENTICATE: (0, 2)})
        self.conn = threading.local()
        self.mode = "ok"  # "refuse": answer 58; "garbage": SaslHandshake answered with bytes that do not read;
        # "silent": SaslHandshake never answered
        self.lock = threading.Lock()
        self.authenticated = 0
        self.unauthenticated_requests = []
        self.fb.handlers[SASL_HANDSHAKE] = self.handshake
        self.fb.handlers[SASL_AUTHENTICATE] = self.authenticate
        metadata = self.fb.handlers[kafkawire.API_METADATA]
        self.fb.handlers[kafkawire.API_METADATA] = lambda h, r: self.guarded(metadata, h, r)

    def handshake(self, header, r):
        mech = r.string()
        if self.mode == "garbage":
            return FakeBroker.Raw(struct.pack(">ii", 6, header.correlation_id) + b"\xff\xff")
        if self.mode == "silent":
            return FakeBroker.NO_RESPONSE
        w = kafkawire.Writer().int16(0 if mech == "PLAIN" else 33).int32(1).string("PLAIN")
        return w.bytes()

    def authenticate(self, header, r):
        flexible = header.api_version >= 2
        auth = r.compact_bytes() if flexible else r.take(r.int32())
        ok = self.mode == "ok" and auth == b"\0" + KUSER.encode() + b"\0" + KPASSWORD.encode()
        if ok:
            self.conn.authenticated = True
            with self.lock:
                self.authenticated += 1
        w = kafkawire.Writer().int16(0 if ok else 58)
        msg = None if ok else "Authentication failed: Invalid username or password"
        if flexible:
            w.compact_string(msg).compact_bytes(b"").int64(0).empty_tags()
        else:
            w.string(msg).int32(0)
            if header.api_version >= 1:
                w.int64(0)
        return w.bytes()

    def guarded(self, handler, header, r):
        if not getattr(self.conn, "authenticated", False):
            with self.lock:
                self.unauthenticated_requests.append(header.api_key)
            return None
        return handler(header, r)


@pytest.fixture
def broker():
    b = SaslBroker()
    yield b
    b.fb.stop()


def start_node(start_kstretch, broker, tmp_path, *extra, users=True):
    (port,) = harness.free_ports(1, LOCALHOST)
    k = start_kstretch(broker.fb.bootstrap, workers=1, listen_port=port, extra_args=(
        "--mode", "regional", "--region", "eu", "--regional-nodes", f"1@{LOCALHOST}:{port}", "--node-id", "1",
        *(("--sasl-users", users_file(tmp_path)) if users else ()), "--upstream-sasl-mechanism", "PLAIN",
        "--upstream-sasl-username", KUSER, "--upstream-sasl-password", KPASSWORD, *extra))
    return k, port


# ---- a client's side of SASL, from RFC 5802 -------------------------------------------------------

def handshake(c, mechanism, version=1):
    r = c.request(SASL_HANDSHAKE, version, kafkawire.Writer().string(mechanism).bytes())
    error = r.int16()
    mechanisms = r.array(lambda: r.string(), 2)
    return error, mechanisms


def authenticate(c, auth, version=2):
    w = kafkawire.Writer()
    if version >= 2:
        w.compact_bytes(auth).empty_tags()
    else:
        w.int32(len(auth)).raw(auth)
    r = c.request(SASL_AUTHENTICATE, version, w.bytes())
    error = r.int16()
    if version >= 2:
        message, data = r.compact_string(nullable=True), r.compact_bytes()
    else:
        message = r.string(nullable=True)
        data = r.take(r.int32())
    if version >= 1:
        r.int64()
    return error, message, data


def scram(c, user, password, mechanism="SCRAM-SHA-512", version=2):
    """The whole exchange; (error, message) of the answer that ended it, the server's signature verified."""
    h = hashlib.sha512 if mechanism.endswith("512") else hashlib.sha256
    error, _ = handshake(c, mechanism)
    assert error == 0
    escaped = user.replace("=", "=3D").replace(",", "=2C")
    first_bare = f"n={escaped},r={base64.b64encode(os.urandom(18)).decode()}"
    error, message, server_first = authenticate(c, ("n,," + first_bare).encode(), version)
    if error:
        return error, message
    attrs = dict(a.split("=", 1) for a in server_first.decode().split(","))
    salted = hashlib.pbkdf2_hmac(h().name, password.encode(), base64.b64decode(attrs["s"]), int(attrs["i"]))
    client_key = hmac.new(salted, b"Client Key", h).digest()
    without_proof = f"c=biws,r={attrs['r']}"
    auth_message = f"{first_bare},{server_first.decode()},{without_proof}".encode()
    signature = hmac.new(h(client_key).digest(), auth_message, h).digest()
    proof = bytes(a ^ b for a, b in zip(client_key, signature))
    error, message, server_final = authenticate(c, f"{without_proof},p={base64.b64encode(proof).decode()}".encode(),
                                                version)
    if not error:
        expected = hmac.new(hmac.new(salted, b"Server Key", h).digest(), auth_message, h).digest()
        assert server_final.decode() == "v=" + base64.b64encode(expected).decode(), "server signature"
    return error, message


def plain(c, user, password, version=2):
    assert handshake(c, "PLAIN")[0] == 0
    return authenticate(c, b"\0" + user.encode() + b"\0" + password.encode(), version)[:2]


def closed(c, timeout=10):
    """True when the node closed c (after any answer already read)."""
    c.sock.settimeout(timeout)
    try:
        return c.sock.recv(1) == b""
    except ConnectionResetError:
        return True


def metadata(c):
    return kafkawire.decode_metadata_response_v12(c.request(kafkawire.API_METADATA, 12,
                                                            kafkawire.metadata_request_v12([])))


# ---- tests ---------------------------------------------------------------------------------------

def test_clients_authenticate_to_the_node_with_scram_and_plain_and_the_broker_sees_kstretch(
        broker, start_kstretch, tmp_path):
    k, port = start_node(start_kstretch, broker, tmp_path)
    cases = [("SCRAM-SHA-512", "app", 2), ("SCRAM-SHA-256", "app", 1), ("SCRAM-SHA-512", "other,=user", 0),
             ("PLAIN", "app", 2), ("PLAIN", "other,=user", 0)]
    for mechanism, user, version in cases:
        with kafkawire.Connection(LOCALHOST, port) as c:
            r = c.request(kafkawire.API_API_VERSIONS, 0, b"")  # taken before authenticating
            assert r.int16() == 0
            if mechanism == "PLAIN":
                error, message = plain(c, user, USERS[user], version)
            else:
                error, message = scram(c, user, USERS[user], mechanism, version)
            assert (error, message) == (0, None), (mechanism, user, version)
            m = metadata(c)
            assert [b.node_id for b in m.brokers] == [1], m
    assert k.log_lines("authenticated as app (SCRAM-SHA-512)"), k.log()
    assert k.log_lines("authenticated as other,=user (PLAIN)"), k.log()
    # The principal names the client in the node's later lines about it.
    assert k.log_lines(" User:app: closed: client closed"), k.log()
    assert broker.authenticated >= 2 and not broker.unauthenticated_requests, \
        (broker.authenticated, broker.unauthenticated_requests)
    for pw in list(USERS.values()) + [KPASSWORD]:
        assert pw not in k.log()
    m = k.metrics()
    assert m["kstretch_regional_sasl_authenticated"] == len(cases), m
    assert m["kstretch_regional_sasl_refused"] == 0 and m["kstretch_upstream_sasl_failures"] == 0, m


def test_refusals_close_only_their_own_connection(broker, start_kstretch, tmp_path):
    k, port = start_node(start_kstretch, broker, tmp_path)
    refused = 0

    def conn():
        return kafkawire.Connection(LOCALHOST, port, timeout=10)

    # A wrong password: 58 with Kafka's words, then closed.
    for mechanism in ("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"):
        with conn() as c:
            if mechanism == "PLAIN":
                error, message = plain(c, "app", "wrong")
            else:
                error, message = scram(c, "app", "wrong", mechanism)
            assert error == 58 and "invalid credentials with SASL mechanism " + mechanism in message, message
            assert closed(c)
            refused += 1
    # An unknown user reads like a wrong password.
    with conn() as c:
        assert scram(c, "nobody", "x")[0] == 58 and closed(c)
        refused += 1
    # A mechanism not offered: 33 and the list, closed.
    with conn() as c:
        assert handshake(c, "GSSAPI") == (33, ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"]) and closed(c)
        refused += 1
    # Metadata before authenticating: closed, the client named.
    with conn() as c:
        local = "%s:%d" % c.sock.getsockname()
        c.sock.sendall(kafkawire.encode_request(kafkawire.API_METADATA, 12, 1, kafkawire.metadata_request_v12([])))
        assert closed(c)
        refused += 1
    k.wait_log(lambda log: f"regional {local}: Metadata v12 (corr 1) before authenticating" in log, 10,
               "the refused request logged with the client")
    # A second SaslHandshake, and SaslAuthenticate before any: 34.
    with conn() as c:
        assert handshake(c, "PLAIN")[0] == 0
        assert handshake(c, "PLAIN")[0] == 34 and closed(c)
        refused += 1
    with conn() as c:
        error, message, _ = authenticate(c, b"\0app\0app-secret")
        assert error == 34 and "before SaslHandshake" in message and closed(c)
        refused += 1
    # Garbage and oversized AuthBytes: 58.
    for auth in (os.urandom(64), b"n,,n=app,r=" + b"x" * 300000, b"\xff" * 5000, b"y,,", b""):
        with conn() as c:
            assert handshake(c, "SCRAM-SHA-512")[0] == 0
            error, message, _ = authenticate(c, auth)
            assert error == 58 and message, (auth[:20], message)
            assert closed(c)
            refused += 1
    # A frame over 512 KiB before authenticating: closed without reading it all.
    with conn() as c:
        c.sock.sendall(struct.pack(">i", 600000) + kafkawire.Writer().int16(SASL_AUTHENTICATE).int16(2).int32(1)
                       .string("x").empty_tags().bytes())
        assert closed(c)
        refused += 1
    # A SaslAuthenticate version kstretch does not answer: closed, never forwarded.
    with conn() as c:
        assert handshake(c, "PLAIN")[0] == 0
        c.sock.sendall(kafkawire.encode_request(SASL_AUTHENTICATE, 3, 9, b"\x01\x00"))
        assert closed(c)
        refused += 1
    # The node goes on.
    with conn() as c:
        assert scram(c, "app", USERS["app"]) == (0, None)
        metadata(c)
    assert k.log_lines("answered SASL_AUTHENTICATION_FAILED (58), closing"), k.log()
    assert k.log_lines("a frame of 600000 bytes before authenticating"), k.log()
    m = k.metrics()
    assert m["kstretch_regional_sasl_refused"] == refused, m
    assert not broker.unauthenticated_requests
    assert [h.api_key for h, _ in broker.fb.requests].count(SASL_AUTHENTICATE) == broker.authenticated, \
        "no client's SASL reached the broker"


def test_upstream_sasl_failing_is_logged_once_and_clients_retry_until_it_works(broker, start_kstretch, tmp_path):
    k, port = start_node(start_kstretch, broker, tmp_path, "--connect-timeout-ms", "3000")
    broker.mode = "refuse"
    tries = 0
    for _ in range(12):
        with kafkawire.Connection(LOCALHOST, port, timeout=10) as c:
            assert scram(c, "app", USERS["app"]) == (0, None)  # the node's own check still works
            with pytest.raises((ConnectionError, socket.timeout, kafkawire.WireError)):
                metadata(c)  # no upstream: closed so that the client starts again
            tries += 1
    broker.mode = "garbage"
    for _ in range(3):
        with kafkawire.Connection(LOCALHOST, port, timeout=10) as c:
            assert plain(c, "app", USERS["app"]) == (0, None)
            with pytest.raises((ConnectionError, socket.timeout, kafkawire.WireError)):
                metadata(c)
    broker.mode = "silent"
    with kafkawire.Connection(LOCALHOST, port, timeout=10) as c:
        assert plain(c, "app", USERS["app"]) == (0, None)
        started = time.monotonic()
        with pytest.raises((ConnectionError, socket.timeout, kafkawire.WireError)):
            metadata(c)
        assert 2.5 < time.monotonic() - started < 8, "failed by connect.timeout.ms (3 s)"
    lines = k.log_lines("SASL authentication as kstretch-up failed")
    assert len([ln for ln in lines if "no complete answer within connect.timeout.ms" in ln]) == 1, lines
    refused = [ln for ln in lines if "SASL_AUTHENTICATION_FAILED" in ln and "Invalid username or password" in ln]
    garbage = [ln for ln in lines if "malformed SaslHandshake answer" in ln]
    assert len(refused) == 1 and len(garbage) == 1, "\n".join(lines)
    assert "node 1" in refused[0], refused[0]
    assert k.metrics()["kstretch_upstream_sasl_failures"] >= tries
    broker.mode = "ok"
    deadline = time.monotonic() + 20
    while True:
        try:
            with kafkawire.Connection(LOCALHOST, port, timeout=10) as c:
                assert scram(c, "app", USERS["app"]) == (0, None)
                metadata(c)
                break
        except (ConnectionError, socket.timeout, kafkawire.WireError):
            assert time.monotonic() < deadline, "the node did not recover"
            time.sleep(0.2)
    assert not broker.unauthenticated_requests
    assert k.alive()


def raw_token(c, token):
    """After SaslHandshake v0: a raw SASL frame (size, bytes) and the raw answer."""
    c.sock.sendall(struct.pack(">i", len(token)) + token)
    return c.read_frame()


def test_saslhandshake_v0_clients_authenticate_with_raw_tokens(broker, start_kstretch, tmp_path):
    """Clients before Kafka 1.0: SaslHandshake v0, then the mechanism's messages as raw frames."""
    k, port = start_node(start_kstretch, broker, tmp_path)
    with kafkawire.Connection(LOCALHOST, port) as c:
        assert handshake(c, "PLAIN", version=0)[0] == 0
        assert raw_token(c, b"\0app\0app-secret") == b""
        assert [b.node_id for b in metadata(c).brokers] == [1]
    with kafkawire.Connection(LOCALHOST, port) as c:
        assert handshake(c, "SCRAM-SHA-256", version=0)[0] == 0
        first_bare = "n=app,r=rawnonce"
        server_first = raw_token(c, ("n,," + first_bare).encode()).decode()
        attrs = dict(a.split("=", 1) for a in server_first.split(","))
        assert attrs["r"].startswith("rawnonce") and int(attrs["i"]) >= 4096
        salted = hashlib.pbkdf2_hmac("sha256", b"app-secret", base64.b64decode(attrs["s"]), int(attrs["i"]))
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        without_proof = f"c=biws,r={attrs['r']}"
        auth_message = f"{first_bare},{server_first},{without_proof}".encode()
        sig = hmac.new(hashlib.sha256(client_key).digest(), auth_message, hashlib.sha256).digest()
        proof = base64.b64encode(bytes(a ^ b for a, b in zip(client_key, sig))).decode()
        final = raw_token(c, f"{without_proof},p={proof}".encode()).decode()
        server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
        assert final == "v=" + base64.b64encode(hmac.new(server_key, auth_message, hashlib.sha256).digest()).decode()
        metadata(c)
    with kafkawire.Connection(LOCALHOST, port) as c:  # a wrong password: closed, no answer (as Kafka for v0)
        assert handshake(c, "PLAIN", version=0)[0] == 0
        c.sock.sendall(struct.pack(">i", 13) + b"\0app\0not-it!!")
        assert closed(c)
    with kafkawire.Connection(LOCALHOST, port) as c:  # a raw token larger than any SASL message: closed
        assert handshake(c, "PLAIN", version=0)[0] == 0
        c.sock.sendall(struct.pack(">i", 1 << 20))
        assert closed(c)
    assert k.log_lines("authenticated as app (PLAIN) (SaslHandshake v0, raw tokens)"), k.log()
    assert k.log_lines("raw SASL token after SaslHandshake v0: invalid credentials with SASL mechanism PLAIN"), k.log()
    assert k.log_lines("a raw SASL token of 1048576 bytes after SaslHandshake v0"), k.log()
    assert k.metrics()["kstretch_regional_sasl_authenticated"] == 2


def test_a_verified_certificate_authenticates_with_sasl_mtls_identity(broker, start_kstretch, tmp_path):
    import ssl
    import certs
    c = certs.make(str(tmp_path / "certs"))
    k, port = start_node(start_kstretch, broker, tmp_path, "--tls-cert", c.cert("server"), "--tls-key",
                         c.key("server"), "--tls-client-ca", c.ca, "--tls-client-auth", "required",
                         "--sasl-mtls-identity", "true", users=False)

    def tls_conn():
        ctx = ssl.create_default_context(cafile=c.ca)
        ctx.load_cert_chain(c.cert("client"), c.key("client"))
        conn = kafkawire.Connection.__new__(kafkawire.Connection)
        conn.sock = ctx.wrap_socket(socket.create_connection((LOCALHOST, port), timeout=10),
                                    server_hostname=LOCALHOST)
        conn.client_id, conn._corr = "kstretch-tests", 0
        return conn

    with tls_conn() as conn:
        assert [b.node_id for b in metadata(conn).brokers] == [1]  # no SASL: the certificate is enough
    with tls_conn() as conn:
        assert handshake(conn, "PLAIN")[0] == 34
        assert closed(conn)
    assert k.log_lines("authenticated by its certificate (sasl.mtls.identity)", "User:"), k.log()
    assert k.log_lines("User:", "CN=kstretch-test-client", "SaslHandshake after authenticating; answered "
                       "ILLEGAL_SASL_STATE (34)"), k.log()
    assert k.metrics()["kstretch_regional_sasl_authenticated"] == 2


def test_the_upstream_login_runs_after_the_upstream_tls_handshake(start_kstretch, tmp_path):
    import ssl
    import certs
    c = certs.make(str(tmp_path / "certs"))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(c.cert("server"), c.key("server"))
    broker = SaslBroker(tls=ctx)
    try:
        k, port = start_node(start_kstretch, broker, tmp_path, "--upstream-tls", "true", "--upstream-tls-ca", c.ca)
        for _ in range(3):
            with kafkawire.Connection(LOCALHOST, port) as conn:
                assert scram(conn, "app", USERS["app"]) == (0, None)
                assert [b.node_id for b in metadata(conn).brokers] == [1]
        assert broker.authenticated >= 2 and not broker.unauthenticated_requests
        assert k.log_lines("tls-handshake -> sasl"), k.log()
        assert k.log_lines("sasl -> ready"), k.log()
        assert k.metrics()["kstretch_upstream_sasl_failures"] == 0
    finally:
        broker.fb.stop()
