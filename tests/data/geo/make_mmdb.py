#!/usr/bin/python3
"""make_mmdb.py - write the tiny MaxMind DB files used by tests/unit/test_geo.c.

Debian ships a reader (libmaxminddb) but no writer, so this is a small one, written from
the MaxMind DB File Format Specification 2.0 (https://maxmind.github.io/MaxMind-DB/):

  file = search tree | 16 zero bytes | data section | "\\xAB\\xCD\\xEFMaxMind.com" | metadata

  * search tree: node_count nodes of two records (bit 0 = left, bit 1 = right) of
    record_size bits (24: 6-byte nodes; 28: 7 bytes, the middle byte holding the top
    nibbles of left then right; 32: 8 bytes). A record < node_count points at a node,
    == node_count means "no data", > node_count points into the data section at
    (record - node_count - 16).
  * data: a control byte (type in the top 3 bits, size in the low 5; type 0 = extended,
    the next byte is type - 7; sizes 29/30/31 take 1/2/3 more bytes, + 29/285/65821),
    then the payload. Maps hold key/value pairs, strings are UTF-8, unsigned integers
    are big-endian with leading zero bytes dropped.
  * an IPv6 tree holds IPv4 networks under ::/96 (::a.b.c.d), which is where
    libmaxminddb looks them up.

  tests/data/geo/make_mmdb.py [OUTDIR]     (default: the directory of this script)
  tests/data/geo/make_mmdb.py --check      exit 1 when a committed file differs

Output is deterministic (fixed build_epoch), so the committed .mmdb files can be
compared with a fresh run. Verify with mmdblookup (Debian package mmdb-bin):
  mmdblookup --file tests/data/geo/lab.mmdb --ip 127.0.1.10
Python standard library only.
"""
import ipaddress
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD_EPOCH = 1767225600  # 2026-01-01T00:00:00Z, fixed for reproducible files
METADATA_MARKER = b"\xab\xcd\xefMaxMind.com"

# ---- data section encoding ----------------------------------------------------------

T_POINTER, T_UTF8, T_DOUBLE, T_BYTES, T_UINT16, T_UINT32, T_MAP = 1, 2, 3, 4, 5, 6, 7
T_INT32, T_UINT64, T_UINT128, T_ARRAY, T_BOOL, T_FLOAT = 8, 9, 10, 11, 14, 15


class U16(int):
    pass


class U32(int):
    pass


class U64(int):
    pass


def control(type_, size):
    """Control byte(s) for a field of the given type and payload size."""
    if size < 29:
        first, extra = size, b""
    elif size < 29 + 256:
        first, extra = 29, bytes([size - 29])
    elif size < 285 + 65536:
        first, extra = 30, struct.pack(">H", size - 285)
    else:
        first, extra = 31, struct.pack(">I", size - 65821)[1:]
    if type_ <= 7:
        return bytes([(type_ << 5) | first]) + extra
    return bytes([first, type_ - 7]) + extra


def uint_bytes(v, width):
    if v < 0 or v >= 1 << (8 * width):
        raise ValueError("unsigned value %d does not fit %d bytes" % (v, width))
    return v.to_bytes(width, "big").lstrip(b"\0")


def encode(value):
    if isinstance(value, bool):
        return control(T_BOOL, 1 if value else 0)
    if isinstance(value, U16):
        b = uint_bytes(value, 2)
        return control(T_UINT16, len(b)) + b
    if isinstance(value, U64):
        b = uint_bytes(value, 8)
        return control(T_UINT64, len(b)) + b
    if isinstance(value, (U32, int)):
        b = uint_bytes(value, 4)
        return control(T_UINT32, len(b)) + b
    if isinstance(value, float):
        return control(T_DOUBLE, 8) + struct.pack(">d", value)
    if isinstance(value, str):
        b = value.encode("utf-8")
        return control(T_UTF8, len(b)) + b
    if isinstance(value, bytes):
        return control(T_BYTES, len(value)) + value
    if isinstance(value, dict):
        out = control(T_MAP, len(value))
        for k, v in value.items():
            out += encode(str(k)) + encode(v)
        return out
    if isinstance(value, (list, tuple)):
        out = control(T_ARRAY, len(value))
        for v in value:
            out += encode(v)
        return out
    raise TypeError("cannot encode %r" % (value,))


