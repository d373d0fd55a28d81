#!/usr/bin/python3
"""A scripted SMTP server for what no real MTA does on demand (stdlib only, asyncio).

Each listening address (port 25) has one behaviour, from BEHAVIOURS below. Every
connection, every line received and every close is logged as one JSON object per line
to the log file, so that tests can assert the exact commands a client sent:

    {"t": 1700000000.123, "ip": "127.0.3.10", "conn": 7, "event": "connect"}
    {"t": ..., "ip": "127.0.3.10", "conn": 7, "event": "cmd", "cmd": "EHLO probe.lab.test"}
    {"t": ..., "ip": "127.0.3.10", "conn": 7, "event": "close"}

Usage: smtpscript.py LOGFILE [IP=BEHAVIOUR ...]   (default: the table below)

Known mailboxes everywhere: alice, bob (and postmaster). Anything else is unknown.
DATA is never legitimate in the lab: it is answered 554 and logged like any command.
"""
import asyncio
import json
import socket
import sys
import time

BEHAVIOURS = {
    "127.0.3.10": "normal",      # plain ESMTP server: alice/bob 250, others 550 5.1.1
    "127.0.3.11": "r252",        # 252 on every RCPT
    "127.0.3.12": "split",       # multi-line banner/EHLO/RCPT replies cut across segments
    "127.0.3.13": "slowbanner",  # banner after 30 s, then normal
    "127.0.3.14": "silent",      # accepts the connection, never says anything
    "127.0.3.15": "droprcpt",    # closes the connection right after receiving RCPT
    "127.0.3.16": "garbage",     # binary garbage after the banner
    "127.0.3.17": "oversize",    # 100 kB reply line without newline after EHLO
    "127.0.3.18": "cap421",      # "421 4.7.0 Too many connections" to everyone
    "127.0.3.19": "nonnumeric",  # non-numeric text replies after the banner
    "127.0.3.20": "noehlo",      # EHLO -> 502, HELO works (HELO fallback)
    "127.0.3.21": "mail451",     # MAIL FROM -> 451 4.3.0 (4xx before RCPT)
    "127.0.3.22": "tlsbroken",   # offers STARTTLS, says 220, then garbage instead of TLS
    "127.0.3.23": "banner554",   # "554 5.7.1" banner: no service for you
    "127.0.3.24": "onercpt",     # one RCPT per transaction: the 2nd gets 452 4.5.3
    "127.0.3.26": "cap2",        # like normal, but holds each session 0.3 s and says 421
                                 # to a third concurrent connection (politeness checks)
    "127.0.3.25": "greyprobe",   # known users 250, any other local part 451 4.7.1 greylisted
    "127.0.3.27": "tworcpt",     # two RCPTs per transaction: the 3rd and later get 452 4.5.3
    "127.0.3.28": "all452",      # 452 4.5.3 to every RCPT, even the first of a transaction
    "127.0.3.29": "vague",       # known users (postmaster too) 250; any other local part
                                 # "550 Administrative prohibition" (Exim's ACL deny
                                 # default): words that do not say why (issue 13)
    "127.0.3.30": "vagueall",    # "550 Administrative prohibition" to every RCPT,
                                 # postmaster@ included: it refuses us
    "127.0.3.31": "nopipe",      # like normal, without PIPELINING in its EHLO reply
    "127.0.3.32": "dropmid",     # like normal, but closes without a reply on receiving the
                                 # 3rd RCPT of the connection (whatever the transaction)
}

# RCPTs taken per transaction (counted whatever their answer, reset by MAIL and RSET);
# the ones beyond get "452 4.5.3 Error: too many recipients" (RFC 5321 §4.5.3.1.10)
RCPT_LIMIT = {"onercpt": 1, "tworcpt": 2, "all452": 0}

USERS = {"alice", "bob", "postmaster"}
SLOW_BANNER_S = 30.0
SEGMENT_PAUSE_S = 0.05
OVERSIZE = 100 * 1024

_conn_counter = 0
_log = None


CAP2_ACTIVE = {}


def log(ip, conn, event, cmd=None):
    rec = {"t": round(time.time(), 3), "ip": ip, "conn": conn, "event": event}
    if cmd is not None:
        rec["cmd"] = cmd
    _log.write(json.dumps(rec) + "\n")
    _log.flush()


