#!/usr/bin/python3
"""User-space TCP proxy adding a fixed delay in each direction (tc netem is not available).

Every chunk read from one side is written to the other side DELAY_MS later, order kept,
so a request/reply round trip through the proxy costs 2 x DELAY_MS more.

Usage: delayproxy.py LISTEN_IP:PORT TARGET_IP:PORT [DELAY_MS]   (default 25 ms)
Stdlib only.
"""
import asyncio
import socket
import sys


async def pump(reader, writer, delay):
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue()

    async def sender():
        while True:
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if data is None:
                try:
                    writer.write_eof()
                except (OSError, RuntimeError):
                    pass
                return
            writer.write(data)
            await writer.drain()

    task = asyncio.create_task(sender())
    try:
        while True:
            data = await reader.read(65536)
            queue.put_nowait((loop.time() + delay, data if data else None))
            if not data:
                break
        await task
    except (ConnectionError, OSError):
        task.cancel()


def main(argv):
    lhost, lport = argv[0].rsplit(":", 1)
    thost, tport = argv[1].rsplit(":", 1)
    delay = (float(argv[2]) if len(argv) > 2 else 25.0) / 1000.0

    async def handle(creader, cwriter):
        try:
            sreader, swriter = await asyncio.open_connection(thost, int(tport))
        except OSError:
            cwriter.close()
            return
        for w in (cwriter, swriter):
            s = w.get_extra_info("socket")
            if s is not None:
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            await asyncio.gather(pump(creader, swriter, delay), pump(sreader, cwriter, delay))
        finally:
            cwriter.close()
            swriter.close()

    async def run():
        srv = await asyncio.start_server(handle, lhost, int(lport), reuse_address=True)
        print("delayproxy: ready", argv[0], "->", argv[1], "delay", delay, flush=True)
        await srv.serve_forever()

    asyncio.run(run())


if __name__ == "__main__":
    main(sys.argv[1:])
