"""The fanout steering program, run by a small classic-BPF interpreter of the kernel's semantics.

What matters: every packet of one flow key gets the same hash (fragments
included, tagged or not), and different host pairs spread over workers. The
live test (tests/test_live_workers.py) runs it in the kernel itself.
"""

from __future__ import annotations

import struct

import pytest

from probe.live import bpf
from tests import frames as f


def run_filter(program: bytes, protocol: int, network: bytes) -> int:
    """Classic BPF over an skb whose network header (SKF_NET_OFF) starts ``network``."""
    insns = [struct.unpack_from("=HBBI", program, at) for at in range(0, len(program), 8)]
    a = x = 0
    memory = [0] * 16
    pc = 0
    while True:
        code, jt, jf, k = insns[pc]
        pc += 1
        cls = code & 0x07
        if cls in (bpf.LD, bpf.LDX):
            mode, size = code & 0xE0, code & 0x18
            if mode == bpf.IMM:
                value = k
            elif mode == bpf.MEM:
                value = memory[k]
            elif k == bpf.SKF_AD_PROTOCOL and mode == bpf.ABS:
                value = protocol
            else:
                offset = (k - bpf.SKF_NET_OFF) + (x if mode == bpf.IND else 0)
                width = {bpf.W: 4, bpf.H: 2, bpf.B: 1}[size]
                if offset + width > len(network):
                    return 0  # the kernel ends the program: no match, worker 0
                value = int.from_bytes(network[offset : offset + width], "big")
            if cls == bpf.LD:
                a = value
            else:
                x = value
        elif cls == bpf.ST:
            memory[k] = a
        elif cls == bpf.ALU:
            operand = x if code & bpf.X else k
            op = code & 0xF0
            if op == bpf.ADD:
                a += operand
            elif op == bpf.MUL:
                a *= operand
            elif op == bpf.RSH:
                a >>= operand
            else:
                assert op == bpf.XOR, f"opcode {code:#x} is not used by the program"
                a ^= operand
            a &= 0xFFFFFFFF
        elif cls == bpf.JMP:
            if code & 0xF0 == 0:  # JA
                pc += k
            else:
                pc += jt if a == k else jf
        elif cls == bpf.RET:
            return a if code & bpf.RET_A else k
        elif cls == bpf.MISC:
            if code & 0xF8 == bpf.TXA:
                a = x
            else:
                x = a


PROGRAM = bpf.fanout_program()


def steer(l3: bytes, inner_tags: int = 0) -> int:
    """The hash for ``l3`` behind ``inner_tags`` VLAN tags the kernel left in the frame."""
    protocol = 0x0800 if l3[0] >> 4 == 4 else 0x86DD
    network = l3
    for _ in range(inner_tags):
        network = struct.pack(">HH", 20, protocol) + network
        protocol = 0x8100
    return run_filter(PROGRAM, protocol, network)


def test_every_packet_of_a_key_gets_one_hash_fragments_and_tags_included() -> None:
    raw = bytes(f.udp(4000, 53, b"x" * 600))
    src, dst = "198.18.0.1", "198.19.0.1"
    whole = f.ipv4(f.udp(4000, 53, b"y"), src=src, dst=dst)
    first = f.ipv4(raw[:512], proto=f.UDP, src=src, dst=dst, more_fragments=True)
    later = f.ipv4(raw[512:], proto=f.UDP, src=src, dst=dst, frag_units=64)
    hashes = {steer(whole), steer(first), steer(later), steer(whole, 1), steer(later, 2)}
    assert len(hashes) == 1


def test_ipv6_fragments_and_extension_headers_hash_as_the_whole_packet() -> None:
    src, dst = "2001:db8::1", "2001:db8:1::1"
    six = bytes(f.udp(5000, 443, b"v" * 40))
    whole = f.ipv6(f.udp(5000, 443, b"v" * 40), src=src, dst=dst)
    first = f.ipv6(six[:16], proto=f.UDP, src=src, dst=dst,
                   ext=[f.hop_by_hop(), f.fragment(0, more=True)])  # fmt: skip
    later = f.ipv6(six[16:], proto=f.UDP, src=src, dst=dst, ext=[f.fragment(2, more=False)])
    assert len({steer(whole), steer(first), steer(later), steer(whole, 2)}) == 1


def test_host_pairs_spread_over_workers() -> None:
    for workers in (2, 3, 4):
        shares = [0] * workers
        for host in range(400):
            l3 = f.ipv4(f.udp(), src=f"198.18.{host // 200}.{host % 200 + 1}", dst="198.19.0.1")
            shares[steer(l3) % workers] += 1
        assert min(shares) > 400 / workers * 0.7, shares


@pytest.mark.parametrize("protocol", [0x0806, 0x8847, 0x8864])
def test_what_is_not_plain_ip_goes_to_worker_0(protocol: int) -> None:
    assert run_filter(PROGRAM, protocol, bytes(64)) == 0


def test_ipv4_protocol_is_part_of_the_hash_ipv6_next_header_is_not() -> None:
    udp = f.ipv4(f.udp(), src="198.18.0.1", dst="198.19.0.1")
    tcp = f.ipv4(f.tcp(), src="198.18.0.1", dst="198.19.0.1")
    assert steer(udp) != steer(tcp)
