"""BPF programs for the AF_PACKET back end: the user's filter, and the fanout steering program.

The user's filter is compiled by libpcap (ctypes on ``pcap_compile``) on a
handle activated on the capture interface, so libpcap knows the kernel strips
the outer VLAN tag and compiles ``vlan`` to the ancillary tag loads a socket
filter needs. Its accept value is the snap length: the kernel copies no more
of a frame into the ring.

The fanout program (``PACKET_FANOUT_CBPF``) picks a worker from the IP
addresses (and the IPv4 protocol) only. The kernel's own ``PACKET_FANOUT_HASH``
hashes ports when the flow dissector finds them, which it does not for IP
fragments, so one flow's fragments and unfragmented packets would land on two
workers. Addresses and protocol are in every fragment. See docs/design.md,
"Live capture: fanout workers".
"""

from __future__ import annotations

import ctypes
import ctypes.util
import struct
from dataclasses import dataclass, field

from core.errors import ConfigError, InputError

# Classic BPF opcodes (linux/filter.h, linux/bpf_common.h).
LD, LDX, ST, ALU, JMP, RET, MISC = 0x00, 0x01, 0x02, 0x04, 0x05, 0x06, 0x07
W, H, B = 0x00, 0x08, 0x10
IMM, ABS, IND, MEM = 0x00, 0x20, 0x40, 0x60
ADD, MUL, RSH, XOR = 0x00, 0x20, 0x70, 0xA0
JEQ = 0x10
K, X = 0x00, 0x08
RET_A = 0x10
TAX, TXA = 0x00, 0x80
SKF_AD_PROTOCOL = 0xFFFFF000  # SKF_AD_OFF + SKF_AD_PROTOCOL: the frame's ethertype, host order
SKF_NET_OFF = 0xFFF00000  # loads relative to the network header

ETH_P_IP, ETH_P_IPV6, ETH_P_8021Q, ETH_P_8021AD = 0x0800, 0x86DD, 0x8100, 0x88A8
HASH_PRIME = 0x01000193  # FNV-1's 32-bit prime: multiplies each word into the hash
INNER_TAGS = 2  # VLAN tags left in the frame after the kernel took the outer one


@dataclass(frozen=True, slots=True)
class Insn:
    code: int
    k: int = 0
    jt: str | int = 0  # a label, or 0: the next instruction
    jf: str | int = 0


@dataclass(slots=True)
class Assembler:
    """Classic BPF with forward jumps to labels, resolved when packed."""

    program: list[Insn | str] = field(default_factory=list)

    def op(self, code: int, k: int = 0) -> None:
        self.program.append(Insn(code, k & 0xFFFFFFFF))

    def jeq(self, k: int, jt: str | int, jf: str | int = 0) -> None:
        self.program.append(Insn(JMP | JEQ | K, k, jt, jf))

    def jump(self, label: str) -> None:
        self.program.append(Insn(JMP | K, 0, label, 0))  # BPF_JA: k is the offset

    def label(self, name: str) -> None:
        self.program.append(name)

    def pack(self) -> bytes:
        where: dict[str, int] = {}
        insns: list[Insn] = []
        for item in self.program:
            if isinstance(item, str):
                where[item] = len(insns)
            else:
                insns.append(item)
        out = bytearray()
        for at, insn in enumerate(insns):

            def offset(target: str | int, at: int = at) -> int:
                return target if isinstance(target, int) else where[target] - at - 1

            if insn.code == JMP | K:  # unconditional: the offset goes in k
                out += struct.pack("=HBBI", insn.code, 0, 0, offset(insn.jt))
            else:
                jt, jf = offset(insn.jt), offset(insn.jf)
                assert 0 <= jt < 256, "jump too far for classic BPF"
                assert 0 <= jf < 256, "jump too far for classic BPF"
                out += struct.pack("=HBBI", insn.code, jt, jf, insn.k)
        return bytes(out)


def accept_none() -> bytes:
    """Keeps every frame out of the ring: sockets hold it until the fanout group is whole."""
    return struct.pack("=HBBI", RET | K, 0, 0, 0)


