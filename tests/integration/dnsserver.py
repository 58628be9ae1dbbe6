"""A small DNS server for tests: answers A and AAAA questions for the names
it is given, from addresses a test changes while it runs (a Kubernetes
headless Service whose pods come and go). UDP on 127.0.0.1, one thread.

    with DnsServer({"kstretch-eu.test": ["127.0.0.2", "127.0.0.3"]}) as dns:
        dns.port                                   # its UDP port
        dns.set("kstretch-eu.test", ["127.0.0.2"])  # the next answers
        dns.queries                                # questions answered so far

Any other name is answered NXDOMAIN; a name with no address of a family is
answered NOERROR with no records (NODATA), as a real server does.
"""
import ipaddress
import socket
import struct
import threading

TYPE_A, TYPE_AAAA, CLASS_IN = 1, 28, 1
RCODE_NXDOMAIN, RCODE_FORMERR = 3, 1


def _question(msg):
    """(lower-case name without the final dot, qtype, end offset) of the first question."""
    labels, at = [], 12
    for _ in range(128):  # at most 127 labels in a name
        n = msg[at]
        at += 1
        if n == 0:
            break
        if n & 0xC0:
            raise ValueError("a compressed name in a question")
        labels.append(msg[at:at + n].decode("ascii", "replace").lower())
        at += n
    qtype, qclass = struct.unpack(">HH", msg[at:at + 4])
    return ".".join(labels), qtype, qclass, at + 4


class DnsServer:
    def __init__(self, names, ttl=1):
        self.lock = threading.Lock()
        self.names = {k.lower().rstrip("."): list(v) for k, v in names.items()}
        self.ttl, self.queries = ttl, 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="dnsserver", daemon=True)

    def set(self, name, addresses):
        with self.lock:
            self.names[name.lower().rstrip(".")] = list(addresses)

    def answer(self, msg):
        (qid, flags) = struct.unpack(">HH", msg[:4])
        try:
            name, qtype, qclass, end = _question(msg)
        except (ValueError, IndexError, struct.error):
            return struct.pack(">HHHHHH", qid, 0x8000 | RCODE_FORMERR, 0, 0, 0, 0)
        question = msg[12:end]
        with self.lock:
            self.queries += 1
            known = name in self.names
            addrs = [ipaddress.ip_address(a) for a in self.names.get(name, ())]
        family = {TYPE_A: 4, TYPE_AAAA: 6}.get(qtype)
        records = [a for a in addrs if a.version == family] if qclass == CLASS_IN else []
        rcode = 0 if known else RCODE_NXDOMAIN
        out = struct.pack(">HHHHHH", qid, 0x8180 | (flags & 0x0100) | rcode, 1, len(records), 0, 0) + question
        for a in records:  # the name as a pointer to the question's (offset 12)
            out += struct.pack(">HHHIH", 0xC00C, qtype, CLASS_IN, self.ttl, len(a.packed)) + a.packed
        return out

    def _serve(self):
        while not self._stop.is_set():
            try:
                msg, peer = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            if len(msg) >= 12:
                self.sock.sendto(self.answer(msg), peer)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()
