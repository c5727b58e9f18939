"""Write the sample captures: deterministic, so every run gives the same bytes.

``python samples/make_samples.py [OUTDIR]`` (default: this script's directory).
Packets are crafted with dpkt; the capture files are written here with struct
(explicit byte order, integer nanosecond times) so the output never depends on
the host. Addresses come only from 198.18.0.0/15 and 2001:db8::/32, MACs are
locally administered (02:...). samples/README.md says what each file is for.
"""

from __future__ import annotations

import base64
import random
import socket
import struct
import sys
import zlib
from collections.abc import Callable
from pathlib import Path

import dpkt

NS_PER_S, NS_PER_MS, NS_PER_US = 1_000_000_000, 1_000_000, 1_000
EPOCH_NS = 1_767_603_600 * NS_PER_S  # 2026-01-05 09:00:00 UTC
LINKTYPE_ETHERNET, LINKTYPE_PPP, LINKTYPE_C_HDLC, LINKTYPE_LINUX_SLL = 1, 9, 104, 113
LINKTYPE_FRELAY = 107
ETH_IPV4, ETH_ARP, ETH_IPV6, ETH_8021Q, ETH_8021AD = 0x0800, 0x0806, 0x86DD, 0x8100, 0x88A8
ETH_SLARP, ETH_PPPOE_DISCOVERY, ETH_PPPOE_SESSION, ETH_ERSPAN_II = 0x8035, 0x8863, 0x8864, 0x88BE
ETH_MPLS, ETH_MACSEC, ETH_NSH, ETH_ARISTA = 0x8847, 0x88E5, 0x894F, 0xD28B
PPP_IPV4, PPP_IPV6, PPP_IPCP, PPP_IPV6CP, PPP_LCP = 0x0021, 0x0057, 0x8021, 0x8057, 0xC021
TCP, UDP, ICMP, ICMPV6, GRE = 6, 17, 1, 58, 47
VXLAN_PORT = 4789
FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10
MSS = 1448
V6_MSS_1492 = 1492 - 40 - 20  # IPv6 TCP in an MTU of 1492 (PPPoE; the PPP link's MRU)
ROUTER_MAC = bytes.fromhex("020000000001")
BROADCAST_MAC = b"\xff" * 6
SYN_OPTIONS = bytes.fromhex("020405b40103030701010402")  # MSS 1460, WS 7, SACK permitted
MSS_OPTION = SYN_OPTIONS[:4]

Frame = tuple[int, bytes]  # (ns since the epoch, frame bytes)
Tags = tuple[tuple[int, int], ...]  # VLAN tags (tpid, vid), outermost first
Link = Callable[[str, str, bytes], bytes]  # (src, dst, IP packet) -> the frame that carries it


def at(seconds: float) -> int:
    """Nanoseconds since the epoch for a time given in seconds after EPOCH_NS."""
    return EPOCH_NS + round(seconds * NS_PER_S)


def ipb(addr: str) -> bytes:
    return socket.inet_pton(socket.AF_INET6 if ":" in addr else socket.AF_INET, addr)


def mac(addr: str) -> bytes:
    """On-link hosts (198.18/16, 2001:db8:1::/48) have a MAC; the rest are behind the router."""
    if addr.startswith(("198.18.", "2001:db8:1:")):
        return b"\x02\x00" + ipb(addr)[-4:]
    return ROUTER_MAC


# ----------------------------------------------------------------- packet building


def ether(src: bytes, dst: bytes, ethertype: int, payload: bytes, tags: Tags = ()) -> bytes:
    """An Ethernet II frame, padded to the 60-byte minimum as a SPAN port delivers it."""
    head = dst + src + b"".join(struct.pack(">HH", tpid, vid) for tpid, vid in tags)
    return (head + struct.pack(">H", ethertype) + payload).ljust(60, b"\0")


