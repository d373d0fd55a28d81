#!/usr/bin/python3
"""Broken DNS servers for the lab: what unbound cannot be told to be.

unbound (127.0.0.53) delegates a few .test zones here with stub-zone; each listening
address is one behaviour:

    servfail  every query answered SERVFAIL (rcode 2)
    refused   every query answered REFUSED (rcode 5)
    lame      a lame delegation: not authoritative (AA clear), answers with an upward
              referral (NS for "." in the authority section) instead of the zone's data
    silent    reads queries and never answers (resolver timeout)

Usage: dnsstub.py IP=BEHAVIOUR [IP=BEHAVIOUR...]   (UDP and TCP port 53 on each IP)
Stdlib only.
"""
import socket
import struct
import sys
import threading


def parse_question(msg):
    """Return (end offset of the question section) or None."""
    if len(msg) < 12:
        return None
    qd = struct.unpack("!H", msg[4:6])[0]
    off = 12
    for _ in range(qd):
        while True:
            if off >= len(msg):
                return None
            n = msg[off]
            if n == 0:
                off += 1
                break
            if n & 0xC0:
                off += 2
                break
            off += 1 + n
        off += 4
    return off if off <= len(msg) else None


def answer(msg, behaviour):
    end = parse_question(msg)
    if end is None:
        return None
    qid = msg[0:2]
    flags_in = struct.unpack("!H", msg[2:4])[0]
    rd = flags_in & 0x0100
    opcode = flags_in & 0x7800
    question = msg[12:end]
    qdcount = struct.unpack("!H", msg[4:6])[0]
    if behaviour == "servfail":
        flags = 0x8000 | opcode | rd | 2
        return qid + struct.pack("!HHHHH", flags, qdcount, 0, 0, 0) + question
    if behaviour == "refused":
        flags = 0x8000 | opcode | rd | 5
        return qid + struct.pack("!HHHHH", flags, qdcount, 0, 0, 0) + question
    if behaviour == "lame":
        # NOERROR, AA clear, no answer, authority: ". NS a.root-servers.net." (upward
        # referral), which resolvers treat as lame.
        flags = 0x8000 | opcode | rd
        root_ns = (b"\x00" + struct.pack("!HHIH", 2, 1, 3600, 20)
                   + b"\x01a\x0croot-servers\x03net\x00")
        return qid + struct.pack("!HHHHH", flags, qdcount, 0, 1, 0) + question + root_ns
    return None  # silent


def serve_udp(s, behaviour):
    while True:
        msg, peer = s.recvfrom(4096)
        out = answer(msg, behaviour)
        if out is not None:
            s.sendto(out, peer)


def serve_tcp_conn(c, behaviour):
    try:
        while True:
            hdr = c.recv(2)
            if len(hdr) < 2:
                return
            n = struct.unpack("!H", hdr)[0]
            msg = b""
            while len(msg) < n:
                chunk = c.recv(n - len(msg))
                if not chunk:
                    return
                msg += chunk
            out = answer(msg, behaviour)
            if out is not None:
                c.sendall(struct.pack("!H", len(out)) + out)
    except OSError:
        pass
    finally:
        if behaviour != "silent":
            c.close()


def serve_tcp(s, behaviour):
    while True:
        c, _ = s.accept()
        threading.Thread(target=serve_tcp_conn, args=(c, behaviour), daemon=True).start()


def main(argv):
    threads = []
    for arg in argv:
        ip, behaviour = arg.split("=", 1)
        if behaviour not in ("servfail", "refused", "lame", "silent"):
            sys.exit("dnsstub: unknown behaviour " + behaviour)
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        u.bind((ip, 53))
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        t.bind((ip, 53))
        t.listen(16)
        for fn, sock in ((serve_udp, u), (serve_tcp, t)):
            t = threading.Thread(target=fn, args=(sock, behaviour), daemon=True)
            t.start()
            threads.append(t)
    print("dnsstub: ready", " ".join(argv), flush=True)
    for t in threads:
        t.join()


if __name__ == "__main__":
    main(sys.argv[1:])
