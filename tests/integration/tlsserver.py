"""A TLS server on 127.0.0.1 presenting one certificate: what kstretch meets
when it connects with upstream.tls to a server whose certificate is wrong
(another host, expired). It completes or fails handshakes and closes; it
stops after `lifetime` seconds at the latest."""
import socket
import ssl
import threading
import time


class TlsServer:
    def __init__(self, cert, key, lifetime=60):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stop = False
        self.lifetime = lifetime
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        deadline = time.monotonic() + self.lifetime
        while not self.stop and time.monotonic() < deadline:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            conn.settimeout(2)
            try:
                self.ctx.wrap_socket(conn, server_side=True).close()
            except (ssl.SSLError, OSError):
                conn.close()

    def close(self):
        self.stop = True
        self.thread.join(5)
        self.sock.close()
