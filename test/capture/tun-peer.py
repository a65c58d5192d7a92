#!/usr/bin/env python3
"""Userspace tunnel endpoints for the LVS-TUN capture fixtures (test/capture/make-tun-fixtures.sh).

This machine's kernel has neither IP_VS nor ipip, ip_gre or fou, so the director's encapsulation and the
realserver's tunl0 are played by this program around TUN devices; the kernels on both sides still route,
filter (rp_filter), answer ICMP and run TCP. The headers are the ones IPVS writes (net/netfilter/ipvs/
ip_vs_xmit.c): ip_vs_prepare_tunneled_skb() copies DF, TTL and the DS field of the inner IPv4 header into
the outer one (protocol 4, or 41 for IPv6 inside); ipvs_gue_encap() adds UDP to the destination's --tun-port
with a flow-hash source port, checksum 0 unless --tun-csum, and GUE variant 0 (hlen 0; hlen 2 with the
private flags and the remote checksum offload field for --tun-remcsum); ipvs_gre_encap() calls
gre_build_header() with the checksum flag only (no key, no sequence number). --key/--seq/--variant1 go
beyond IPVS (hand-built GRE tunnels, fou's direct IP) to exercise the decoder.

encap TUNDEV LOCAL REMOTE ipip|gre|gue SECONDS [--port P] [--csum] [--key K] [--seq] [--variant1] [--remcsum]
    wrap every packet routed into TUNDEV and send it from LOCAL to REMOTE
decap TUNDEV ipip|gre|gue SECONDS [--port P]
    unwrap what arrives and hand the inner packet to the kernel through TUNDEV (the realserver's tunl0)
"""
import fcntl
import os
import select
import socket
import struct
import sys
import time

TUNSETIFF = 0x400454ca
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000


def opt(name, default=None):
    if name in sys.argv:
        return sys.argv[sys.argv.index(name) + 1]
    return default


def open_tun(name):
    fd = os.open('/dev/net/tun', os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack('16sH', name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


def csum(b):
    if len(b) % 2:
        b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff


def outer_ip(src, dst, proto, payload, inner):
    if inner[0] >> 4 == 4:
        tos, frag, ttl = inner[1], (inner[6] & 0x40) << 8, inner[8]
    else:
        tos, frag, ttl = ((inner[0] & 15) << 4) | (inner[1] >> 4), 0, inner[7]
    ident = int.from_bytes(os.urandom(2), 'big')
    h = struct.pack('!BBHHHBBH4s4s', 0x45, tos, 20 + len(payload), ident, frag, ttl, proto, 0, src, dst)
    return h[:10] + struct.pack('!H', csum(h)) + h[12:] + payload


def flow_port(inner):
    # udp_flow_src_port(): a hash of the inner flow in the local port range
    h = hash(bytes(inner[12:24] if inner[0] >> 4 == 4 else inner[8:44]))
    return 32768 + h % 28232


def encap(dev, local, remote, kind, seconds):
    fd = open_tun(dev)
    src, dst = socket.inet_aton(local), socket.inet_aton(remote)
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    port = int(opt('--port', '6080'))
    seq = 0
    deadline = time.time() + seconds
    while time.time() < deadline:
        r, _, _ = select.select([fd], [], [], 0.2)
        if not r:
            continue
        inner = os.read(fd, 65535)
        v6 = inner[0] >> 4 == 6
        if kind == 'ipip':
            pkt = outer_ip(src, dst, 41 if v6 else 4, inner, inner)
        elif kind == 'gre':
            flags = (0x8000 if '--csum' in sys.argv else 0) | (0x2000 if '--key' in sys.argv else 0) | (0x1000 if '--seq' in sys.argv else 0)
            h = struct.pack('!HH', flags, 0x86dd if v6 else 0x0800)
            if flags & 0x8000:
                h += b'\0\0\0\0'
            if flags & 0x2000:
                h += struct.pack('!I', int(opt('--key')))
            if flags & 0x1000:
                seq += 1
                h += struct.pack('!I', seq)
            g = h + inner
            if flags & 0x8000:
                g = g[:4] + struct.pack('!H', csum(g)) + g[6:]
            pkt = outer_ip(src, dst, 47, g, inner)
        else:
            if '--variant1' in sys.argv:
                gue = b''
            elif '--remcsum' in sys.argv and not v6 and inner[9] == 6:
                # GUE_FLAG_PRIV, private flags GUE_PFLAG_REMCSUM, then csum_start/csum_offset of the inner TCP checksum
                ihl = (inner[0] & 15) * 4
                gue = struct.pack('!BBH', 2, 4, 0x0001) + struct.pack('!I', 0x80000000) + struct.pack('!HH', ihl, ihl + 16)
            else:
                gue = struct.pack('!BBH', 0, 41 if v6 else 4, 0)
            body = gue + inner
            udp = struct.pack('!HHHH', flow_port(inner), port, 8 + len(body), 0) + body
            if '--csum' in sys.argv:
                pseudo = src + dst + struct.pack('!BBH', 0, 17, len(udp))
                c = csum(pseudo + udp) or 0xffff
                udp = udp[:6] + struct.pack('!H', c) + udp[8:]
            pkt = outer_ip(src, dst, 17, udp, inner)
        try:
            raw.sendto(pkt, (remote, 0))
        except OSError as e:
            print(f'encap: {e}', file=sys.stderr)


def decap(dev, kind, seconds):
    fd = open_tun(dev)
    if kind == 'gue':
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(('0.0.0.0', int(opt('--port', '6080'))))
        socks = [s]
    elif kind == 'ipip':
        # protocol 4 (IPv4 inside) and 41 (IPv6 inside), as ipip and sit would take them
        socks = [socket.socket(socket.AF_INET, socket.SOCK_RAW, 4), socket.socket(socket.AF_INET, socket.SOCK_RAW, 41)]
    else:
        socks = [socket.socket(socket.AF_INET, socket.SOCK_RAW, 47)]
    deadline = time.time() + seconds
    while time.time() < deadline:
        r, _, _ = select.select(socks, [], [], 0.2)
        if not r:
            continue
        b = r[0].recv(65535)
        if kind == 'gue':
            inner = b if b[0] >> 6 == 1 else b[4 + (b[0] & 31) * 4:]
        else:
            b = b[(b[0] & 15) * 4:]
            if kind == 'gre':
                f = struct.unpack('!H', b[:2])[0]
                b = b[4 + (4 if f & 0xc000 else 0) + (4 if f & 0x2000 else 0) + (4 if f & 0x1000 else 0):]
            inner = b
        os.write(fd, inner)


if __name__ == '__main__':
    if sys.argv[1] == 'encap':
        encap(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], float(sys.argv[6]))
    else:
        decap(sys.argv[2], sys.argv[3], float(sys.argv[4]))