def local_part(arg):
    """'TO:<alice@x.test> NOTIFY=NEVER' -> 'alice' (lower case)."""
    s = arg
    if ":" in s:
        s = s.split(":", 1)[1]
    s = s.strip()
    if s.startswith("<"):
        s = s[1:].split(">", 1)[0]
    else:
        s = s.split(" ", 1)[0]
    return s.rsplit("@", 1)[0].lower(), s


class Session:
    def __init__(self, ip, behaviour, reader, writer):
        self.ip = ip
        self.behaviour = behaviour
        self.reader = reader
        self.writer = writer
        global _conn_counter
        _conn_counter += 1
        self.conn = _conn_counter
        self.name = behaviour + ".script.test"

    async def send(self, data, segments=None):
        """Send data (str); with segments, as several TCP writes with pauses between."""
        raw = data.encode("latin-1") if isinstance(data, str) else data
        if not segments:
            self.writer.write(raw)
            await self.writer.drain()
            return
        pos = 0
        for cut in list(segments) + [len(raw)]:
            piece = raw[pos:cut]
            pos = cut
            if piece:
                self.writer.write(piece)
                await self.writer.drain()
                await asyncio.sleep(SEGMENT_PAUSE_S)

    async def split_send(self, data):
        """Cut a reply in the middle of lines and at line ends, 4 to 6 segments."""
        raw = data.encode("latin-1")
        n = len(raw)
        cuts = sorted({max(1, n // 7), n // 3, n // 2 + 1, (2 * n) // 3, n - 1})
        cuts = [c for c in cuts if 0 < c < n]
        await self.send(raw, cuts)

    async def readline(self):
        line = await self.reader.readline()
        if not line:
            return None
        text = line.decode("latin-1").rstrip("\r\n")
        log(self.ip, self.conn, "cmd", text)
        if len(getattr(self.reader, "_buffer", b"")):
            # the next command came before our reply to this one: the client pipelined
            log(self.ip, self.conn, "early", text)
        return text

    async def run(self):
        b = self.behaviour
        if b == "silent":
            while await self.readline() is not None:
                pass
            return
        if b == "cap421":
            await self.send("421 4.7.0 cap421.script.test Error: too many connections, try again later\r\n")
            try:
                await asyncio.wait_for(self.readline(), 2.0)
            except asyncio.TimeoutError:
                pass
            return
        if b == "banner554":
            await self.send("554 5.7.1 banner554.script.test: no SMTP service for you\r\n")
            while True:
                cmd = await self.readline()
                if cmd is None:
                    return
                if cmd.upper().startswith("QUIT"):
                    await self.send("221 2.0.0 Bye\r\n")
                    return
                await self.send("503 5.5.1 Error: no SMTP service\r\n")
        if b == "slowbanner":
            await asyncio.sleep(SLOW_BANNER_S)
        if b == "cap2":
            CAP2_ACTIVE[self.ip] = CAP2_ACTIVE.get(self.ip, 0) + 1
            log(self.ip, self.conn, "concurrency", str(CAP2_ACTIVE[self.ip]))
            try:
                if CAP2_ACTIVE[self.ip] > 2:
                    await self.send("421 4.7.0 cap2.script.test too many connections\r\n")
                    return
                await asyncio.sleep(0.3)
                self.behaviour = "normal"
                await self.run()
            finally:
                CAP2_ACTIVE[self.ip] -= 1
            return
        if b == "split":
            await self.split_send("220-split.script.test ESMTP\r\n220-lab scripted server\r\n"
                                  "220 ready\r\n")
        else:
            await self.send("220 %s ESMTP lab\r\n" % self.name)

        helo_done = False
        rcpts = 0  # RCPTs in the current transaction (RCPT_LIMIT)
        rcpts_conn = 0  # RCPTs in the connection (dropmid)
        while True:
            cmd = await self.readline()
            if cmd is None:
                return
            verb = cmd.split(" ", 1)[0].upper()
            arg = cmd[len(verb):].strip()
            if b == "garbage":
                await self.send(b"\x00\xff\xfe\x16\x03\x01garbage\x80\x81 \xc3\x28\r\n\x07\x1b[2J\r\n")
                continue
            if b == "nonnumeric":
                await self.send("hello there, what do you want?\r\nOK\r\n")
                continue
            if b == "oversize" and verb in ("EHLO", "HELO"):
                await self.send("250-" + "x" * OVERSIZE)
                # never finish the line; wait for the client to give up
                while await self.readline() is not None:
                    pass
                return
            if verb == "EHLO":
                if b == "noehlo":
                    await self.send("502 5.5.2 Error: command not recognized\r\n")
                    continue
                helo_done = True
                ext = ["PIPELINING", "SIZE 10240000", "ENHANCEDSTATUSCODES", "8BITMIME"]
                if b == "nopipe":
                    ext.remove("PIPELINING")
                if b == "tlsbroken":
                    ext.insert(0, "STARTTLS")
                lines = [self.name] + ext
                reply = "".join("250-%s\r\n" % l for l in lines[:-1]) + "250 %s\r\n" % lines[-1]
                if b == "split":
                    await self.split_send(reply)
                else:
                    await self.send(reply)
            elif verb == "HELO":
                helo_done = True
                await self.send("250 %s\r\n" % self.name)
            elif verb == "STARTTLS":
                if b == "tlsbroken":
                    await self.send("220 2.0.0 Ready to start TLS\r\n")
                    # not a TLS ServerHello
                    await self.send(b"this is not TLS\r\n\x00\x01\x02\x03" * 8)
                    await asyncio.sleep(1.0)
                    return
                await self.send("502 5.5.1 Error: command not implemented\r\n")
            elif verb == "MAIL":
                if not helo_done:
                    await self.send("503 5.5.1 Error: send HELO/EHLO first\r\n")
                elif b == "mail451":
                    await self.send("451 4.3.0 <%s>: Temporary lookup failure\r\n"
                                    % local_part(arg)[1])
                else:
                    rcpts = 0
                    await self.send("250 2.1.0 Ok\r\n")
            elif verb == "RCPT":
                lp, addr = local_part(arg)
                rcpts += 1
                rcpts_conn += 1
                if b == "droprcpt" or (b == "dropmid" and rcpts_conn == 3):
                    self.writer.close()
                    return
                if b in RCPT_LIMIT and rcpts > RCPT_LIMIT[b]:
                    await self.send("452 4.5.3 Error: too many recipients\r\n")
                elif b == "vagueall" or (b == "vague" and lp not in USERS):
                    await self.send("550 Administrative prohibition\r\n")
                elif b == "greyprobe" and lp not in USERS:
                    await self.send("451 4.7.1 Greylisted, try again later\r\n")
                elif b == "r252":
                    await self.send("252 2.1.5 Cannot VRFY user, but will accept message"
                                    " and attempt delivery\r\n")
                elif b == "split":
                    if lp in USERS:
                        await self.split_send("250-2.1.5 <%s>\r\n250 2.1.5 Recipient ok\r\n"
                                              % addr)
                    else:
                        await self.split_send(
                            "550-5.1.1 The email account that you tried to reach does not"
                            " exist. Please try\r\n"
                            "550-5.1.1 double-checking the recipient's email address for"
                            " typos or\r\n"
                            "550 5.1.1 unnecessary spaces. lab.test/NoSuchUser\r\n")
                elif lp in USERS:
                    await self.send("250 2.1.5 Ok\r\n")
                else:
                    await self.send("550 5.1.1 <%s>: Recipient address rejected: User unknown"
                                    "\r\n" % addr)
            elif verb == "RSET":
                rcpts = 0
                await self.send("250 2.0.0 Ok\r\n")
            elif verb == "NOOP":
                await self.send("250 2.0.0 Ok\r\n")
            elif verb == "VRFY":
                await self.send("252 2.0.0 Send some mail, I'll try my best\r\n")
            elif verb == "DATA":
                await self.send("554 5.5.1 Error: DATA is never allowed in the lab\r\n")
            elif verb == "QUIT":
                await self.send("221 2.0.0 Bye\r\n")
                return
            else:
                await self.send("502 5.5.2 Error: command not recognized\r\n")


def handler_for(ip, behaviour):
    async def handle(reader, writer):
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s = Session(ip, behaviour, reader, writer)
        log(ip, s.conn, "connect")
        try:
            await s.run()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ValueError):
            pass
        finally:
            log(ip, s.conn, "close")
            try:
                writer.close()
            except Exception:
                pass
    return handle


async def main(argv):
    global _log
    _log = open(argv[0], "a", buffering=1)
    table = dict(BEHAVIOURS)
    if len(argv) > 1:
        table = dict(a.split("=", 1) for a in argv[1:])
    servers = []
    for ip, b in table.items():
        servers.append(await asyncio.start_server(handler_for(ip, b), ip, 25,
                                                  limit=1 << 20, reuse_address=True))
    print("smtpscript: ready", len(servers), "listeners", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


if __name__ == "__main__":
    try:
        asyncio.run(main(sys.argv[1:]))
    except KeyboardInterrupt:
        pass