def ipv4(
    src: str, dst: str, proto: int, l4: dpkt.Packet | bytes, *, tos: int = 0, ttl: int = 64,
    ident: int = 0, df: bool = False, mf: bool = False, frag_offset: int = 0,
) -> bytes:  # fmt: skip
    """An IPv4 packet; dpkt fills in the length and the checksums (L4 too, unless a fragment)."""
    flags_offset = (df << 14) | (mf << 13) | (frag_offset // 8)
    ip = dpkt.ip.IP(src=ipb(src), dst=ipb(dst), p=proto, tos=tos, ttl=ttl, id=ident, data=l4)
    ip._flags_offset = flags_offset
    return bytes(ip)


def frame4(src: str, dst: str, proto: int, l4: dpkt.Packet | bytes, **ip: int) -> bytes:
    """An IPv4 packet in an untagged Ethernet frame between the hosts' (or router's) MACs."""
    return ether(mac(src), mac(dst), ETH_IPV4, ipv4(src, dst, proto, l4, **ip))


def udp4(src: str, dst: str, sport: int, dport: int, payload: bytes, **ip: int) -> bytes:
    return frame4(src, dst, UDP, udp(sport, dport, payload), **ip)


def ipv6(
    src: str, dst: str, next_header: int, payload: bytes, tclass: int = 0, hop_limit: int = 64
) -> bytes:
    head = struct.pack(">IHBB", (6 << 28) | (tclass << 20), len(payload), next_header, hop_limit)
    return head + ipb(src) + ipb(dst) + payload


def checksummed_v6(src: str, dst: str, proto: int, l4: bytes, at_offset: int) -> bytes:
    """``l4`` with the checksum at ``at_offset`` computed over the IPv6 pseudo-header."""
    body = bytearray(l4)
    body[at_offset : at_offset + 2] = b"\0\0"
    pseudo = ipb(src) + ipb(dst) + struct.pack(">IxxxB", len(body), proto)
    body[at_offset : at_offset + 2] = struct.pack(">H", dpkt.in_cksum(pseudo + bytes(body)))
    return bytes(body)


def ip_packet(
    src: str, dst: str, proto: int, l4: dpkt.Packet | bytes, *, ttl: int = 64, ident: int = 0,
    df: bool = False, tos: int = 0,
) -> bytes:  # fmt: skip
    """An IPv4 or IPv6 packet (by the addresses) with its L4 checksum; v6 ignores ident and df."""
    if ":" not in src:
        return ipv4(src, dst, proto, l4, tos=tos, ttl=ttl, ident=ident, df=df)
    body = checksummed_v6(src, dst, proto, bytes(l4), {TCP: 16, UDP: 6, ICMPV6: 2}[proto])
    return ipv6(src, dst, proto, body, tos, ttl)


def ethernet_link(src: str, dst: str, packet: bytes) -> bytes:
    """An IP packet in an untagged Ethernet frame between the hosts' (or router's) MACs."""
    ethertype = ETH_IPV6 if packet[0] >> 4 == 6 else ETH_IPV4
    return ether(mac(src), mac(dst), ethertype, packet)


def tcp(
    sport: int, dport: int, flags: int, seq: int, ack: int, payload: bytes = b"",
    opts: bytes = b"", win: int = 502,
) -> dpkt.tcp.TCP:  # fmt: skip
    ack = ack % (1 << 32) if flags & ACK else 0
    segment = dpkt.tcp.TCP(
        sport=sport,
        dport=dport,
        seq=seq % (1 << 32),
        ack=ack,
        flags=flags,
        win=win,
        opts=opts,
        data=payload,
    )
    segment.off = 5 + len(opts) // 4
    return segment


def udp(sport: int, dport: int, payload: bytes) -> dpkt.udp.UDP:
    return dpkt.udp.UDP(sport=sport, dport=dport, ulen=8 + len(payload), data=payload)


def icmp_echo(request: bool, ident: int, seq: int, payload: bytes) -> dpkt.icmp.ICMP:
    echo = dpkt.icmp.ICMP.Echo(id=ident, seq=seq, data=payload)
    return dpkt.icmp.ICMP(type=8 if request else 0, code=0, data=echo)


def arp_frame(reply: bool, sender: str, target: str, tags: Tags = ()) -> bytes:
    """Who-has ``target`` from ``sender`` (broadcast), or the reply of ``sender`` to it."""
    target_mac = mac(target) if reply else bytes(6)
    body = dpkt.arp.ARP(op=2 if reply else 1, sha=mac(sender), spa=ipb(sender),
                        tha=target_mac, tpa=ipb(target))  # fmt: skip
    return ether(mac(sender), target_mac if reply else BROADCAST_MAC, ETH_ARP, bytes(body), tags)


def dns_query(ident: int, name: str, qtype: int) -> dpkt.dns.DNS:
    return dpkt.dns.DNS(id=ident, op=0x0100, qd=[dpkt.dns.DNS.Q(name=name, type=qtype, cls=1)])


def dns_answer(query: dpkt.dns.DNS, ttl: int, rdatas: list[dict[str, object]]) -> bytes:
    q = query.qd[0]
    answers = [dpkt.dns.DNS.RR(name=q.name, type=q.type, cls=1, ttl=ttl, **r) for r in rdatas]
    return bytes(dpkt.dns.DNS(id=query.id, op=0x8180, qd=query.qd, an=answers))


def tls_record(rng: random.Random, content_type: int, size: int) -> bytes:
    """A TLS 1.2 record of ``size`` bytes on the wire (header + opaque body)."""
    return struct.pack(">BHH", content_type, 0x0303, size - 5) + rng.randbytes(size - 5)


# ----------------------------------------------------------------- conversations


class TcpConn:
    """One TCP connection seen from a SPAN port near the client; appends frames as it goes.

    Client frames are seen when sent, the server's answers a round trip later;
    sequence and acknowledgement numbers stay consistent. Methods take the time
    of their first frame and return the time of their last one.
    """

    def __init__(
        self, frames: list[Frame], rng: random.Random, client: tuple[str, int],
        server: tuple[str, int], rtt_ns: int, link: Link = ethernet_link, mss: int = MSS,
    ) -> None:  # fmt: skip
        self.frames, self.rng, self.rtt_ns, self.link, self.mss = frames, rng, rtt_ns, link, mss
        self.ends = {True: client, False: server}
        self.next_seq = {True: rng.getrandbits(32), False: rng.getrandbits(32)}

    def seg(
        self, t: int, from_client: bool, flags: int, data: bytes = b"", opts: bytes = b""
    ) -> int:
        (src, src_port), (dst, dst_port) = self.ends[from_client], self.ends[not from_client]
        seq, ack = self.next_seq[from_client], self.next_seq[not from_client]
        segment = tcp(
            src_port, dst_port, flags, seq, ack, data, opts, 64240 if flags & SYN else 502
        )
        ident = self.rng.getrandbits(16)
        packet = ip_packet(src, dst, TCP, segment, ttl=64 if from_client else 52, df=True,
                           ident=ident)  # fmt: skip
        self.frames.append((t, self.link(src, dst, packet)))
        self.next_seq[from_client] = seq + len(data) + bool(flags & (SYN | FIN))
        return t

    def gap(self, answer_from_client: bool) -> int:
        """Delay before an answer is seen: a round trip when the server answers."""
        return (0 if answer_from_client else self.rtt_ns) + self.rng.randint(40_000, 400_000)

    def open(self, t: int) -> int:
        self.seg(t, True, SYN, opts=SYN_OPTIONS)
        t = self.seg(t + self.gap(False), False, SYN | ACK, opts=SYN_OPTIONS)
        return self.seg(t + self.gap(True), True, ACK)

    def send(self, t: int, from_client: bool, data: bytes) -> int:
        """Data in MSS-sized segments (PSH on the last), the receiver ACKing every second one."""
        last = t
        chunks = [data[i : i + self.mss] for i in range(0, len(data), self.mss)]
        for index, chunk in enumerate(chunks):
            final = index == len(chunks) - 1
            self.seg(t, from_client, ACK | (PSH if final else 0), chunk)
            if index % 2 == 1 or final:
                last = self.seg(t + self.gap(not from_client), not from_client, ACK)
            t += self.rng.randint(15_000, 120_000)
        return max(t, last)

    def close(self, t: int, client_first: bool) -> int:
        """FIN from the closer, FIN back, final ACK from the closer."""
        self.seg(t, client_first, FIN | ACK)
        t = self.seg(t + self.gap(not client_first), not client_first, FIN | ACK)
        return self.seg(t + self.gap(client_first), client_first, ACK)

    def handshake_tls(self, t: int) -> int:
        rng = self.rng
        t = self.open(t)
        t = self.send(t + 200 * NS_PER_US, True, tls_record(rng, 0x16, 517))  # ClientHello
        t = self.send(t + self.gap(False), False, tls_record(rng, 0x16, rng.randint(2800, 4200)))
        t = self.send(
            t + self.gap(True), True, tls_record(rng, 0x14, 6) + tls_record(rng, 0x16, 45)
        )
        return self.send(t + self.gap(False), False, tls_record(rng, 0x16, 250))

    def exchange_tls(self, t: int, sizes: list[int]) -> int:
        """One request/response pair of application data per response size."""
        for size in sizes:
            t = self.send(t, True, tls_record(self.rng, 0x17, self.rng.randint(300, 700)))
            t = self.send(t + self.gap(False), False, tls_record(self.rng, 0x17, size))
            t += self.rng.randint(5, 60) * NS_PER_MS
        return t


def dns_lookup(
    frames: list[Frame], rng: random.Random, t: int, client: tuple[str, int], resolver: str,
    name: str, answers: tuple[str, str], link: Link = ethernet_link,
) -> int:  # fmt: skip
    """A and AAAA queries from one socket (as glibc sends them), each answered."""
    addr, cport = client

    def datagram(src: str, dst: str, sport: int, dport: int, payload: bytes) -> bytes:
        return link(src, dst, ip_packet(src, dst, UDP, udp(sport, dport, payload)))

    for qtype, answer in zip((1, 28), answers, strict=True):
        query = dns_query(rng.getrandbits(16), name, qtype)
        frames.append((t, datagram(addr, resolver, cport, 53, bytes(query))))
        rdata = {"ip": ipb(answer)} if qtype == 1 else {"ip6": ipb(answer)}
        t += rng.randint(300_000, 9_000_000)
        frames.append((t, datagram(resolver, addr, 53, cport, dns_answer(query, 300, [rdata]))))
        t += rng.randint(50_000, 300_000)
    return t


# ----------------------------------------------------------------- samples


def web_frames() -> list[Frame]:
    """Four clients browsing for ~92 s: ten sessions, listed in samples/README.md."""
    rng = random.Random(1)
    frames: list[Frame] = []
    resolver = "198.18.0.53"
    a, b, c, d = "198.18.1.10", "198.18.1.11", "198.18.1.12", "198.18.1.13"
    www, cdn, plain = "198.19.10.1", "198.19.10.2", "198.19.20.80"
    names = {www: "www.example.com", cdn: "cdn.example.net", plain: "plain.example.org"}
    v6 = {www: "2001:db8:10::1", cdn: "2001:db8:10::2", plain: "2001:db8:20::80"}
    ports = iter(rng.sample(range(32768, 61000), 32))  # distinct ephemeral ports

    def lookup(t: float, client: str, server: str) -> None:
        where = (client, next(ports))
        dns_lookup(frames, rng, at(t), where, resolver, names[server], (server, v6[server]))

    def conn(client: str, server: str, port: int) -> TcpConn:
        rtt = rng.randint(18, 35) * NS_PER_MS
        return TcpConn(frames, rng, (client, next(ports)), (server, port), rtt)

    def sizes(n: int) -> list[int]:
        return [rng.randint(2000, 8000) for _ in range(n)]

    def tls_visit(t: float, client: str, server: str, lookup_first: bool) -> None:
        """An HTTPS visit: DNS unless cached, handshake, 1-2 exchanges, the client closes."""
        if lookup_first:
            lookup(t, client, server)
        tc = conn(client, server, 443)
        end = tc.exchange_tls(tc.handshake_tls(at(t + 0.05)), sizes(rng.randint(1, 2)))
        tc.close(end + 200 * NS_PER_MS, client_first=True)

    def tls_with_pause(t: float, resume: float, client: str, server: str) -> None:
        """An HTTPS keep-alive connection silent for > 15 s, then used again and closed."""
        lookup(t, client, server)
        tc = conn(client, server, 443)
        tc.exchange_tls(tc.handshake_tls(at(t + 0.05)), sizes(1))
        tc.close(tc.exchange_tls(at(resume), sizes(2)) + 150 * NS_PER_MS, client_first=True)

    def http_visit(t: float, client: str) -> None:
        """Plain HTTP/1.0: GET, the response, the server closes first."""
        lookup(t, client, plain)
        tc = conn(client, plain, 80)
        t_ns = tc.open(at(t + 0.05))
        request = (
            b"GET /index.html HTTP/1.0\r\nHost: plain.example.org\r\nUser-Agent: curl/8.5\r\n\r\n"
        )
        t_ns = tc.send(t_ns + 100 * NS_PER_US, True, request)
        body = rng.randbytes(rng.randint(3000, 7000))
        header = (
            b"HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\n"
            b"Content-Length: %d\r\n\r\n"
        )
        t_ns = tc.send(t_ns + tc.gap(False), False, header % len(body) + body)
        tc.close(t_ns + 1 * NS_PER_MS, client_first=False)

    frames.append((at(0), arp_frame(False, a, resolver)))  # two non-IP frames
    frames.append((at(0.0003), arp_frame(True, resolver, a)))
    tls_visit(0.001, a, www, lookup_first=True)  # session 1
    tls_with_pause(1.0, 25.0, b, cdn)  # session 2: silent from ~1.6 s to 25 s
    http_visit(2.0, c)  # session 3
    for seq in range(3):  # session 4: three echo pairs, one flow each way
        t, payload = at(5.0 + seq), bytes(range(16, 64))
        frames.append((t, frame4(a, "198.19.0.1", ICMP, icmp_echo(True, 0x1C2A, seq, payload))))
        reply = frame4("198.19.0.1", a, ICMP, icmp_echo(False, 0x1C2A, seq, payload), ttl=60)
        frames.append((t + rng.randint(8_000_000, 9_000_000), reply))
    lookup(12.0, d, www)  # session 5: the client resets the connection during a download
    reset = conn(d, www, 443)
    t_ns = reset.send(reset.handshake_tls(at(12.05)), True, tls_record(rng, 0x17, 420))
    download = tls_record(rng, 0x17, 5 * MSS)
    t_ns = reset.send(t_ns + reset.gap(False), False, download[: 4 * MSS])
    reset.seg(t_ns + 300 * NS_PER_MS, True, RST | ACK)
    reset.seg(t_ns + 300 * NS_PER_MS + 20 * NS_PER_US, False, ACK, download[4 * MSS :])  # in flight
    tls_visit(30.0, a, cdn, lookup_first=False)  # session 6: name cached, no DNS
    tls_with_pause(45.0, 70.0, c, www)  # session 7: silent from ~45.6 s to 70 s
    tls_visit(60.0, a, cdn, lookup_first=True)  # session 8
    tls_visit(85.0, b, www, lookup_first=True)  # session 9
    http_visit(92.0, d)  # session 10
    return frames


def portscan_frames() -> list[Frame]:
    """A SYN scan of ports 1-1000 in random order, 1 ms apart; 22, 80 and 443 are open."""
    rng = random.Random(2)
    frames: list[Frame] = []
    scanner, target, sport = "198.18.50.5", "198.19.50.50", 61234
    t = at(0)
    for port in rng.sample(range(1, 1001), 1000):
        seq = rng.getrandbits(32)
        probe = tcp(sport, port, SYN, seq, 0, opts=MSS_OPTION, win=1024)
        ident = rng.getrandbits(16)
        frames.append(
            (t, frame4(scanner, target, TCP, probe, ttl=rng.randint(37, 59), ident=ident))
        )
        t_reply = t + rng.randint(300_000, 700_000)
        if port in (22, 80, 443):  # SYN-ACK; the scanner's kernel, with no socket, resets
            answer = tcp(
                port, sport, SYN | ACK, rng.getrandbits(32), seq + 1, b"", MSS_OPTION, 64240
            )
            abort = tcp(sport, port, RST, seq + 1, 0, win=0)
            frames.append((t_reply + 40_000, frame4(scanner, target, TCP, abort)))
        else:
            answer = tcp(port, sport, RST | ACK, 0, seq + 1, win=0)
        frames.append((t_reply, frame4(target, scanner, TCP, answer, ttl=61, df=True)))
        t += rng.randint(900_000, 1_100_000)
    return frames


def slowscan_frames() -> list[Frame]:
    """60 SYN probes ~20 s apart to different ports, hidden in an SSH session and NTP polls."""
    rng = random.Random(3)
    frames: list[Frame] = []
    scanner, target = "198.18.60.6", "198.19.60.60"
    for probe, port in enumerate(rng.sample(range(1, 1025), 60)):
        t, seq = at(10 + 20 * probe + rng.uniform(-1, 1)), rng.getrandbits(32)
        syn = tcp(45111, port, SYN, seq, 0, opts=MSS_OPTION, win=1024)
        frames.append((t, frame4(scanner, target, TCP, syn, ttl=44)))
        refused = tcp(port, 45111, RST | ACK, 0, seq + 1, win=0)
        frames.append((t + rng.randint(20, 30) * NS_PER_MS, frame4(target, scanner, TCP, refused)))
    ssh = TcpConn(frames, rng, ("198.18.60.11", 50022), ("198.19.60.22", 22), 12 * NS_PER_MS)
    t = ssh.open(at(1))
    while t < at(1225):  # keystrokes echoed by the server, a few seconds apart
        t = ssh.send(t + rng.randint(1500, 9000) * NS_PER_MS, True, rng.randbytes(36))
        t = ssh.send(t + ssh.gap(False), False, rng.randbytes(36))
    ssh.close(t + 2 * NS_PER_S, client_first=True)
    for poll in range(19):  # an NTP client polling every 64 s
        t = at(3 + 64 * poll + rng.uniform(0, 0.5))
        request = b"\x23" + bytes(39) + rng.randbytes(8)
        frames.append((t, udp4("198.18.60.10", "198.19.60.123", 123, 123, request)))
        reply = struct.pack(">BBbb", 0x24, 2, 6, -24) + rng.randbytes(44)
        frames.append((t + 15 * NS_PER_MS, udp4("198.19.60.123", "198.18.60.10", 123, 123, reply)))
    return frames


def synflood_frames() -> list[Frame]:
    """3000 spoofed SYNs to port 80 within 3 s (ingress only: no backscatter), 3 real visits."""
    rng = random.Random(4)
    frames: list[Frame] = []
    server = "198.18.70.7"  # on-link; everything else arrives through the router
    clients = ["198.19.1.21", "198.19.1.22", "198.19.1.23"]
    taken = {ipb(addr) for addr in (server, *clients)}
    seen: set[tuple[bytes, int]] = set()
    while len(seen) < 3000:
        src, port = struct.pack(">I", 0xC6120000 | rng.getrandbits(17)), rng.randint(1024, 65535)
        if (src, port) in seen or src in taken:  # 198.18.0.0/15 above: one SYN per key
            continue
        seen.add((src, port))
        syn = tcp(port, 80, SYN, rng.getrandbits(32), 0, win=rng.choice((512, 1024, 5840, 65535)))
        ttl, ident = rng.randint(30, 250), rng.getrandbits(16)
        packet = frame4(socket.inet_ntoa(src), server, TCP, syn, ttl=ttl, ident=ident)
        frames.append((at(1 + rng.uniform(0, 3)), packet))
    for index, client in enumerate(clients):
        tc = TcpConn(frames, rng, (client, 40000 + index), (server, 80), 2 * NS_PER_MS)
        t = tc.open(at(0.5 + 1.2 * index))
        t = tc.send(t + 100 * NS_PER_US, True, b"GET / HTTP/1.1\r\nHost: flood.example\r\n\r\n")
        body = rng.randbytes(2000)
        t = tc.send(
            t + tc.gap(False), False, b"HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n\r\n" + body
        )
        tc.close(t + 5 * NS_PER_MS, client_first=True)
    return frames


def dnstunnel_frames() -> list[Frame]:
    """400 TXT queries with base32 labels from one socket ~1.5 s apart; a neighbour's lookups."""
    rng = random.Random(5)
    frames: list[Frame] = []
    client, resolver, cport = "198.18.80.8", "198.18.0.53", 53530
    t = at(0)
    for _ in range(400):
        data = base64.b32encode(rng.randbytes(rng.randint(35, 60))).decode().rstrip("=").lower()
        labels = [data[i : i + 60] for i in range(0, len(data), 60)]
        query = dns_query(rng.getrandbits(16), ".".join([*labels, "t.tunnel.example.com"]), 16)
        frames.append((t, udp4(client, resolver, cport, 53, bytes(query))))
        blob = base64.b32encode(rng.randbytes(rng.randint(20, 70))).rstrip(b"=")
        reply = udp4(resolver, client, 53, cport, dns_answer(query, 0, [{"text": [blob]}]))
        frames.append((t + rng.randint(20, 60) * NS_PER_MS, reply))
        t += rng.randint(1400, 1600) * NS_PER_MS
    for k in range(20):
        t = at(15 + 30 * k + rng.uniform(0, 5))
        where = ("198.18.80.9", rng.randint(32768, 60999))
        dns_lookup(
            frames, rng, t, where, resolver, "www.example.com", ("198.19.10.1", "2001:db8::1")
        )
    return frames


def ipv6_frames() -> list[Frame]:
    """TCP, UDP (one flow with traffic class EF), ICMPv6 echo and NUD, hop-by-hop, fragments."""
    rng = random.Random(6)
    frames: list[Frame] = []
    host, resolver, server = "2001:db8:1::10", "2001:db8:1::53", "2001:db8:2::20"
    phone, peer, router = "2001:db8:1::30", "2001:db8:2::40", "2001:db8:1::1"

    def emit(
        t: int, src: str, dst: str, proto: int, l4: bytes, csum_at: int, tclass: int = 0,
        hop_by_hop: bytes = b"",
    ) -> None:  # fmt: skip
        body = hop_by_hop + checksummed_v6(src, dst, proto, l4, csum_at)
        packet = ipv6(src, dst, 0 if hop_by_hop else proto, body, tclass)
        frames.append((t, ether(mac(src), mac(dst), ETH_IPV6, packet)))

    def icmp6(t: int, src: str, dst: str, icmp_type: int, body: bytes) -> None:
        emit(t, src, dst, ICMPV6, struct.pack(">BBH", icmp_type, 0, 0) + body, 2)

    # Neighbour unreachability detection: unicast NS, solicited NA (RFC 4861 section 7.2.2).
    icmp6(at(0), host, router, 135, bytes(4) + ipb(router) + b"\x01\x01" + mac(host))
    na = b"\x60" + bytes(3) + ipb(router) + b"\x02\x01" + ROUTER_MAC
    icmp6(at(0.00015), router, host, 136, na)
    query = dns_query(0x4D2, "www.example.com", 28)
    emit(at(0.01), host, resolver, UDP, bytes(udp(41000, 53, bytes(query))), 6)
    answer = dns_answer(query, 300, [{"ip6": ipb(server)}])
    emit(at(0.013), resolver, host, UDP, bytes(udp(53, 41000, answer)), 6)
    for seq in range(3):  # ICMPv6 echo
        body = struct.pack(">HH", 0x77, seq + 1) + bytes(range(48))
        icmp6(at(0.5 + seq), host, server, 128, body)
        icmp6(at(0.521 + seq), server, host, 129, body)
    t = at(1.0)  # a TCP connection to port 443: handshake, data, FIN both ways
    seqs = {True: rng.getrandbits(32), False: rng.getrandbits(32)}
    script = [
        (True, SYN, 0, 0), (False, SYN | ACK, 0, 20), (True, ACK, 0, 1), (True, PSH | ACK, 517, 1),
        (False, ACK, 1220, 20), (False, PSH | ACK, 900, 1), (True, ACK, 0, 1),
        (True, FIN | ACK, 0, 50), (False, FIN | ACK, 0, 20), (True, ACK, 0, 1),
    ]  # fmt: skip
    for from_host, flags, size, delay_ms in script:
        t += delay_ms * NS_PER_MS
        src, dst, sport, dport = (
            (host, server, 50443, 443) if from_host else (server, host, 443, 50443)
        )
        opts = SYN_OPTIONS if flags & SYN else b""
        segment = tcp(
            sport, dport, flags, seqs[from_host], seqs[not from_host], rng.randbytes(size), opts
        )
        emit(t, src, dst, TCP, bytes(segment), 16)
        seqs[from_host] += size + bool(flags & (SYN | FIN))
    for k in range(25):  # a voice call: RTP both ways every 20 ms, traffic class 0xb8 (DSCP EF)
        for src, dst, delay in ((phone, peer, 0), (peer, phone, 3 * NS_PER_MS)):
            rtp = struct.pack(">BBHII", 0x80, 0, k, 160 * k, 0x5EED) + rng.randbytes(160)
            emit(at(2.0 + 0.02 * k) + delay, src, dst, UDP, bytes(udp(16384, 16384, rtp)), 6, 0xB8)
    hop_by_hop = bytes([UDP, 0, 1, 4, 0, 0, 0, 0])  # PadN only; UDP to iperf3's port follows
    emit(at(3.0), host, server, UDP, bytes(udp(45001, 5201, rng.randbytes(64))), 6, 0, hop_by_hop)
    # A DNS answer of 2000 bytes in two fragments at the 1280-byte minimum MTU.
    query = dns_query(0x4D3, "big.example.com", 16)
    emit(at(3.49), host, resolver, UDP, bytes(udp(41001, 53, bytes(query))), 6)
    texts = [{"text": [base64.b32encode(rng.randbytes(140))]} for _ in range(8)]
    message = dns_answer(query, 60, texts)
    datagram = checksummed_v6(resolver, host, UDP, bytes(udp(53, 41001, message)), 6)
    for offset, more in ((0, 1), (1232, 0)):
        fragment = struct.pack(">BBHI", UDP, 0, offset | more, 0x1F2E3D4C)
        packet = ipv6(
            resolver, host, 44, fragment + datagram[offset : offset + 1232 if more else None]
        )
        frames.append((at(3.5) + offset * 800, ether(mac(resolver), mac(host), ETH_IPV6, packet)))
    return frames


def vlan_frames() -> list[Frame]:
    """A trunk: VLANs 10 and 20, QinQ (S-VLAN 100 over C-VLAN 30), untagged, and ARP."""
    rng = random.Random(7)
    frames: list[Frame] = []
    v10, v20, qinq = ((ETH_8021Q, 10),), ((ETH_8021Q, 20),), ((ETH_8021AD, 100), (ETH_8021Q, 30))
    for k, (tags, asker, gateway) in enumerate(
        ((v10, "198.18.10.5", "198.18.10.1"), ((), "198.18.0.2", "198.18.0.1"))
    ):  # ARP on VLAN 10 and untagged
        frames.append((at(0.001 * k), arp_frame(False, asker, gateway, tags)))
        frames.append((at(0.001 * k + 0.00009), arp_frame(True, gateway, asker, tags)))
    # Routed on a stick between VLANs: each packet is seen on VLAN 10, then on VLAN 20.
    a, b = "198.18.10.5", "198.18.20.6"
    for k in range(12):
        payload = rng.randbytes(rng.randint(40, 200))
        hops = ((v10, 64, 0, mac(a), ROUTER_MAC), (v20, 63, 35_123, ROUTER_MAC, mac(b)))
        for tags, ttl, delay, src_mac, dst_mac in hops:
            packet = ipv4(a, b, UDP, udp(5060, 5060, payload), ttl=ttl, ident=k)
            frames.append(
                (at(0.1 + 0.05 * k) + delay, ether(src_mac, dst_mac, ETH_IPV4, packet, tags))
            )
    # A customer's TCP conversation inside the provider tag.
    inner = "198.18.30.7", "198.19.30.8"
    seqs = [rng.getrandbits(32), rng.getrandbits(32)]
    for k in range(20):
        side = k % 2
        src, dst = inner[side], inner[1 - side]
        data = rng.randbytes(rng.randint(10, 300))
        sport, dport = (33000, 443) if side == 0 else (443, 33000)
        segment = tcp(sport, dport, ACK | PSH, seqs[side], seqs[1 - side], data)
        seqs[side] += len(data)
        packet = ipv4(src, dst, TCP, segment)
        frames.append((at(0.2 + 0.035 * k), ether(mac(src), mac(dst), ETH_IPV4, packet, qinq)))
    for k in range(6):  # untagged management: SNMP polls of a switch
        t = at(0.15 + 0.1 * k)
        frames.append((t, udp4("198.18.0.2", "198.18.0.3", 50161, 161, rng.randbytes(45))))
        answer = udp4("198.18.0.3", "198.18.0.2", 161, 50161, rng.randbytes(90))
        frames.append((t + 2 * NS_PER_MS, answer))
    return frames


def fragments_frames() -> list[Frame]:
    """20 UDP datagrams of 3000-4000 bytes in 1480-byte fragments; one sent tail first."""
    rng = random.Random(8)
    frames: list[Frame] = []
    nfs, rtp = ("198.18.9.1", "198.19.9.2", 40000, 2049), ("198.18.9.3", "198.19.9.4", 5004, 5004)
    t = at(0)
    for index, (src, dst, sport, dport) in enumerate([nfs] * 12 + [rtp] * 8):
        whole = ipv4(src, dst, UDP, udp(sport, dport, rng.randbytes(rng.randint(3000, 4000))))
        datagram = whole[20:]  # the UDP header, checksum included, and the payload
        pieces = [
            ipv4(src, dst, UDP, datagram[offset : offset + 1480], ident=0x3000 + index,
                 mf=offset + 1480 < len(datagram), frag_offset=offset)
            for offset in range(0, len(datagram), 1480)
        ]  # fmt: skip
        if index == 5:
            pieces.reverse()  # Linux sends some fragmented datagrams tail first
        for piece in pieces:
            frames.append((t, ether(mac(src), mac(dst), ETH_IPV4, piece)))
            t += rng.randint(120_000, 130_000)
        t += rng.randint(20, 80) * NS_PER_MS
    return frames


def aliasing_frames() -> list[Frame]:
    """5000 frames; a heartbeat is exactly every 10th (frames 0, 10, 20, ...), once a second."""
    rng = random.Random(9)
    frames: list[Frame] = []
    metrics = [b"app.requests:1|c", b"app.latency:%d|ms", b"queue.depth:%d|g"]
    for second in range(500):
        t = at(second)
        beat = struct.pack(">BBBBII", 0x20, 0xC0, 3, 24, 0x1000 + second, 0x2000) + bytes(12)
        frames.append((t, udp4("198.18.90.9", "198.19.90.9", 49152, 3784, beat)))
        for offset_ms in sorted(rng.sample(range(1, 1000), 9)):
            host = rng.randint(1, 6)
            if host <= 3:  # syslog lines
                text = b"<134>Jan  5 09:00:00 app%d nginx: GET /api/%d 200" % (
                    host,
                    rng.randint(1, 99),
                )
                frame = udp4(f"198.18.91.{host}", "198.19.91.100", 514, 514, text)
            else:  # statsd counters and timers
                text = rng.choice(metrics).replace(b"%d", b"%d" % rng.randint(1, 500))
                frame = udp4(f"198.18.91.{host}", "198.19.91.101", 40000 + host, 8125, text)
            frames.append((t + offset_ms * NS_PER_MS, frame))
    return frames


def two_interface_packets() -> list[tuple[int, int, bytes]]:
    """A VPN gateway: eth0 (Ethernet, µs) and wg0 (Linux cooked, ns); tunnelled flows on both."""
    rng = random.Random(10)
    packets: list[tuple[int, int, bytes]] = []
    gateway = "198.18.100.1"

    def cooked(incoming: bool, packet: bytes) -> bytes:  # SLL header of a WireGuard device
        return struct.pack(">HHH8sH", 0 if incoming else 4, 0xFFFE, 0, bytes(8), ETH_IPV4) + packet

    def on_eth0(t_ns: int, frame: bytes) -> None:
        packets.append((0, t_ns - t_ns % NS_PER_US, frame))

    for k in range(30):
        client, remote = f"198.18.100.1{k % 2}", f"198.19.100.2{k % 2}"
        port = 40000 + k % 2
        request, response = rng.randbytes(rng.randint(60, 400)), rng.randbytes(rng.randint(60, 900))
        t = at(0.2 * k) + rng.randint(0, 999_999)
        out = ipv4(client, remote, UDP, udp(port, 8443, request))
        on_eth0(t, ether(mac(client), mac(gateway), ETH_IPV4, out))
        t += rng.randint(20_000, 60_000)  # forwarded into the tunnel, stamped in ns
        packets.append(
            (1, t, cooked(False, ipv4(client, remote, UDP, udp(port, 8443, request), ttl=63)))
        )
        t += rng.randint(8_000_000, 15_000_000)
        back = udp(8443, port, response)
        packets.append((1, t, cooked(True, ipv4(remote, client, UDP, back, ttl=57))))
        t += rng.randint(20_000, 60_000)  # and delivered on eth0
        back_eth0 = ipv4(remote, client, UDP, udp(8443, port, response), ttl=56)
        on_eth0(t, ether(mac(gateway), mac(client), ETH_IPV4, back_eth0))
    for k in range(4):  # the gateway's own DNS lookups, eth0 only
        query = dns_query(0x100 + k, "vpn.example.net", 1)
        on_eth0(at(1.1 + k), udp4(gateway, "198.18.0.53", 53000 + k, 53, bytes(query)))
        answer = dns_answer(query, 60, [{"ip": ipb("198.19.100.1")}])
        on_eth0(at(1.1007 + k), udp4("198.18.0.53", gateway, 53, 53000 + k, answer))
    return sorted(packets, key=lambda p: p[1])


def ppp_body(protocol: int, body: bytes, hdlc: bool) -> bytes:
    """A PPP frame of LINKTYPE_PPP: FF 03 (HDLC address and control) unless compressed away."""
    return (b"\xff\x03" if hdlc else b"") + struct.pack(">H", protocol) + body


def control_packet(code: int, ident: int, options: bytes = b"") -> bytes:
    """An LCP/IPCP/IPV6CP packet: code, identifier, length, then options or data."""
    return struct.pack(">BBH", code, ident, 4 + len(options)) + options


def ppp_protocol(packet: bytes) -> int:
    return PPP_IPV6 if packet[0] >> 4 == 6 else PPP_IPV4


def ppp_frames() -> list[Frame]:
    """A PPP link: LCP/IPCP/IPV6CP set-up, IPv4 and IPv6 traffic, LCP echo, LCP terminate."""
    rng = random.Random(11)
    frames: list[Frame] = []
    cpe, cpe6, resolver = "198.18.40.2", "2001:db8:40::2", "198.19.40.53"
    web, web6, ntp6 = "198.19.41.80", "2001:db8:41::443", "2001:db8:41::123"

    def link(src: str, dst: str, packet: bytes) -> bytes:
        """The peer accepts frames without address and control (ACFC): the CPE leaves FF 03 off."""
        return ppp_body(ppp_protocol(packet), packet, hdlc=src not in (cpe, cpe6))

    def control(
        t: float, protocol: int, from_cpe: bool, code: int, ident: int, options: bytes
    ) -> None:
        hdlc = protocol == PPP_LCP or not from_cpe  # LCP never compresses FF 03 away
        frames.append((at(t), ppp_body(protocol, control_packet(code, ident, options), hdlc)))

    magic = {True: 0x1A2B3C4D, False: 0x5E6F7081}
    for k, from_cpe in enumerate((True, False)):  # LCP Configure-Request and -Ack both ways
        options = bytes.fromhex("010405d4") + struct.pack(">BBI", 5, 6, magic[from_cpe])
        options += b"" if from_cpe else bytes.fromhex("0802")  # ACFC, asked for by the peer
        control(0.01 * k, PPP_LCP, from_cpe, 1, 1, options)
        control(0.01 * k + 0.002, PPP_LCP, not from_cpe, 2, 1, options)
    ipcp, ipv6cp = struct.pack(">BB4s", 3, 6, ipb(cpe)), struct.pack(">BBQ", 1, 10, 0x40000002)
    for k, (protocol, options) in enumerate(((PPP_IPCP, ipcp), (PPP_IPV6CP, ipv6cp))):
        control(0.05 + 0.01 * k, protocol, True, 1, 1, options)
        control(0.052 + 0.01 * k, protocol, False, 2, 1, options)
    dns_lookup(frames, rng, at(1.0), (cpe, 40001), resolver, "www.example.com", (web, web6),
               link=link)  # fmt: skip
    tc = TcpConn(frames, rng, (cpe, 40002), (web, 443), 25 * NS_PER_MS, link)
    t = tc.exchange_tls(tc.handshake_tls(at(1.1)), [rng.randint(2000, 5000)])
    tc.close(t + 100 * NS_PER_MS, client_first=True)
    tc6 = TcpConn(frames, rng, (cpe6, 40003), (web6, 443), 22 * NS_PER_MS, link, V6_MSS_1492)
    t = tc6.exchange_tls(tc6.handshake_tls(at(3.0)), [rng.randint(2000, 5000)])
    tc6.close(t + 100 * NS_PER_MS, client_first=True)
    for seq in range(2):  # ping the resolver; NTP over IPv6
        payload = bytes(range(32))
        ping = ip_packet(cpe, resolver, ICMP, icmp_echo(True, 0x3A, seq, payload))
        frames.append((at(5.0 + seq), link(cpe, resolver, ping)))
        pong = ip_packet(resolver, cpe, ICMP, icmp_echo(False, 0x3A, seq, payload), ttl=60)
        frames.append((at(5.024 + seq), link(resolver, cpe, pong)))
        request = b"\x23" + bytes(39) + rng.randbytes(8)
        query = ip_packet(cpe6, ntp6, UDP, udp(123, 123, request))
        frames.append((at(7.0 + 4 * seq), link(cpe6, ntp6, query)))
        reply = struct.pack(">BBbb", 0x24, 2, 6, -24) + rng.randbytes(44)
        answer = ip_packet(ntp6, cpe6, UDP, udp(123, 123, reply), ttl=58)
        frames.append((at(7.021 + 4 * seq), link(ntp6, cpe6, answer)))
    for k in range(2):  # LCP echo (the peer's keepalive), then the CPE hangs up
        control(10.0 + 10 * k, PPP_LCP, False, 9, 2 + k, struct.pack(">I", magic[False]))
        control(10.003 + 10 * k, PPP_LCP, True, 10, 2 + k, struct.pack(">I", magic[True]))
    control(25.0, PPP_LCP, True, 5, 4, b"")
    control(25.004, PPP_LCP, False, 6, 4, b"")
    return frames


def chdlc_frames() -> list[Frame]:
    """A Cisco HDLC serial link between two routers: SLARP, site-to-site IPv4 and IPv6."""
    rng = random.Random(12)
    frames: list[Frame] = []
    r1, link_broadcast = "198.18.45.1", "198.18.45.3"  # on the link's /30 with r2, .2

    def chdlc(address: int, ethertype: int, body: bytes) -> bytes:
        return struct.pack(">BBH", address, 0, ethertype) + body

    def link(src: str, dst: str, packet: bytes) -> bytes:
        address = 0x8F if dst == link_broadcast else 0x0F
        return chdlc(address, ETH_IPV6 if packet[0] >> 4 == 6 else ETH_IPV4, packet)

    # SLARP: r2 asks for the link address, r1 answers, then both send keepalives every 10 s.
    frames.append((at(0), chdlc(0x8F, ETH_SLARP, struct.pack(">IIIH", 0, 0, 0, 0))))
    reply = struct.pack(">I4s4sH", 1, ipb(r1), bytes([255, 255, 255, 252]), 0)
    frames.append((at(0.004), chdlc(0x8F, ETH_SLARP, reply)))
    for k in range(3):
        for index, delay in ((0, 0.0), (1, 0.9)):
            mine, yours = 1 + k, k + index
            keepalive = struct.pack(">IIIH", 2, mine, yours, 0xFFFF)
            frames.append((at(0.5 + 10 * k + delay), chdlc(0x8F, ETH_SLARP, keepalive)))
    for k in range(3):  # RIPv1 to the link's directed broadcast: an IP frame with address 0x8F
        route = struct.pack(">BBHHH4s8sI", 2, 1, 0, 2, 0, ipb("198.19.45.0"), bytes(8), 1)
        rip = ip_packet(r1, link_broadcast, UDP, udp(520, 520, route))
        frames.append((at(1.0 + 10 * k), link(r1, link_broadcast, rip)))
    smb = TcpConn(frames, rng, ("198.19.45.10", 50100), ("198.19.46.20", 445), 8 * NS_PER_MS,
                  link)  # fmt: skip
    t = smb.send(smb.open(at(2.0)) + 100 * NS_PER_US, True, rng.randbytes(1200))
    t = smb.send(t + smb.gap(False), False, rng.randbytes(6000))
    smb.close(t + 50 * NS_PER_MS, client_first=True)
    ssh = TcpConn(frames, rng, ("2001:db8:45::10", 50122), ("2001:db8:46::22", 22),
                  9 * NS_PER_MS, link, 1500 - 40 - 20)  # fmt: skip
    t = ssh.open(at(4.0))
    for _ in range(4):
        t = ssh.send(t + rng.randint(300, 900) * NS_PER_MS, True, rng.randbytes(36))
        t = ssh.send(t + ssh.gap(False), False, rng.randbytes(36))
    ssh.close(t + 200 * NS_PER_MS, client_first=False)
    for k in range(5):  # syslog from site B to site A
        text = b"<134>Jan  5 09:00:%02d fw1: deny tcp 198.19.46.%d" % (10 + k, rng.randint(1, 99))
        packet = ip_packet("198.19.46.20", "198.19.45.5", UDP, udp(514, 514, text), ttl=63)
        frames.append((at(6.0 + 3 * k), link("198.19.46.20", "198.19.45.5", packet)))
    dns_lookup(frames, rng, at(9.0), ("2001:db8:46::22", 40053), "2001:db8:45::53",
               "files.example.com", ("198.19.45.10", "2001:db8:45::10"), link=link)  # fmt: skip
    return frames


def pppoe_qinq_frames() -> list[Frame]:
    """PPPoE lines on an access trunk: S-VLAN 200 (802.1ad) over one C-VLAN (802.1Q) per line."""
    rng = random.Random(13)
    frames: list[Frame] = []
    bras = bytes.fromhex("0200000000b1")
    resolver, resolver6 = "198.19.110.53", "2001:db8:110::53"
    lines = [  # (MAC, C-VLAN, session id, IPv4 address, IPv6 address)
        (bytes.fromhex("020000006e01"), 1001, 0x0A01, "198.18.110.11", ""),
        (bytes.fromhex("020000006e02"), 1002, 0x0A02, "198.18.110.12", "2001:db8:110:2::12"),
    ]

    def pppoe(code: int, session: int, payload: bytes) -> bytes:
        return struct.pack(">BBHH", 0x11, code, session, len(payload)) + payload

    def pppoe_tags(*tags: tuple[int, bytes]) -> bytes:
        return b"".join(struct.pack(">HH", kind, len(value)) + value for kind, value in tags)

    def session_frame(line: int, upstream: bool, protocol: int, body: bytes) -> bytes:
        sub_mac, cvlan, session, _, _ = lines[line]
        src, dst = (sub_mac, bras) if upstream else (bras, sub_mac)
        payload = pppoe(0, session, struct.pack(">H", protocol) + body)
        return ether(src, dst, ETH_PPPOE_SESSION, payload, ((ETH_8021AD, 200), (ETH_8021Q, cvlan)))

    def line_link(line: int) -> Link:
        def link(src: str, dst: str, packet: bytes) -> bytes:
            upstream = src in lines[line][3:]
            return session_frame(line, upstream, ppp_protocol(packet), packet)

        return link

    for line, (sub_mac, cvlan, session, address, address6) in enumerate(lines):
        t0 = 0.5 * line
        tags = ((ETH_8021AD, 200), (ETH_8021Q, cvlan))
        uniq = (0x0103, struct.pack(">I", 0xC0DE0000 + line))
        service, ac_name = (0x0101, b""), (0x0102, b"bras1.example.net")
        discovery = [  # PADI (broadcast), PADO, PADR, PADS (the session id)
            (sub_mac, BROADCAST_MAC, 0x09, 0, pppoe_tags(service, uniq)),
            (bras, sub_mac, 0x07, 0, pppoe_tags(ac_name, service, uniq)),
            (sub_mac, bras, 0x19, 0, pppoe_tags(service, uniq)),
            (bras, sub_mac, 0x65, session, pppoe_tags(service, uniq)),
        ]
        for k, (src, dst, code, sid, body) in enumerate(discovery):
            frame = ether(src, dst, ETH_PPPOE_DISCOVERY, pppoe(code, sid, body), tags)
            frames.append((at(t0 + 0.003 * k), frame))
        magic = 0x7E000000 + line
        lcp = bytes.fromhex("010405d4") + struct.pack(">BBI", 5, 6, magic)
        for k, (upstream, code) in enumerate(((True, 1), (False, 2), (False, 1), (True, 2))):
            frame = session_frame(line, upstream, PPP_LCP, control_packet(code, 1, lcp))
            frames.append((at(t0 + 0.02 + 0.002 * k), frame))
        ncps = [(PPP_IPCP, struct.pack(">BB4s", 3, 6, ipb(address)))]
        if address6:
            ncps.append((PPP_IPV6CP, struct.pack(">BBQ", 1, 10, 0x6E020012)))
        for k, (protocol, options) in enumerate(ncps):
            for step, upstream in enumerate((True, False)):
                ncp = control_packet(1 + step, 1, options)
                frame = session_frame(line, upstream, protocol, ncp)
                frames.append((at(t0 + 0.04 + 0.01 * k + 0.002 * step), frame))
        echo = control_packet(9, 2, struct.pack(">I", 0x7F000000))  # the BRAS's keepalive
        frames.append((at(t0 + 20.0), session_frame(line, False, PPP_LCP, echo)))
        echo_reply = control_packet(10, 2, struct.pack(">I", magic))
        frames.append((at(t0 + 20.001), session_frame(line, True, PPP_LCP, echo_reply)))
    first, second = line_link(0), line_link(1)
    a, b, b6 = lines[0][3], lines[1][3], lines[1][4]
    dns_lookup(frames, rng, at(1.0), (a, 41001), resolver, "www.example.com",
               ("198.19.111.80", "2001:db8:111::80"), link=first)  # fmt: skip
    tc = TcpConn(frames, rng, (a, 41002), ("198.19.111.80", 443), 15 * NS_PER_MS, first)
    t = tc.exchange_tls(tc.handshake_tls(at(1.1)), [rng.randint(3000, 6000)])
    tc.close(t + 80 * NS_PER_MS, client_first=True)
    dns_lookup(frames, rng, at(2.0), (b6, 42001), resolver6, "cdn.example.net",
               ("198.19.111.81", "2001:db8:111::81"), link=second)  # fmt: skip
    server6 = ("2001:db8:111::81", 443)
    tc6 = TcpConn(frames, rng, (b6, 42002), server6, 12 * NS_PER_MS, second, V6_MSS_1492)
    t = tc6.exchange_tls(tc6.handshake_tls(at(2.1)), [rng.randint(3000, 6000)])
    tc6.close(t + 80 * NS_PER_MS, client_first=False)
    for k in range(3):  # NTP over IPv4 from the second line
        request = b"\x23" + bytes(39) + rng.randbytes(8)
        query = ip_packet(b, resolver, UDP, udp(123, 123, request))
        frames.append((at(4.0 + k), second(b, resolver, query)))
        reply = struct.pack(">BBbb", 0x24, 2, 6, -24) + rng.randbytes(44)
        answer = ip_packet(resolver, b, UDP, udp(123, 123, reply), ttl=61)
        frames.append((at(4.012 + k), second(resolver, b, answer)))
    padt = ether(lines[1][0], bras, ETH_PPPOE_DISCOVERY, pppoe(0xA7, lines[1][2], b""),
                 ((ETH_8021AD, 200), (ETH_8021Q, lines[1][1])))  # fmt: skip
    frames.append((at(22.0), padt))  # the second line hangs up
    return frames


def erspan_vxlan_frames() -> list[Frame]:
    """An ERSPAN II session (GRE) and a VXLAN underlay seen on one monitoring port."""
    rng = random.Random(14)
    switch, collector = "198.18.120.1", "198.18.120.100"  # ERSPAN source and destination
    vtep_a, vtep_b = "198.18.121.1", "198.18.121.2"
    behind_a = {ipb("198.19.131.10"), ipb("2001:db8:131::10")}
    mirror: list[Frame] = []  # frames of the mirrored port, as it sends them
    overlay: list[Frame] = []  # frames of the VMs, as their virtual NICs hand them over

    def host_frame(src: str, dst: str, packet: bytes) -> bytes:
        ethertype = ETH_IPV6 if packet[0] >> 4 == 6 else ETH_IPV4
        return ether(b"\x02\x01" + ipb(src)[-4:], b"\x02\x01" + ipb(dst)[-4:], ethertype, packet)

    def vm_frame(src: str, dst: str, packet: bytes) -> bytes:  # not padded to 60
        return host_frame(src, dst, packet)[: 14 + len(packet)]

    web = TcpConn(mirror, rng, ("198.19.130.10", 51000), ("198.19.130.20", 443), 3 * NS_PER_MS,
                  host_frame)  # fmt: skip
    t = web.exchange_tls(web.handshake_tls(at(0.1)), [rng.randint(3000, 6000)])
    web.close(t + 30 * NS_PER_MS, client_first=True)
    answers, where = ("198.19.130.20", "2001:db8:130::20"), ("198.19.130.10", 51001)
    name = "api.example.com"
    dns_lookup(mirror, rng, at(0.05), where, "198.19.130.53", name, answers, host_frame)
    for k in range(4):  # syslog from the mirrored server
        text = b"<134>Jan  5 09:00:0%d web1: GET /api/%d 200" % (k, rng.randint(1, 99))
        packet = ip_packet("198.19.130.20", "198.19.130.5", UDP, udp(514, 514, text))
        mirror.append((at(0.3 + 0.4 * k), host_frame("198.19.130.20", "198.19.130.5", packet)))
    db = TcpConn(overlay, rng, ("198.19.131.10", 52000), ("198.19.131.20", 5432), NS_PER_MS,
                 vm_frame)  # fmt: skip
    t = db.open(at(0.2))
    for _ in range(3):
        t = db.send(t + rng.randint(5, 40) * NS_PER_MS, True, rng.randbytes(rng.randint(80, 300)))
        t = db.send(t + db.gap(False), False, rng.randbytes(rng.randint(200, 3000)))
    db.close(t + 20 * NS_PER_MS, client_first=True)
    answers, where = ("198.19.131.20", "2001:db8:131::20"), ("2001:db8:131::10", 52001)
    name = "db.example.internal"
    dns_lookup(overlay, rng, at(0.15), where, "2001:db8:131::53", name, answers, vm_frame)

    frames: list[Frame] = []
    idents = {switch: 0, vtep_a: 0, vtep_b: 0}

    def outer(t: int, src: str, dst: str, proto: int, body: bytes) -> None:
        idents[src] += 1
        packet = ipv4(src, dst, proto, body, ident=idents[src], df=True)
        frames.append((t + 4 * NS_PER_US, ether(mac(src), mac(dst), ETH_IPV4, packet)))

    for sequence, (t, inner) in enumerate(in_time_order(mirror), 1):
        gre = struct.pack(">HHI", 0x1000, ETH_ERSPAN_II, sequence)  # S bit: sequence numbers
        erspan = struct.pack(">HHI", 1 << 12, 7, 3)  # version 1, VLAN 0, session 7, port 3
        outer(t, switch, collector, GRE, gre + erspan + inner)
    for t, inner in in_time_order(overlay):
        packet = inner[14:]  # the source port hashes the inner addresses and ports, as VTEPs do
        v4 = packet[0] >> 4 == 4
        src, flow = (packet[12:16], packet[12:24]) if v4 else (packet[8:24], packet[8:44])
        sport = 49152 + zlib.crc32(flow) % 16384
        vxlan = struct.pack(">II", 0x08000000, 5001 << 8)  # flags: VNI valid; VNI 5001
        vteps = (vtep_a, vtep_b) if src in behind_a else (vtep_b, vtep_a)
        outer(t, *vteps, UDP, bytes(udp(sport, VXLAN_PORT, vxlan + inner)))  # UDP checksum 0
    return frames


def mpls_pw_frames() -> list[Frame]:
    """A provider core link: L3VPN IPv4 and 6PE IPv6 under two labels, and an Ethernet
    pseudowire (RFC 4448, with the RFC 4385 control word) carrying a customer's VLAN."""
    rng = random.Random(15)
    pe1, pe2 = bytes.fromhex("02000000a001"), bytes.fromhex("02000000a002")
    sequence = {"pw": 0}

    def labels(*stack: int) -> bytes:  # label, traffic class 0, bottom bit on the last, TTL 63
        last = len(stack) - 1
        return b"".join(
            struct.pack(">I", v << 12 | (k == last) << 8 | 63) for k, v in enumerate(stack)
        )

    def routed(src: str, dst: str, packet: bytes) -> bytes:
        transport, vpn = (24001, 3001) if packet[0] >> 4 == 4 else (24002, 2)  # 2: IPv6 null
        src_mac, dst_mac = (
            (pe1, pe2) if src.startswith(("198.18.", "2001:db8:150:")) else (pe2, pe1)
        )
        return ether(src_mac, dst_mac, ETH_MPLS, labels(transport, vpn) + packet)

    def pseudowire(src: str, dst: str, packet: bytes) -> bytes:
        sequence["pw"] += 1
        control_word = struct.pack(">I", sequence["pw"] & 0xFFFF)  # first nibble 0, sequence
        customer = ether(b"\x02\x02" + ipb(src)[-4:], b"\x02\x02" + ipb(dst)[-4:], ETH_IPV4,
                         packet, ((ETH_8021Q, 42),))[: 18 + len(packet)]  # fmt: skip
        return ether(pe1, pe2, ETH_MPLS, labels(24003, 5001) + control_word + customer)

    frames: list[Frame] = []
    web = TcpConn(frames, rng, ("198.18.150.10", 53000), ("198.19.151.80", 443), 6 * NS_PER_MS,
                  routed)  # fmt: skip
    t = web.exchange_tls(web.handshake_tls(at(0.1)), [rng.randint(2000, 4000)])
    web.close(t + 20 * NS_PER_MS, client_first=True)
    web6 = TcpConn(frames, rng, ("2001:db8:150::10", 53001), ("2001:db8:151::80", 443),
                   6 * NS_PER_MS, routed, 1500 - 40 - 20 - 8)  # fmt: skip
    t = web6.exchange_tls(web6.handshake_tls(at(0.5)), [rng.randint(2000, 4000)])
    web6.close(t + 20 * NS_PER_MS, client_first=True)
    backup = TcpConn(frames, rng, ("198.18.152.5", 53002), ("198.18.152.6", 873), 2 * NS_PER_MS,
                     pseudowire, 1500 - 40 - 8 - 18)  # fmt: skip
    t = backup.open(at(1.0))
    for _ in range(3):
        t = backup.send(t + 5 * NS_PER_MS, True, rng.randbytes(rng.randint(800, 1400)))
        t = backup.send(t + backup.gap(False), False, rng.randbytes(40))
    backup.close(t + 10 * NS_PER_MS, client_first=True)
    sequence["pw"] += 1  # an ARP across the pseudowire: Ethernet, not IP
    arp = arp_frame(False, "198.18.152.6", "198.18.152.5", ((ETH_8021Q, 42),))
    control_word = struct.pack(">I", sequence["pw"])
    frames.append((at(1.9), ether(pe2, pe1, ETH_MPLS, labels(24004, 5002) + control_word + arp)))
    return frames


def icmp6_echo(request: bool, ident: int, seq: int, payload: bytes) -> bytes:
    """An ICMPv6 echo request or reply, checksum 0 (``ip_packet`` fills it in)."""
    return struct.pack(">BBHHH", 128 if request else 129, 0, 0, ident, seq) + payload


def http_response(rng: random.Random, size: int) -> bytes:
    """An HTTP/1.0 200 response of ``size`` bytes: headers, then an opaque body."""
    head = b"HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\n"
    head += b"Content-Length: %05d\r\n\r\n" % (size - len(head) - 25)
    return head + rng.randbytes(size - len(head))


def frame_relay_frames() -> list[Frame]:
    """A hub router's Frame Relay serial link: Q.933 LMI on DLCI 0 and one PVC per site, each
    in another encapsulation (RFC 2427 NLPID, padded NLPID, SNAP; Cisco's ethertype)."""
    rng = random.Random(16)
    frames: list[Frame] = []

    def q922(dlci: int, octets: int = 2) -> bytes:
        """A Q.922 address (A.3.2): DLCI high bits, C/R 0, then FECN/BECN/DE 0, EA on the last."""
        if octets == 2:
            return struct.pack(">BB", (dlci >> 4) << 2, (dlci & 0xF) << 4 | 1)
        return struct.pack(
            ">BBB", (dlci >> 10) << 2, (dlci >> 6 & 0xF) << 4, (dlci & 0x3F) << 2 | 1
        )

    def pvc(dlci: int, form: str, octets: int = 2) -> Link:
        def link(src: str, dst: str, packet: bytes) -> bytes:
            v4 = packet[0] >> 4 == 4
            if form == "cisco":
                return q922(dlci, octets) + struct.pack(">H", ETH_IPV4 if v4 else ETH_IPV6) + packet
            if form == "snap":  # RFC 2427 4.2: pad, NLPID 0x80, OUI 0, the ethertype as PID
                return (
                    q922(dlci) + b"\x03\x00\x80\x00\x00\x00" + struct.pack(">H", ETH_IPV4) + packet
                )
            pad = b"\x00" if form == "padded" else b""
            return q922(dlci) + b"\x03" + pad + (b"\xcc" if v4 else b"\x8e") + packet

        return link

    pvcs = {100: "nlpid", 200: "padded", 300: "snap", 400: "cisco"}

    def lmi(t: float, network: bool, full: bool, send: int, receive: int) -> None:
        """Q.933 Annex A: STATUS ENQUIRY (0x75) or STATUS (0x7D) with report type and link
        integrity verification IEs; a full STATUS lists every PVC as active."""
        body = struct.pack(
            ">BBBBBB", 0x08, 0x00, 0x7D if network else 0x75, 0x51, 1, 0 if full else 1
        )
        body += struct.pack(">BBBB", 0x53, 2, send, receive)
        if network and full:
            for dlci in pvcs:
                body += struct.pack(
                    ">BBBBB", 0x57, 3, dlci >> 4 & 0x3F, (dlci & 0xF) << 3 | 0x80, 0x82
                )
        frames.append((at(t), q922(0) + b"\x03" + body))

    lmi(0.0, False, True, 1, 0)
    lmi(0.006, True, True, 1, 1)
    hub, hub6 = "198.18.160.10", "2001:db8:160::10"
    web = TcpConn(frames, rng, (hub, 50200), ("198.19.161.20", 80), 24 * NS_PER_MS,
                  pvc(100, "nlpid"), 1500 - 40)  # fmt: skip
    t = web.send(web.open(at(0.2)) + 100 * NS_PER_US, True, b"GET /inventory HTTP/1.0\r\n\r\n")
    t = web.send(t + web.gap(False), False, http_response(rng, 3900))
    web.close(t + 20 * NS_PER_MS, client_first=False)
    dns_lookup(frames, rng, at(1.0), (hub6, 40160), "2001:db8:162::53", "files.example.com",
               ("198.19.161.20", "2001:db8:162::20"), link=pvc(200, "padded"))  # fmt: skip
    for seq in range(2):  # ICMPv6 echo to site C
        body = rng.randbytes(56)
        echo = ip_packet(hub6, "2001:db8:162::1", ICMPV6, icmp6_echo(True, 0x160, seq, body))
        frames.append((at(1.5 + seq), pvc(200, "padded")(hub6, "2001:db8:162::1", echo)))
        reply = ip_packet("2001:db8:162::1", hub6, ICMPV6, icmp6_echo(False, 0x160, seq, body))
        frames.append((at(1.531 + seq), pvc(200, "padded")("2001:db8:162::1", hub6, reply)))
    for seq in range(3):  # ICMP echo to site D over SNAP
        body = rng.randbytes(56)
        echo = ip_packet(hub, "198.19.163.1", ICMP, icmp_echo(True, 0x163, seq, body))
        frames.append((at(2.0 + 0.5 * seq), pvc(300, "snap")(hub, "198.19.163.1", echo)))
        reply = ip_packet("198.19.163.1", hub, ICMP, icmp_echo(False, 0x163, seq, body), ttl=254)
        frames.append((at(2.042 + 0.5 * seq), pvc(300, "snap")("198.19.163.1", hub, reply)))
    ssh = TcpConn(frames, rng, (hub, 50222), ("198.19.164.22", 22), 31 * NS_PER_MS,
                  pvc(400, "cisco"), 1500 - 40)  # fmt: skip
    t = ssh.open(at(2.2))
    for _ in range(2):
        t = ssh.send(t + rng.randint(200, 600) * NS_PER_MS, True, rng.randbytes(36))
        t = ssh.send(t + ssh.gap(False), False, rng.randbytes(36))
    ssh.close(t + 100 * NS_PER_MS, client_first=True)
    for k in range(2):  # syslog from site F, on a PVC with a 3-octet address (DLCI 0x83a7)
        text = b"<134>Jan  5 09:00:0%d rtr-f: %%LINK-3-UPDOWN Serial0/%d" % (3 + k, k)
        packet = ip_packet("198.19.165.1", hub, UDP, udp(514, 514, text), ttl=254)
        frames.append((at(3.0 + 0.8 * k), pvc(0x83A7, "cisco", 3)("198.19.165.1", hub, packet)))
    lmi(5.0, False, False, 2, 1)
    lmi(5.006, True, False, 2, 2)
    return frames


def l2_shims_frames() -> list[Frame]:
    """A monitoring port behind MACsec (integrity only, with and without SCI; one encrypted
    channel), an NSH service function chain and an Arista timestamping tap."""
    rng = random.Random(17)
    server, server6 = "198.18.170.10", "2001:db8:170::10"
    server_mac = mac(server)
    switch_a, switch_b = bytes.fromhex("02000000c001"), bytes.fromhex("02000000c002")
    sff, firewall = bytes.fromhex("02000000b001"), bytes.fromhex("02000000b002")
    seen: dict[str, list[Frame]] = {kind: [] for kind in ("macsec", "nsh", "nsh-eth", "arista")}

    def host_mac(addr: str) -> bytes:
        return server_mac if addr in (server, server6) else b"\x02\x03" + ipb(addr)[-4:]

    def plain(kind: str, vlan: int = 0) -> Link:
        """Unpadded Ethernet frames (an 802.1Q tag with ``vlan``) into ``seen[kind]``'s list:
        the shims go in front of the ethertype afterwards, in time order."""

        def link(src: str, dst: str, packet: bytes) -> bytes:
            src_mac, dst_mac = host_mac(src), host_mac(dst)
            if kind == "macsec":  # a point-to-point link between the server and its router
                outbound = src_mac == server_mac
                src_mac, dst_mac = (
                    (server_mac, ROUTER_MAC) if outbound else (ROUTER_MAC, server_mac)
                )
            tag = struct.pack(">HH", ETH_8021Q, vlan) if vlan else b""
            ethertype = ETH_IPV6 if packet[0] >> 4 == 6 else ETH_IPV4
            return dst_mac + src_mac + tag + struct.pack(">H", ethertype) + packet

        return link

    # MACsec: the server sends with an explicit SCI (SC bit), the router without (ES bit).
    backup = TcpConn(seen["macsec"], rng, (server, 51000), ("198.19.171.30", 873),
                     4 * NS_PER_MS, plain("macsec"))  # fmt: skip
    t = backup.send(backup.open(at(0.1)) + 200 * NS_PER_US, True, rng.randbytes(220))
    t = backup.send(t + backup.gap(False), False, rng.randbytes(2600))
    backup.close(t + 10 * NS_PER_MS, client_first=True)
    answers = ("198.19.171.25", "2001:db8:171::25")
    dns_lookup(seen["macsec"], rng, at(0.05), (server6, 41170), "2001:db8:171::53",
               "mail.example.net", answers, plain("macsec"))  # fmt: skip
    smtp = TcpConn(seen["macsec"], rng, (server6, 51001), ("2001:db8:171::25", 25),
                   5 * NS_PER_MS, plain("macsec"), 1500 - 40 - 20 - 32)  # fmt: skip
    t = smtp.send(smtp.open(at(0.4)) + 300 * NS_PER_US, True, rng.randbytes(640))
    t = smtp.send(t + smtp.gap(False), False, b"250 2.0.0 Ok: queued\r\n")
    smtp.close(t + 5 * NS_PER_MS, client_first=True)
    for k in range(3):  # syslog from the server
        text = b"<134>Jan  5 09:00:0%d srv1: backup step %d done" % (k, k + 1)
        packet = ip_packet(server, "198.19.171.5", UDP, udp(514, 514, text))
        seen["macsec"].append((at(0.2 + 0.5 * k), plain("macsec")(server, "198.19.171.5", packet)))
    # NSH (RFC 8300): the forwarder hands a web connection (IPv4 next) and a DNS lookup and a
    # ping (Ethernet next) to the firewall function.
    web = TcpConn(seen["nsh"], rng, ("198.19.180.10", 52000), ("198.19.181.80", 80),
                  9 * NS_PER_MS, plain("nsh"), 1500 - 40 - 24)  # fmt: skip
    t = web.send(web.open(at(0.3)) + 100 * NS_PER_US, True, b"GET /status HTTP/1.1\r\n\r\n")
    t = web.send(t + web.gap(False), False, http_response(rng, 2500))
    web.close(t + 10 * NS_PER_MS, client_first=False)
    answers = ("198.19.181.80", "2001:db8:181::80")
    dns_lookup(seen["nsh-eth"], rng, at(0.25), ("198.19.182.10", 42182), "198.19.182.53",
               "www.example.com", answers, plain("nsh-eth"))  # fmt: skip
    body = rng.randbytes(56)
    for k, (src, dst) in enumerate((("198.19.182.10", "198.19.181.80"),
                                    ("198.19.181.80", "198.19.182.10"))):  # fmt: skip
        echo = ip_packet(src, dst, ICMP, icmp_echo(k == 0, 0x182, 1, body), ttl=64 - k * 3)
        seen["nsh-eth"].append((at(0.9 + 0.011 * k), plain("nsh-eth")(src, dst, echo)))
    # Arista tap: 64-bit times on IPv4 (also behind VLAN 30), 48-bit times on IPv6.
    feed = TcpConn(seen["arista"], rng, ("198.18.190.10", 53000), ("198.19.191.40", 5001),
                   NS_PER_MS, plain("arista"))  # fmt: skip
    t = feed.open(at(0.5))
    for _ in range(2):
        t = feed.send(
            t + rng.randint(5, 30) * NS_PER_MS, False, rng.randbytes(rng.randint(200, 900))
        )
    feed.close(t + 5 * NS_PER_MS, client_first=True)
    answers = ("198.19.191.40", "2001:db8:191::40")
    dns_lookup(seen["arista"], rng, at(0.6), ("2001:db8:190::10", 43190), "2001:db8:191::53",
               "feed.example.com", answers, plain("arista"))  # fmt: skip
    ntp_client, ntp_server, vlan30 = "198.18.190.20", "198.19.191.123", plain("arista", 30)
    for k in range(2):  # NTP on VLAN 30
        request = b"\x23" + bytes(39) + rng.randbytes(8)
        query = ip_packet(ntp_client, ntp_server, UDP, udp(123, 123, request))
        seen["arista"].append((at(1.0 + 0.5 * k), vlan30(ntp_client, ntp_server, query)))
        reply = struct.pack(">BBbb", 0x24, 2, 6, -24) + rng.randbytes(44)
        answer = ip_packet(ntp_server, ntp_client, UDP, udp(123, 123, reply), ttl=62)
        seen["arista"].append((at(1.004 + 0.5 * k), vlan30(ntp_server, ntp_client, answer)))

    frames: list[Frame] = []
    packet_numbers: dict[bytes, int] = {}

    def secured(t: int, dst: bytes, src: bytes, tci: int, data: bytes) -> None:
        """An IEEE 802.1AE-2018 9.3 SecTAG (SL: the secure data's length below 48), ``data``
        (the ethertype and payload, or ciphertext), a 16-byte ICV; the SCI with the SC bit."""
        packet_numbers[src] = packet_numbers.get(src, 0) + 1
        short = len(data) if len(data) < 48 else 0
        sectag = struct.pack(">BBI", tci, short, packet_numbers[src])
        sectag += src + b"\x00\x01" if tci & 0x20 else b""
        frames.append((t, ether(src, dst, ETH_MACSEC, sectag + data + rng.randbytes(16))))

    for t, frame in in_time_order(seen["macsec"]):
        tci = 0x20 if frame[6:12] == server_mac else 0x40  # AN 0
        secured(t, frame[:6], frame[6:12], tci, frame[12:])
    for k in range(4):  # a confidentiality-protected channel between two switches: E and C set
        src, dst, tci = (switch_a, switch_b, 0x2D) if k % 2 == 0 else (switch_b, switch_a, 0x4D)
        secured(at(0.15 + 0.3 * k), dst, src, tci, rng.randbytes(rng.randint(60, 400)))
    for t, frame in in_time_order(seen["nsh"]):  # MD type 1: 16 bytes of fixed context
        path = 100 if frame[6:12] == host_mac("198.19.180.10") else 101
        nsh = struct.pack(">BBBBI", 0x0F, 0xC0 | 6, 1, 1, path << 8 | 255)
        nsh += struct.pack(">IIII", 0x170, path, 0, 0)
        frames.append((t, ether(sff, firewall, ETH_NSH, nsh + frame[14:])))
    for t, frame in in_time_order(seen["nsh-eth"]):  # MD type 2 without metadata
        nsh = struct.pack(">BBBBI", 0x0F, 0xC0 | 2, 2, 3, 200 << 8 | 255)
        frames.append((t, ether(sff, firewall, ETH_NSH, nsh + frame)))
    for t, frame in in_time_order(seen["arista"]):  # the tap stamps 3 µs before the capture
        cut = 16 if frame[12:14] == b"\x81\x00" else 12
        seconds, nanoseconds = divmod(t - 3 * NS_PER_US, NS_PER_S)
        wide = frame[cut : cut + 2] != struct.pack(">H", ETH_IPV6)
        header = struct.pack(">HHH", ETH_ARISTA, 1, 0x10 if wide else 0x20)
        time = struct.pack(">II", seconds, nanoseconds) if wide else struct.pack(
            ">HI", seconds & 0xFFFF, nanoseconds)  # fmt: skip
        header += time
        frames.append((t, (frame[:cut] + header + frame[cut:]).ljust(60, b"\0")))
    return frames


# ----------------------------------------------------------------- capture files


def write_pcap(
    path: Path, frames: list[Frame], *, nano: bool = False, big_endian: bool = False,
    linktype: int = LINKTYPE_ETHERNET,
) -> None:  # fmt: skip
    """Classic pcap (Ethernet frames unless told): µs or ns magic, little- or big-endian."""
    order, unit = (">" if big_endian else "<"), (1 if nano else NS_PER_US)
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = [struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, 262144, linktype)]
    for ts_ns, frame in frames:
        seconds, fraction = divmod(ts_ns, NS_PER_S)
        out.append(struct.pack(order + "IIII", seconds, fraction // unit, len(frame), len(frame)))
        out.append(frame)
    path.write_bytes(b"".join(out))


def _padded(data: bytes) -> bytes:
    return data.ljust(-(-len(data) // 4) * 4, b"\0")


def _block(block_type: int, body: bytes) -> bytes:
    length = 12 + len(_padded(body))
    return struct.pack("<II", block_type, length) + _padded(body) + struct.pack("<I", length)


def _options(options: list[tuple[int, bytes]]) -> bytes:
    encoded = [struct.pack("<HH", code, len(value)) + _padded(value) for code, value in options]
    return b"".join(encoded) + bytes(4)  # opt_endofopt


def write_pcapng(
    path: Path, interfaces: list[tuple[int, str, int]], packets: list[tuple[int, int, bytes]]
) -> None:
    """Little-endian pcapng: an SHB, one IDB per (linktype, name, if_tsresol exponent), EPBs."""
    shb = struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1) + _options([(4, b"make_samples.py")])
    blocks = [_block(0x0A0D0D0A, shb)]
    for linktype, name, exponent in interfaces:
        options = [(2, name.encode())] + ([(9, bytes([exponent]))] if exponent != 6 else [])
        blocks.append(_block(1, struct.pack("<HHI", linktype, 0, 262144) + _options(options)))
    for iface, ts_ns, frame in packets:
        units = ts_ns // 10 ** (9 - interfaces[iface][2])
        head = struct.pack("<IIIII", iface, units >> 32, units & 0xFFFFFFFF, len(frame), len(frame))
        blocks.append(_block(6, head + frame))
    path.write_bytes(b"".join(blocks))


def in_time_order(frames: list[Frame], unit_ns: int = NS_PER_US) -> list[Frame]:
    """Frames sorted by time (equal times keep their order), times cut to ``unit_ns``."""
    return [(ts - ts % unit_ns, frame) for ts, frame in sorted(frames, key=lambda f: f[0])]


def write_all(outdir: Path) -> list[Path]:
    outdir.mkdir(parents=True, exist_ok=True)
    web, web_ns = in_time_order(web_frames()), in_time_order(web_frames(), 1)
    write_pcap(outdir / "web.pcap", web)
    write_pcap(outdir / "web_ns.pcap", web_ns[:50], nano=True)
    write_pcap(outdir / "web_be.pcap", web[:50], big_endian=True)
    written = [outdir / name for name in ("web.pcap", "web_ns.pcap", "web_be.pcap")]
    makers: dict[str, Callable[[], list[Frame]]] = {
        "portscan.pcap": portscan_frames, "slowscan.pcap": slowscan_frames,
        "synflood.pcap": synflood_frames, "dnstunnel.pcap": dnstunnel_frames,
        "ipv6.pcap": ipv6_frames, "vlan.pcap": vlan_frames,
        "fragments.pcap": fragments_frames, "aliasing.pcap": aliasing_frames,
    }  # fmt: skip
    for name, make in makers.items():
        write_pcap(outdir / name, in_time_order(make()))
        written.append(outdir / name)
    encapsulated: dict[str, tuple[int, Callable[[], list[Frame]]]] = {
        "ppp.pcap": (LINKTYPE_PPP, ppp_frames), "chdlc.pcap": (LINKTYPE_C_HDLC, chdlc_frames),
        "pppoe_qinq.pcap": (LINKTYPE_ETHERNET, pppoe_qinq_frames),
        "erspan_vxlan.pcap": (LINKTYPE_ETHERNET, erspan_vxlan_frames),
        "mpls_pw.pcap": (LINKTYPE_ETHERNET, mpls_pw_frames),
        "frame_relay.pcap": (LINKTYPE_FRELAY, frame_relay_frames),
        "l2_shims.pcap": (LINKTYPE_ETHERNET, l2_shims_frames),
    }  # fmt: skip
    for name, (linktype, make) in encapsulated.items():
        write_pcap(outdir / name, in_time_order(make()), linktype=linktype)
        written.append(outdir / name)
    interfaces = [(LINKTYPE_ETHERNET, "eth0", 6), (LINKTYPE_LINUX_SLL, "wg0", 9)]
    write_pcapng(outdir / "two_interfaces.pcapng", interfaces, two_interface_packets())
    return [*written, outdir / "two_interfaces.pcapng"]


def main(argv: list[str]) -> None:
    outdir = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent
    for path in write_all(outdir):
        print(f"{path.name}: {path.stat().st_size} bytes")


if __name__ == "__main__":
    main(sys.argv)
