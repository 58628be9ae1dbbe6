"""Delay relays: the region latency of kafkacluster.py's real brokers.

These kernels have no netem, so each broker's client listener sits behind a
TCP relay of ours that holds every chunk it forwards for a one-way delay
before writing it on, in order, and counts the bytes per broker and
direction. One relay listens per (client region, broker): the broker
advertises the relay's port on the listener of that client region, so a
client that bootstrapped in region R keeps talking to every broker through R's
relays, and the delay is that of the pair (R, broker's region).

What this covers: client <-> broker traffic (requests and answers, both ways
delayed). What it does not: replication between brokers and the controller
quorum, which go straight over loopback.

Everything runs on one asyncio loop in a thread of the launcher.
"""
import asyncio
import collections
import os
import threading
import time

CHUNK = 256 * 1024


class Relay:
    """One listening port in front of one broker listener."""

    def __init__(self, broker_id, client_region, upstream_port, delays):
        self.broker_id = broker_id
        self.client_region = client_region
        self.upstream_port = upstream_port
        self.delays = delays  # shared: {(client_region, broker_id): one-way seconds}
        self.bytes_to_broker = 0
        self.bytes_from_broker = 0
        self.connections = 0
        self.peer_pids = collections.Counter()  # which processes connected, for the tests
        self.server = None
        self.writers = set()

    def delay(self):
        return self.delays.get((self.client_region, self.broker_id), 0.0)

    async def handle(self, creader, cwriter):
        self.connections += 1
        self.writers.add(cwriter)
        peer = cwriter.get_extra_info("peername")
        if peer:
            # First, at once, the processes that connected before (kstretch,
            # mostly): a client that gives up a connection within a few
            # milliseconds (librdkafka dropping a bootstrap connection, a
            # client closing all after a failed authentication) takes its
            # socket with it before a scan of every process could find it.
            pid = owner_pid(peer[1], candidates=KNOWN_PIDS)
            if pid < 0:
                pid = await asyncio.get_running_loop().run_in_executor(None, owner_pid, peer[1])
            if pid >= 0:
                KNOWN_PIDS.add(pid)
            self.peer_pids[pid] += 1
        try:
            ureader, uwriter = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", self.upstream_port), timeout=5)
        except (OSError, asyncio.TimeoutError):
            cwriter.close()  # broker down: the client sees its connection closed
            self.writers.discard(cwriter)
            return
        self.writers.add(uwriter)
        up = asyncio.ensure_future(self.pump(creader, uwriter, "to"))
        down = asyncio.ensure_future(self.pump(ureader, cwriter, "from"))
        await asyncio.wait([up, down], return_when=asyncio.FIRST_COMPLETED)
        # One side ended: let the other finish what it holds, within bounds.
        await asyncio.wait([up, down], timeout=5)
        for t in (up, down):
            t.cancel()
        for w in (cwriter, uwriter):
            w.close()
            self.writers.discard(w)

    async def pump(self, reader, writer, direction):
        """Reads chunks, and writes each one delay after it was read, in order."""
        queue = collections.deque()
        more = asyncio.Event()
        done = False

        async def writer_task():
            while True:
                while not queue:
                    if done:
                        return
                    more.clear()
                    await more.wait()
                due, data = queue.popleft()
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                writer.write(data)
                await writer.drain()

        w = asyncio.ensure_future(writer_task())
        try:
            while not w.done():
                data = await reader.read(CHUNK)
                if not data:
                    break
                if direction == "to":
                    self.bytes_to_broker += len(data)
                else:
                    self.bytes_from_broker += len(data)
                queue.append((time.monotonic() + self.delay(), data))
                more.set()
            done = True
            more.set()
            await w
            if writer.can_write_eof():
                writer.write_eof()
        except (OSError, asyncio.CancelledError):
            w.cancel()
            raise


# Processes found owning a relay's peer before (see Relay.handle).
KNOWN_PIDS = set()


def owner_pid(port, candidates=None):
    """The pid of the process holding the 127.0.0.1 TCP socket bound to
    `port` (a relay's peer: who connected), or -1 when none is found.
    candidates: look only at these pids (default: every process)."""
    inodes = set()
    try:
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                fields = line.split()
                if int(fields[1].split(":")[1], 16) == port:
                    inodes.add(fields[9])
    except OSError:
        return -1
    wanted = {f"socket:[{i}]" for i in inodes if i != "0"}
    if not wanted:
        return -1
    pids = [str(p) for p in candidates] if candidates is not None else os.listdir("/proc")
    for pid in pids:
        if not pid.isdigit():
            continue
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                if os.readlink(f"/proc/{pid}/fd/{fd}") in wanted:
                    return int(pid)
        except OSError:
            continue
    return -1


class RelaySet:
    """Every relay of a cluster, on one event loop thread."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.delays = {}
        self.relays = []
        self.thread = threading.Thread(target=self.loop.run_forever, name="delay-relays", daemon=True)
        self.thread.start()

    def _call(self, coro, timeout=10):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def add(self, broker_id, client_region, upstream_port, listen_port):
        """Starts a relay on 127.0.0.1:listen_port to 127.0.0.1:upstream_port."""
        r = Relay(broker_id, client_region, upstream_port, self.delays)
        r.listen_port = listen_port

        async def start():
            r.server = await asyncio.start_server(r.handle, "127.0.0.1", listen_port, reuse_address=True)

        self._call(start())
        self.relays.append(r)
        return r

    def set_delay(self, client_region, broker_id, one_way_s):
        self.loop.call_soon_threadsafe(self.delays.__setitem__, (client_region, broker_id), one_way_s)

    def cut(self, broker_id):
        """One broker went down: its relays stop listening (a client's connect
        is refused, as it would be by the broker's own port) and close every
        connection through them."""
        async def close():
            for r in self.relays:
                if r.broker_id == broker_id:
                    if r.server:
                        r.server.close()
                        r.server = None
                    for w in list(r.writers):
                        w.close()
        self._call(close())

    def restore(self, broker_id):
        """The broker is up again: its relays listen on their ports again."""
        async def start():
            for r in self.relays:
                if r.broker_id == broker_id and r.server is None:
                    r.server = await asyncio.start_server(r.handle, "127.0.0.1", r.listen_port, reuse_address=True)
        self._call(start())

    def stats(self):
        """{broker id: {"to_broker": bytes, "from_broker": bytes, "connections": n,
        "peer_pids": {pid: connections}}} over every client region."""
        out = {}
        for r in self.relays:
            s = out.setdefault(r.broker_id, {"to_broker": 0, "from_broker": 0, "connections": 0, "peer_pids": {}})
            s["to_broker"] += r.bytes_to_broker
            s["from_broker"] += r.bytes_from_broker
            s["connections"] += r.connections
            for pid, n in list(r.peer_pids.items()):
                s["peer_pids"][str(pid)] = s["peer_pids"].get(str(pid), 0) + n
        return out

    def close(self):
        async def stop():
            for r in self.relays:
                if r.server:
                    r.server.close()
                for w in list(r.writers):
                    w.close()
        try:
            self._call(stop(), timeout=5)
        except Exception:  # noqa: BLE001 - closing anyway
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