# ---- search tree --------------------------------------------------------------------

class Node:
    __slots__ = ("child",)

    def __init__(self):
        self.child = [None, None]  # None = empty, Node, or int = index into records


def network_bits(net, ip_version):
    """The prefix of a network as a list of bits, in the tree's address family."""
    if net.version == 4:
        bits = format(int(net.network_address), "032b")[: net.prefixlen]
        if ip_version == 6:
            bits = "0" * 96 + bits
    else:
        if ip_version == 4:
            raise ValueError("IPv6 network %s in an IPv4 database" % net)
        bits = format(int(net.network_address), "0128b")[: net.prefixlen]
    if not bits:
        raise ValueError("a /0 network is not supported")
    return [int(b) for b in bits]


def build_tree(entries, ip_version):
    root = Node()
    for idx, (net, _) in enumerate(entries):
        bits = network_bits(net, ip_version)
        node = root
        for depth, bit in enumerate(bits):
            last = depth == len(bits) - 1
            cur = node.child[bit]
            if isinstance(cur, int):
                raise ValueError("%s overlaps another network" % net)
            if last:
                if cur is not None:
                    raise ValueError("%s contains another network" % net)
                node.child[bit] = idx
            else:
                if cur is None:
                    cur = node.child[bit] = Node()
                node = cur
    order, queue = [], [root]  # breadth-first numbering, root = 0
    while queue:
        n = queue.pop(0)
        order.append(n)
        queue.extend(c for c in n.child if isinstance(c, Node))
    return order


def pack_node(left, right, record_size):
    if record_size == 24:
        return left.to_bytes(3, "big") + right.to_bytes(3, "big")
    if record_size == 28:
        mid = ((left >> 24) & 0x0F) << 4 | ((right >> 24) & 0x0F)
        return (left & 0xFFFFFF).to_bytes(3, "big") + bytes([mid]) + \
            (right & 0xFFFFFF).to_bytes(3, "big")
    if record_size == 32:
        return left.to_bytes(4, "big") + right.to_bytes(4, "big")
    raise ValueError("record size must be 24, 28 or 32")


def build(entries, database_type, description, ip_version=6, record_size=24):
    """entries: [(network string, data dict)] -> bytes of a MaxMind DB file."""
    entries = [(ipaddress.ip_network(n), d) for n, d in entries]
    data = b""
    offsets = []
    for _, d in entries:
        offsets.append(len(data))
        data += encode(d)
    nodes = build_tree(entries, ip_version)
    index = {id(n): i for i, n in enumerate(nodes)}
    node_count = len(nodes)
    if node_count + 16 + len(data) >= 1 << record_size:
        raise ValueError("database too large for %d-bit records" % record_size)

    def record(c):
        if c is None:
            return node_count
        if isinstance(c, Node):
            return index[id(c)]
        return node_count + 16 + offsets[c]

    tree = b"".join(pack_node(record(n.child[0]), record(n.child[1]), record_size)
                    for n in nodes)
    meta = {
        "binary_format_major_version": U16(2),
        "binary_format_minor_version": U16(0),
        "build_epoch": U64(BUILD_EPOCH),
        "database_type": database_type,
        "description": {"en": description},
        "ip_version": U16(ip_version),
        "languages": ["en"],
        "node_count": U32(node_count),
        "record_size": U16(record_size),
    }
    return tree + b"\0" * 16 + data + METADATA_MARKER + encode(meta)


# ---- the lab's databases ------------------------------------------------------------
# Lab addresses (tests/lab): MX listeners on 127.0.1.x, 127.0.2.x, 127.0.3.x, ...