def fanout_program() -> bytes:
    """Returns a hash of the IP addresses (IPv4: and protocol); the kernel takes it modulo N.

    The kernel has taken the outer VLAN tag off and set the network header
    past it; up to ``INNER_TAGS`` more tags are walked here. Anything else
    (not IP, or IP behind MPLS or PPPoE) goes to worker 0: it is one key's
    packets either way.
    """
    asm = Assembler()
    asm.op(LD | W | ABS, SKF_AD_PROTOCOL)
    asm.op(LDX | W | IMM, 0)  # X: bytes of inner tags before the IP header
    for depth in range(INNER_TAGS + 1):
        asm.label(f"type{depth}")
        asm.jeq(ETH_P_IP, "v4")
        asm.jeq(ETH_P_IPV6, "v6")
        if depth == INNER_TAGS:
            asm.jump("other")
            break
        asm.jeq(ETH_P_8021Q, f"tag{depth}")
        asm.jeq(ETH_P_8021AD, f"tag{depth}", "other")
        asm.label(f"tag{depth}")
        asm.op(LD | H | IND, SKF_NET_OFF + 2)  # the inner ethertype after this tag
        asm.op(ST, 1)
        asm.op(MISC | TXA)
        asm.op(ALU | ADD | K, 4)
        asm.op(MISC | TAX)
        asm.op(LD | W | MEM, 1)
    asm.label("v4")
    _hash_words(asm, [12, 16], last_byte=9)  # source, destination; protocol
    asm.label("v6")
    _hash_words(asm, list(range(8, 40, 4)))  # source and destination addresses
    asm.label("other")
    asm.op(RET | K, 0)
    return asm.pack()


def _hash_words(asm: Assembler, offsets: list[int], last_byte: int | None = None) -> None:
    """h = 0; for each word w: h = (h ^ w) * prime; then h ^= h >> 16; return h.

    X enters holding the inner tags' length; M[3] keeps it, M[0] holds h.
    """
    asm.op(MISC | TXA)
    asm.op(ST, 3)
    asm.op(LD | W | IMM, 0)
    asm.op(ST, 0)
    loads = [(LD | W | IND, at) for at in offsets]
    if last_byte is not None:
        loads.append((LD | B | IND, last_byte))
    for code, at in loads:
        asm.op(LDX | W | MEM, 3)
        asm.op(code, SKF_NET_OFF + at)
        asm.op(LDX | W | MEM, 0)
        asm.op(ALU | XOR | X)
        asm.op(ALU | MUL | K, HASH_PRIME)
        asm.op(ST, 0)
    asm.op(MISC | TAX)
    asm.op(ALU | RSH | K, 16)
    asm.op(ALU | XOR | X)
    asm.op(RET | RET_A)


class _BpfInsn(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte),
                ("k", ctypes.c_uint)]  # fmt: skip


class _BpfProgram(ctypes.Structure):
    _fields_ = [("bf_len", ctypes.c_uint), ("bf_insns", ctypes.POINTER(_BpfInsn))]


class SockFprog:
    """A ``struct sock_fprog`` for setsockopt, with the instructions it points to kept alive."""

    def __init__(self, insns: bytes) -> None:
        self._insns = ctypes.create_string_buffer(insns, len(insns))
        self.count = len(insns) // 8
        self.struct = struct.pack("HL", self.count, ctypes.addressof(self._insns))


def compile_filter(interface: str, expression: str, snaplen: int) -> bytes:
    """``expression`` as classic BPF for a socket on ``interface``, accepting ``snaplen`` bytes."""
    name = ctypes.util.find_library("pcap")
    if name is None:
        raise ConfigError("--filter needs libpcap (Debian: libpcap0.8)")
    lib = ctypes.CDLL(name)
    lib.pcap_create.restype = ctypes.c_void_p
    lib.pcap_create.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    lib.pcap_geterr.restype = ctypes.c_char_p
    lib.pcap_geterr.argtypes = [ctypes.c_void_p]
    for function in ("pcap_set_snaplen", "pcap_set_buffer_size", "pcap_set_immediate_mode"):
        getattr(lib, function).argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.pcap_activate.argtypes = [ctypes.c_void_p]
    lib.pcap_close.argtypes = [ctypes.c_void_p]
    lib.pcap_compile.argtypes = [ctypes.c_void_p, ctypes.POINTER(_BpfProgram), ctypes.c_char_p,
                                 ctypes.c_int, ctypes.c_uint]  # fmt: skip
    lib.pcap_freecode.argtypes = [ctypes.POINTER(_BpfProgram)]
    errbuf = ctypes.create_string_buffer(256)
    handle = lib.pcap_create(interface.encode(), errbuf)
    if not handle:
        raise InputError(f"{interface}: cannot compile the filter: {errbuf.value.decode()}")
    try:
        lib.pcap_set_snaplen(handle, snaplen)
        lib.pcap_set_buffer_size(handle, 1 << 16)  # opened only to compile: keep it small
        lib.pcap_set_immediate_mode(handle, 1)
        if lib.pcap_activate(handle) < 0:
            problem = lib.pcap_geterr(handle).decode()
            raise InputError(f"{interface}: cannot compile the filter: {problem}")
        program = _BpfProgram()
        if lib.pcap_compile(handle, ctypes.byref(program), expression.encode(), 1, 0) != 0:
            problem = lib.pcap_geterr(handle).decode()
            raise ConfigError(f"--filter {expression!r}: {problem}")
        try:
            return ctypes.string_at(program.bf_insns, program.bf_len * 8)
        finally:
            lib.pcap_freecode(ctypes.byref(program))
    finally:
        lib.pcap_close(handle)
