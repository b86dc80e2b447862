# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Who answers IPv6 neighbour discovery for an address: the IPv6 counterpart of ``arping``.

    python3 ndprobe.py solicit IFACE TARGET [COUNT] [WAIT]   (JSON: every neighbour advertisement)
    python3 ndprobe.py watch IFACE SECONDS                   (JSON: every solicitation seen)

``solicit`` sends COUNT neighbour solicitations for TARGET (to its solicited-node multicast
group, from IFACE's link-local address) and prints, as one JSON object, each neighbour
advertisement for TARGET that came back: the Ethernet source and the target link-layer address
it announced. ``watch`` prints the solicitations other hosts sent on IFACE (source address,
target, Ethernet source), to see which address a host solicits from.

Raw sockets (root or CAP_NET_RAW), Linux, standard library only: it runs as ``python3 -c`` in a
container, a guest or a network namespace, where ndisc6 may not be installed.
"""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import select
import socket
import struct
import sys
import time

ETH_P_IPV6 = 0x86DD
PACKET_OUTGOING = 4
ICMPV6 = 58
NS, NA = 135, 136
OPT_SLLA, OPT_TLLA = 1, 2


def _mac(raw):
    return ":".join("%02x" % b for b in bytearray(raw))


def _link_local(iface):
    with open("/proc/net/if_inet6") as handle:
        for line in handle:
            addr, _idx, _plen, scope, _flags, name = line.split()
            if name == iface and scope == "20":
                return socket.inet_pton(socket.AF_INET6, ":".join(addr[i:i + 4] for i in range(0, 32, 4)))
    raise SystemExit("ndprobe: %s has no link-local address" % iface)


def _checksum(src, dst, payload):
    data = src + dst + struct.pack("!I3xB", len(payload), ICMPV6) + payload
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def solicitation(iface_mac, src, target):
    """The Ethernet frame of a neighbour solicitation for ``target`` (16 bytes)."""
    group = socket.inet_pton(socket.AF_INET6, "ff02::1:ff00:0")[:13] + target[13:]
    icmp = struct.pack("!BBHI", NS, 0, 0, 0) + target + struct.pack("!BB", OPT_SLLA, 1) + iface_mac
    icmp = icmp[:2] + struct.pack("!H", _checksum(src, group, icmp)) + icmp[4:]
    ip6 = struct.pack("!IHBB", 6 << 28, len(icmp), ICMPV6, 255) + src + group
    return b"\x33\x33" + group[12:] + iface_mac + struct.pack("!H", ETH_P_IPV6) + ip6 + icmp


def parse(frame):
    """``(kind, fields)`` of an ICMPv6 neighbour solicitation or advertisement, else None."""
    if len(frame) < 14 + 40 + 24 or struct.unpack("!H", frame[12:14])[0] != ETH_P_IPV6:
        return None
    ip6 = frame[14:54]
    if bytearray(ip6)[6] != ICMPV6:
        return None
    icmp = frame[54:]
    kind = bytearray(icmp[:1])[0]
    if kind not in (NS, NA):
        return None
    fields = {"eth_src": _mac(frame[6:12]), "src": socket.inet_ntop(socket.AF_INET6, ip6[8:24]),
              "target": socket.inet_ntop(socket.AF_INET6, icmp[8:24])}
    options = icmp[24:]
    while len(options) >= 8:
        otype, olen = bytearray(options[:2])
        if olen == 0:
            break
        if otype in (OPT_SLLA, OPT_TLLA):
            fields["slla" if otype == OPT_SLLA else "tlla"] = _mac(options[2:8])
        options = options[olen * 8:]
    if kind == NA:
        fields["router"] = bool(bytearray(icmp[4:5])[0] & 0x80)
    return ("NS" if kind == NS else "NA"), fields


def _socket(iface):
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IPV6))
    sock.bind((iface, ETH_P_IPV6))
    return sock


def _frames(sock, deadline):
    while True:
        left = deadline - time.time()
        if left <= 0 or not select.select([sock], [], [], left)[0]:
            return
        frame, addr = sock.recvfrom(65535)
        if addr[2] != PACKET_OUTGOING:
            yield frame


def solicit(iface, target, count=3, wait=1.0):
    with open("/sys/class/net/%s/address" % iface) as handle:
        iface_mac = bytes(bytearray(int(x, 16) for x in handle.read().strip().split(":")))
    want = socket.inet_pton(socket.AF_INET6, target)
    frame = solicitation(iface_mac, _link_local(iface), want)
    sock = _socket(iface)
    replies = []
    for _attempt in range(count):
        sock.send(frame)
        for got in _frames(sock, time.time() + wait):
            parsed = parse(got)
            if parsed and parsed[0] == "NA" and socket.inet_pton(socket.AF_INET6, parsed[1]["target"]) == want:
                replies.append(parsed[1])
    return {"sent": count, "replies": replies, "macs": sorted(set(r["eth_src"] for r in replies))}


def watch(iface, seconds):
    sock = _socket(iface)
    sys.stderr.write("listening\n")
    sys.stderr.flush()
    return {"solicitations": [p[1] for p in (parse(f) for f in _frames(sock, time.time() + seconds))
                              if p and p[0] == "NS"]}


def main(argv):
    if len(argv) >= 3 and argv[0] == "solicit":
        count = int(argv[3]) if len(argv) > 3 else 3
        wait = float(argv[4]) if len(argv) > 4 else 1.0
        print(json.dumps(solicit(argv[1], argv[2], count, wait)))
    elif len(argv) == 3 and argv[0] == "watch":
        print(json.dumps(watch(argv[1], float(argv[2]))))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
