#!/usr/bin/python3
"""Bench delay proxy: LISTEN (e.g. 0.0.0.0:25) -> TARGET, DELAY_MS held in each direction,
with a log of every client connection by the local address it reached (the MX IP).

Usage: proxy.py LISTEN_IP:PORT TARGET_IP:PORT DELAY_MS LOGFILE

Log lines (one per event, written in event order by the single event loop):
    <monotonic seconds> o <dest ip> <client ip>   a client connected to <dest ip>
    <monotonic seconds> c <dest ip> <client ip>   that connection closed (either side)
(the client's address tells the outbound addresses of a pool apart: `--source`)
On SIGUSR1 the log is flushed. bench/bulk/proxylog.py turns it into the maximum number of
concurrent sessions per destination IP. asyncio.Protocol (no streams) for low overhead;
order within a direction is kept by one FIFO and one timer per direction.
Stdlib only.
"""
import asyncio
import collections
import signal
import socket
import sys
import time


class Pipe:
    """Delayed, ordered delivery of chunks to a transport (one direction)."""
    __slots__ = ("loop", "delay", "q", "timer", "dst", "eof", "closed")

    def __init__(self, loop, delay):
        self.loop, self.delay = loop, delay
        self.q = collections.deque()
        self.timer = None
        self.dst = None      # transport, once known
        self.closed = False

    def push(self, data):    # data None = EOF
        self.q.append((self.loop.time() + self.delay, data))
        if self.timer is None and self.dst is not None:
            self.timer = self.loop.call_at(self.q[0][0], self.fire)

    def attach(self, dst):
        self.dst = dst
        if self.q and self.timer is None:
            self.timer = self.loop.call_at(self.q[0][0], self.fire)

    def fire(self):
        self.timer = None
        now = self.loop.time()
        q = self.q
        while q and q[0][0] <= now + 0.0005:
            _, data = q.popleft()
            if self.closed:
                continue
            if data is None:
                # SMTP has no half-closed use: the end of one side ends the session
                self.dst.close()
            else:
                self.dst.write(data)
        if q and not self.closed:
            self.timer = self.loop.call_at(q[0][0], self.fire)

    def cancel(self):
        self.closed = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


class Upstream(asyncio.Protocol):
    def __init__(self, sess):
        self.sess = sess

    def data_received(self, data):
        self.sess.down.push(data)

    def eof_received(self):
        self.sess.down.push(None)
        return False

    def connection_lost(self, exc):
        self.sess.upstream_lost()


class Client(asyncio.Protocol):
    def __init__(self, server):
        self.server = server
        self.loop = server.loop
        self.up = Pipe(self.loop, server.delay)     # client -> target
        self.down = Pipe(self.loop, server.delay)   # target -> client
        self.ct = None
        self.ut = None
        self.ip = None
        self.src = None
        self.done = False

    def connection_made(self, transport):
        self.ct = transport
        sock = transport.get_extra_info("socket")
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        self.ip = transport.get_extra_info("sockname")[0]
        self.src = transport.get_extra_info("peername")[0]
        self.server.event("o", self.ip, self.src)
        self.down.attach(transport)
        self.loop.create_task(self.connect())

    async def connect(self):
        try:
            ut, _ = await self.loop.create_connection(lambda: Upstream(self),
                                                      self.server.thost, self.server.tport)
        except OSError:
            self.finish()
            return
        if self.done:
            ut.close()
            return
        self.ut = ut
        try:
            ut.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        self.up.attach(ut)

    def data_received(self, data):
        self.up.push(data)

    def eof_received(self):
        self.up.push(None)
        return False

    def connection_lost(self, exc):
        # the client is gone: whatever is still queued towards it cannot be delivered
        self.down.cancel()
        if self.ut is not None:
            # let queued data (e.g. QUIT) reach the target, then close
            self.loop.call_later(self.server.delay + 0.01, self.ut.close)
        self.finish()

    def upstream_lost(self):
        # close the client after the last queued reply has been delivered
        self.loop.call_later(self.server.delay + 0.01, self.ct.close)

    def finish(self):
        if not self.done:
            self.done = True
            self.server.event("c", self.ip, self.src)
            if not self.ct.is_closing():
                self.ct.close()


class Server:
    def __init__(self, loop, thost, tport, delay, logpath):
        self.loop, self.thost, self.tport, self.delay = loop, thost, tport, delay
        self.log = open(logpath, "a", buffering=1 << 16)

    def event(self, kind, ip, src):
        self.log.write("%.6f %s %s %s\n" % (time.monotonic(), kind, ip, src))

    def flush(self):
        self.log.flush()


def main(argv):
    if len(argv) != 4:
        sys.exit(__doc__)
    lhost, lport = argv[0].rsplit(":", 1)
    thost, tport = argv[1].rsplit(":", 1)
    delay = float(argv[2]) / 1000.0
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    srv = Server(loop, thost, int(tport), delay, argv[3])
    loop.add_signal_handler(signal.SIGUSR1, srv.flush)
    loop.add_signal_handler(signal.SIGTERM, loop.stop)
    # periodic flush so a reader sees the log within a second
    def tick():
        srv.flush()
        loop.call_later(1.0, tick)
    loop.call_later(1.0, tick)
    server = loop.run_until_complete(loop.create_server(
        lambda: Client(srv), lhost, int(lport), reuse_address=True, backlog=4096))
    print("proxy: ready", argv[0], "->", argv[1], "delay", delay, flush=True)
    try:
        loop.run_forever()
    finally:
        srv.flush()
        server.close()


if __name__ == "__main__":
    main(sys.argv[1:])
