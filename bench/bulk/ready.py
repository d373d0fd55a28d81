#!/usr/bin/python3
"""Wait (30 s at most) until the bench lab answers: Postfix on 127.0.0.1:2525, the proxy
on MXIP:25 (both give a 220 banner), unbound with d00000.bench MX.  Usage: ready.py MXIP"""
import socket
import sys
import time

deadline = time.time() + 30
for host, port in [("127.0.0.1", 2525), (sys.argv[1], 25)]:
    while True:
        try:
            s = socket.create_connection((host, port), timeout=2)
            s.settimeout(5)
            if not s.recv(100).startswith(b"220"):
                raise OSError("no banner")
            s.sendall(b"QUIT\r\n")
            s.close()
            break
        except OSError as e:
            if time.time() > deadline:
                sys.exit("benchlab: %s:%d not ready (%s)" % (host, port, e))
            time.sleep(0.1)
q = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x06d00000\x05bench\x00\x00\x0f\x00\x01"
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.5)
while True:
    try:
        s.sendto(q, ("127.0.0.53", 53))
        r = s.recv(512)
        if r[:2] == b"\x12\x34" and (r[3] & 0x0f) == 0 and r[6:8] != b"\x00\x00":
            break
    except OSError:
        pass
    if time.time() > deadline:
        sys.exit("benchlab: unbound does not answer d00000.bench MX")
    time.sleep(0.1)
