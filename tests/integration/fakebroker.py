"""A scripted Kafka broker on 127.0.0.1, for the few answers the simulator
cannot give (librdkafka's mock speaks FindCoordinator only up to v3, so a
batched v4 lookup can only be answered by a script).

    with FakeBroker(brokers=[(1, None), (2, "rack-b")]) as fb:
        fb.handlers[kafkawire.API_FIND_COORDINATOR] = lambda hdr, body: ...
        fb.bootstrap                      # "127.0.0.1:PORT"
        fb.requests                       # [(RequestHeader, body bytes)] in arrival order

Every broker of its Metadata is this one listener. It answers ApiVersions
(any version, in the v0 layout), Metadata v12 and whatever `handlers` adds
(api_key -> fn(header, body Reader) -> response body bytes, None to close
the connection, NO_RESPONSE to answer nothing, as for a Produce with
acks=0, FakeBroker.Raw(bytes, close) to send bytes as they are, a whole
frame or not, or FakeBroker.Trickle(parts, gap_s) to send them one part
at a time); any other request closes the connection. With `tls` (a server
ssl.SSLContext) every connection is TLS. Sockets time out, and stop() joins
every thread it started.
"""
import socket
import struct
import threading

import kafkawire

IO_TIMEOUT_S = 10.0


class Raw:
    """A handler's answer sent exactly as given (size field and all: it may
    lie), for mutated responses; the connection is then closed if `close`."""

    def __init__(self, data, close=False):
        self.data = data
        self.close = close


class Trickle:
    """A handler's answer sent as given, one part per send() with `gap_s`
    between them (each its own TCP segment: the broker's socket has no
    Nagle delay); stopped early when the broker stops."""

    def __init__(self, parts, gap_s):
        self.parts = parts
        self.gap_s = gap_s


class FakeBroker:
    NO_RESPONSE = object()
    Raw = Raw
    Trickle = Trickle

    def __init__(self, brokers=((1, None),), api_versions=None, backlog=16, tls=None):
        self.tls = tls  # an ssl.SSLContext (server side): every connection is TLS
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(backlog)
        self.sock.settimeout(0.2)
        self.host, self.port = self.sock.getsockname()
        self.bootstrap = f"{self.host}:{self.port}"
        self.broker_list = [kafkawire.MetadataBroker(node_id, self.host, self.port, rack) for node_id, rack in brokers]
        self.api_versions = api_versions or {
            kafkawire.API_METADATA: (0, 12),
            kafkawire.API_FIND_COORDINATOR: (0, 4),
            kafkawire.API_API_VERSIONS: (0, 3),
        }
        self.handlers = {
            kafkawire.API_API_VERSIONS: lambda h, r: kafkawire.api_versions_response_v0(self.api_versions),
            kafkawire.API_METADATA: self._metadata,
        }
        self.requests = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = []
        self._conns = []
        t = threading.Thread(target=self._accept, name="fakebroker-accept", daemon=True)
        t.start()
        self._threads.append(t)

    def _metadata(self, header, body):
        if header.api_version != 12:
            return None
        return kafkawire.metadata_response_v12(self.broker_list)

    def _accept(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            conn.settimeout(IO_TIMEOUT_S)
            t = threading.Thread(target=self._serve, args=(conn,), name="fakebroker-conn", daemon=True)
            with self._lock:
                self._conns.append(conn)
                self._threads.append(t)
            t.start()

    def _recv_exact(self, conn, n):
        buf = b""
        while len(buf) < n:
            b = conn.recv(n - len(buf))
            if not b:
                return None
            buf += b
        return buf

    def _serve(self, conn):
        try:
            if self.tls:
                raw, conn = conn, self.tls.wrap_socket(conn, server_side=True)
                with self._lock:  # the raw socket gave its descriptor to the TLS one: stop() shuts that one
                    self._conns[self._conns.index(raw)] = conn
            while not self._stop.is_set():
                size = self._recv_exact(conn, 4)
                if size is None:
                    return
                (n,) = struct.unpack(">i", size)
                if not 0 < n <= kafkawire.MAX_FRAME_BYTES:
                    return
                frame = self._recv_exact(conn, n)
                if frame is None:
                    return
                r = kafkawire.Reader(frame)
                header = kafkawire.decode_request_header(r)
                with self._lock:
                    self.requests.append((header, frame[r.pos:]))
                handler = self.handlers.get(header.api_key)
                body = handler(header, r) if handler else None
                if body is None:
                    return
                if body is FakeBroker.NO_RESPONSE:
                    continue
                if isinstance(body, Trickle):
                    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    for part in body.parts:
                        if self._stop.wait(body.gap_s):
                            return
                        conn.sendall(part)
                    continue
                if isinstance(body, Raw):
                    conn.sendall(body.data)
                    if body.close:
                        return
                    continue
                conn.sendall(kafkawire.encode_response(header.api_key, header.api_version, header.correlation_id,
                                                       body))
        except (OSError, kafkawire.WireError):
            return
        finally:
            conn.close()

    def requests_of(self, api_key):
        with self._lock:
            return [(h, b) for h, b in self.requests if h.api_key == api_key]

    def stop(self):
        self._stop.set()
        self.sock.close()
        with self._lock:
            conns, threads = list(self._conns), list(self._threads)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in threads:
            t.join(timeout=IO_TIMEOUT_S)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
