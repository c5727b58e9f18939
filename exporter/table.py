"""A readable flow table for the terminal (human-sized output, not a bulk format)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from datetime import UTC, datetime

from core.records import EndReason, RecordTable

TCP_FLAG_LETTERS = "FSRPAUEC"  # bit 0 (FIN) to bit 7 (CWR)
PROTO_NAMES = {1: "ICMP", 6: "TCP", 17: "UDP", 47: "GRE", 50: "ESP", 58: "ICMP6", 132: "SCTP"}
PORTLESS = {1, 58}


def address(version: int, hi: int, lo: int) -> str:
    if version == 4:
        return str(ipaddress.IPv4Address(lo & 0xFFFFFFFF))
    return str(ipaddress.IPv6Address((hi << 64) | lo))


def endpoint(version: int, hi: int, lo: int, port: int, proto: int) -> str:
    text = address(version, hi, lo)
    if version == 6:
        text = f"[{text}]"
    if proto in PORTLESS:
        return text
    return f"{text}:{port}"


def tcp_flags(flags: int) -> str:
    return "".join(letter for bit, letter in enumerate(TCP_FLAG_LETTERS) if flags >> bit & 1)


def table_lines(records: RecordTable) -> Iterator[str]:
    """Header then one line per record, in the order given."""
    yield (
        f"{'start (UTC)':<23} {'dur s':>8} {'proto':<5} {'source':<30} {'destination':<30} "
        f"{'icmp':>5} {'packets':>8} {'octets':>10} {'flags':<8} end"
    )
    for r in range(len(records)):
        version, proto = int(records.version[r]), int(records.proto[r])
        start = datetime.fromtimestamp(int(records.first_ns[r]) / 1e9, UTC)
        duration_s = (int(records.last_ns[r]) - int(records.first_ns[r])) / 1e9
        dport = int(records.dport[r])
        icmp = f"{dport >> 8}/{dport & 0xFF}" if proto in PORTLESS else ""
        src = endpoint(
            version, int(records.src_hi[r]), int(records.src_lo[r]), int(records.sport[r]), proto
        )
        dst = endpoint(version, int(records.dst_hi[r]), int(records.dst_lo[r]), dport, proto)
        yield (
            f"{start.strftime('%Y-%m-%d %H:%M:%S.%f')[:-3]:<23} {duration_s:>8.3f} "
            f"{PROTO_NAMES.get(proto, str(proto)):<5} {src:<30} {dst:<30} {icmp:>5} "
            f"{int(records.packets[r]):>8} {int(records.octets[r]):>10} "
            f"{tcp_flags(int(records.tcp_flags[r])):<8} {_reason_name(int(records.end_reason[r]))}"
        )


def _reason_name(code: int) -> str:
    """The end reason, or "-" where the wire format carries none (v5, v9)."""
    return EndReason(code).name.lower() if code else "-"
