#!/usr/bin/python3
"""Broken DNS servers for the lab: what unbound cannot be told to be.

unbound (127.0.0.53) delegates a few .test zones here with stub-zone; each listening
address is one behaviour:

    servfail  every query answered SERVFAIL (rcode 2)
    refused   every query answered REFUSED (rcode 5)
    lame      a lame delegation: not authoritative (AA clear), answers with an upward
              referral (NS for "." in the authority section) instead of the zone's data
    silent    reads queries and never answers (resolver timeout)
    myip      answers any A question with the querying client's IPv4 address, any TXT
              question with it as text (OpenDNS's myip.opendns.com, Google's
              o-o.myaddr.l.google.com): how `mailprobe doctor` finds its egress address
    blrefused answers any A question with 127.255.255.254, as Spamhaus answers queries
              that come through a public resolver ("refused", not a listing)

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


def qtype_of(msg, end):
    return struct.unpack("!H", msg[end - 4:end - 2])[0]


def answer_data(msg, end, rtype, rdata):
    """NOERROR, AA, one answer record of rtype for the question name (a pointer to it)."""
    flags_in = struct.unpack("!H", msg[2:4])[0]
    flags = 0x8400 | (flags_in & 0x7900)
    rr = b"\xc0\x0c" + struct.pack("!HHIH", rtype, 1, 0, len(rdata)) + rdata
    return msg[0:2] + struct.pack("!HHHHH", flags, 1, 1, 0, 0) + msg[12:end] + rr


def answer_for(msg, behaviour, peer):
    """Answers that depend on the question type or on the client."""
    end = parse_question(msg)
    if end is None or struct.unpack("!H", msg[4:6])[0] != 1:
        return None
    qtype = qtype_of(msg, end)
    if behaviour == "myip" and qtype == 1 and ":" not in peer[0]:
        return answer_data(msg, end, 1, socket.inet_aton(peer[0]))
    if behaviour == "myip" and qtype == 16:
        text = peer[0].encode()
        return answer_data(msg, end, 16, bytes([len(text)]) + text)
    if behaviour == "blrefused" and qtype == 1:
        return answer_data(msg, end, 1, socket.inet_aton("127.255.255.254"))
    # anything else: the name exists, no data of that type
    flags = 0x8400 | (struct.unpack("!H", msg[2:4])[0] & 0x7900)
    return msg[0:2] + struct.pack("!HHHHH", flags, 1, 0, 0, 0) + msg[12:end]


def answer(msg, behaviour, peer=("127.0.0.1", 0)):
    if behaviour in ("myip", "blrefused"):
        return answer_for(msg, behaviour, peer)
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
        out = answer(msg, behaviour, peer)
        if out is not None:
            s.sendto(out, peer)


def serve_tcp_conn(c, behaviour, peer=("127.0.0.1", 0)):
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
            out = answer(msg, behaviour, peer)
            if out is not None:
                c.sendall(struct.pack("!H", len(out)) + out)
    except OSError:
        pass
    finally:
        if behaviour != "silent":
            c.close()


def serve_tcp(s, behaviour):
    while True:
        c, peer = s.accept()
        threading.Thread(target=serve_tcp_conn, args=(c, behaviour, peer), daemon=True).start()


def main(argv):
    threads = []
    for arg in argv:
        ip, behaviour = arg.split("=", 1)
        if behaviour not in ("servfail", "refused", "lame", "silent", "myip", "blrefused"):
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