def names(en, **other):
    d = {"en": en}
    d.update(other)
    return d


LAB = [  # a City + ASN database in one file, as DB-IP lite or a merged GeoIP2 would be
    ("127.0.1.0/24", {
        "city": {"geoname_id": 9000001, "names": names("Lab City", de="Laborstadt")},
        "continent": {"code": "EU", "names": names("Europe")},
        "country": {"iso_code": "ZZ", "names": names("Lab Country", de="Laborland")},
        "location": {"latitude": 52.52, "longitude": 13.405, "accuracy_radius": U16(10)},
        "autonomous_system_number": 64512,
        "autonomous_system_organization": "Lab Networks",
    }),
    ("127.0.3.0/24", {  # no city, no AS organisation: ISP / organisation fields instead
        "country": {"iso_code": "XA", "names": names("Second Lab Country")},
        "autonomous_system_number": 64513,
        "isp": "Lab ISP",
        "organization": "Lab Hosting Org",
    }),
    ("127.0.4.0/24", {  # only a registered country (anycast-style entry)
        "registered_country": {"iso_code": "XB", "names": names("Registered Lab Country")},
    }),
    ("127.0.5.0/24", {  # fields of unexpected types are ignored, not misread
        "country": {"iso_code": 42, "names": {"en": True}},
        "city": "not a map",
        "autonomous_system_number": "64512",
    }),
    ("127.0.6.0/24", {  # longer than geo_info_t holds: cut at a character boundary
        "city": {"names": names("\u00e9" * 100)},
        "autonomous_system_organization": "Lab " + "\u00fc" * 100,
    }),
    ("fd00:25::/32", {
        "city": {"names": names("Lab City Six")},
        "country": {"iso_code": "XC", "names": names("IPv6 Lab Country")},
        "autonomous_system_number": 64514,
        "autonomous_system_organization": "Lab Networks v6",
    }),
]

LAB_CITY = [  # country/city only, 32-bit records
    ("127.0.1.0/24", {
        "city": {"names": names("Lab City (city db)")},
        "country": {"iso_code": "ZZ", "names": names("Lab Country")},
    }),
    ("127.0.2.0/24", {
        "country": {"iso_code": "XD", "names": names("Third Lab Country")},
    }),
]

LAB_ASN = [  # ASN only, IPv4 tree, 28-bit records (like GeoLite2-ASN's layout)
    ("127.0.1.0/24", {"autonomous_system_number": 64512,
                      "autonomous_system_organization": "Lab Networks"}),
    ("127.0.2.0/24", {"autonomous_system_number": 64515,
                      "autonomous_system_organization": "Third Lab AS"}),
]


def files():
    lab = build(LAB, "Mailprobe-Lab-City-ASN", "mailprobe lab: city and ASN", 6, 24)
    return {
        "lab.mmdb": lab,
        "lab-city.mmdb": build(LAB_CITY, "Mailprobe-Lab-City", "mailprobe lab: city", 6, 32),
        "lab-asn.mmdb": build(LAB_ASN, "Mailprobe-Lab-ASN", "mailprobe lab: ASN", 4, 28),
        # Not databases: a text file, and lab.mmdb cut before its metadata.
        "garbage.mmdb": b"this is not a MaxMind database\n" * 4,
        "truncated.mmdb": lab[:64],
    }


def main(argv):
    check = "--check" in argv
    args = [a for a in argv if a != "--check"]
    outdir = args[0] if args else HERE
    bad = 0
    for name, blob in files().items():
        path = os.path.join(outdir, name)
        if check:
            try:
                with open(path, "rb") as f:
                    same = f.read() == blob
            except OSError:
                same = False
            if not same:
                sys.stderr.write("make_mmdb: %s differs; run %s\n" % (path, sys.argv[0]))
                bad = 1
            continue
        with open(path, "wb") as f:
            f.write(blob)
    return bad


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
