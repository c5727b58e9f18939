"""Capture readers: every frame exact to the byte and the ns, whatever the cuts; damage at its offset."""

from __future__ import annotations

import functools
import gzip
import io
import re
import struct
from pathlib import Path

import pytest

import probe.sources.capture as sources
from cache.config import CacheConfig
from core.errors import InputError
from core.packets import FrameBatch
from core.records import RecordTable
from probe.meter.offline import meter_files
from probe.sources.capture import Capture
from probe.sources.chunked import DEFAULT_CHUNK_BYTES, ChunkedInput
from probe.sources.mapped import RELEASE_BYTES, MappedInput
from probe.sources.prefetch import PrefetchReader
from probe.sources.readers import DEFAULT_BATCH_FRAMES
from tests.captures import (
    EPB,
    ETHERNET,
    IDB,
    ISB,
    LINUX_SLL,
    NRB,
    NS_PER_S,
    OPB,
    RAW,
    SHB,
    SPB,
    T0_NS,
    USER0,
    Frame,
    GzipEnding,
    Pcapng,
    ethernet,
    gzip_flushed,
    gzip_members,
    ipv4_udp,
    pcap_file,
    pcap_header,
    pcap_record,
    pcap_record_starts,
    traffic,
    udp_frames,
)

UNKNOWN_LINKTYPE = 0xFFFF  # frames of link types spanflow cannot decode carry this code
T0_S = T0_NS // NS_PER_S
MAX_CAPLEN = 262_144
MAX_BLOCK = 16 << 20
VARIANTS = [(False, False), (False, True), (True, False), (True, True)]
VARIANT_IDS = ["us-le", "us-be", "ns-le", "ns-be"]


def as_read(frame: Frame) -> Frame:
    """The frame as a reader reports it (wire length filled in)."""
    return Frame(frame.data, frame.ts_ns, frame.wire_length, frame.linktype, frame.ifindex)


def frames_of(batch: FrameBatch) -> list[Frame]:
    """Copies of the frames of one batch (its buffer is reused by the next read)."""
    return [
        Frame(bytes(batch.buf[o : o + c]), int(t), int(w), int(lt), int(ifx))
        for o, c, w, t, lt, ifx in zip(
            batch.offset.tolist(), batch.caplen.tolist(), batch.wirelen.tolist(),
            batch.ts_ns.tolist(), batch.linktype.tolist(), batch.ifindex.tolist(), strict=True,
        )
    ]  # fmt: skip


def read(path: str | Path, batch_frames: int = DEFAULT_BATCH_FRAMES) -> tuple[list[Frame], str]:
    """Every frame the reader yields, then the damage message ("" when the input ended cleanly)."""
    capture = Capture(str(path), batch_frames)
    got: list[Frame] = []
    try:
        for batch in capture.reader.batches():
            assert 1 <= len(batch) <= batch_frames
            got.extend(frames_of(batch))
    except InputError as exc:
        return got, str(exc)
    finally:
        capture.close()
    return got, ""


def write(tmp_path: Path, data: bytes, name: str = "in.pcap") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def small_buffers(monkeypatch: pytest.MonkeyPatch, chunk_bytes: int, read_bytes: int) -> None:
    """Read in steps (files not mapped), the buffer starting at ``chunk_bytes``; every read of a
    stream (gzip, stdin) returns at most ``read_bytes``."""
    monkeypatch.setattr(
        sources, "ChunkedInput", functools.partial(ChunkedInput, chunk_bytes=chunk_bytes)
    )
    monkeypatch.setattr(
        sources, "PrefetchReader", functools.partial(PrefetchReader, chunk_bytes=read_bytes)
    )


@pytest.fixture(
    params=[
        (1, 16, 1),
        (2, 24, 5),
        (3, 40, 7),
        (DEFAULT_BATCH_FRAMES, 64, 4096),
        (3, None, None),
        (3, "mapped", None),
        (DEFAULT_BATCH_FRAMES, "mapped", None),
        (DEFAULT_BATCH_FRAMES, None, None),
    ],
    ids=["b1-c16-r1", "b2-c24-r5", "b3-c40-r7", "c64-r4096", "b3", "mapped-b3", "mapped",
         "defaults"],
)  # fmt: skip
def cuts(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    """Batch size to read with, after shrinking the chunk and read sizes as the parameter says
    ("mapped": regular files mapped whole, as slices are; no sizes: the defaults)."""
    batch_frames, chunk_bytes, read_bytes = request.param
    if chunk_bytes == "mapped":
        monkeypatch.setattr(sources, "MAP_FILES", True)
    elif chunk_bytes is not None:
        small_buffers(monkeypatch, chunk_bytes, read_bytes)
    return int(batch_frames)


def mixed_frames() -> list[Frame]:
    """UDP frames of odd and even lengths, two of them cut short by a snap length."""
    frames = udp_frames(7)
    frames[2] = Frame(frames[2].data[:30], frames[2].ts_ns, 1514)
    frames[5] = Frame(frames[5].data[:14], frames[5].ts_ns, 60)
    return frames


class TestPcap:
    @pytest.mark.parametrize(("nanos", "big_endian"), VARIANTS, ids=VARIANT_IDS)
    def test_every_variant_gives_the_frames_written(
        self, tmp_path: Path, cuts: int, nanos: bool, big_endian: bool
    ) -> None:
        """µs and ns magic in both byte orders give the same bytes and lengths; µs times are µs * 1000."""
        frames = mixed_frames()
        path = write(tmp_path, pcap_file(frames, nanos=nanos, big_endian=big_endian))
        expected = [
            Frame(f.data, f.ts_ns if nanos else f.ts_ns - f.ts_ns % 1000, f.wire_length, ETHERNET)
            for f in frames
        ]
        assert read(path, cuts) == (expected, "")

    def test_nanosecond_times_are_exact(self, tmp_path: Path) -> None:
        """A ns file keeps the last digit of every time; a µs file drops the sub-µs part."""
        frames = [
            Frame(f.data, T0_NS + 999_999_999 - i, ifindex=0) for i, f in enumerate(udp_frames(2))
        ]
        ns_read, _ = read(write(tmp_path, pcap_file(frames, nanos=True), "ns.pcap"))
        us_read, _ = read(write(tmp_path, pcap_file(frames, nanos=False), "us.pcap"))
        assert [f.ts_ns for f in ns_read] == [T0_NS + 999_999_999, T0_NS + 999_999_998]
        assert [f.ts_ns for f in us_read] == [T0_NS + 999_999_000, T0_NS + 999_999_000]

    def test_header_only_file_has_no_frames(self, tmp_path: Path) -> None:
        """A pcap with a global header and no record is a valid, empty capture."""
        assert read(write(tmp_path, pcap_header())) == ([], "")

    def test_raw_ip_link_type(self, tmp_path: Path) -> None:
        """Frames carry the file's link type (LINKTYPE_RAW 101 here)."""
        ip = ipv4_udp("198.51.100.1", "198.51.100.2", 1, 2, b"x")
        path = write(tmp_path, pcap_file([Frame(ip, T0_NS)], link_field=RAW))
        assert read(path) == ([Frame(ip, T0_NS, len(ip), RAW)], "")

    def test_fcs_bits_of_the_link_field_are_ignored(self, tmp_path: Path) -> None:
        """The upper bits of the link-type field (FCS length, F flag) do not change the link type."""
        frame = udp_frames(1)[0]
        path = write(tmp_path, pcap_file([frame], link_field=0x44000000 | ETHERNET))
        assert read(path) == ([as_read(frame)], "")

    @pytest.mark.parametrize(("chunk_bytes", "read_bytes"), [(64, 4096), (1 << 20, 1 << 20)])
    def test_record_of_the_largest_caplen_is_read(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk_bytes: int, read_bytes: int
    ) -> None:
        """A 262144-byte record (libpcap's MAXIMUM_SNAPLEN) is read whole, growing the buffer."""
        small_buffers(monkeypatch, chunk_bytes, read_bytes)
        big = Frame(bytes(range(256)) * (MAX_CAPLEN // 256), T0_NS + 1000)
        frames = [udp_frames(1)[0], big, udp_frames(1, T0_NS + 2000)[0]]
        path = write(tmp_path, pcap_file(frames, nanos=True))
        got, damage = read(path)
        assert damage == ""
        assert got == [as_read(f) for f in frames]


def two_section_pcapng(first_big_endian: bool) -> tuple[bytes, list[Frame]]:
    """Two sections of opposite byte order, five interfaces, every packet block kind, and noise.

    Interface timestamps (if_tsresol / if_tsoffset): section 1 iface 0 µs
    (default), iface 1 ns, iface 2 ms + 3600 s, iface 3 2^-10 s; section 2 iface 0
    ns - 7200 s.
    """
    eth = [f.data for f in udp_frames(6)]
    ip = ipv4_udp("203.0.113.1", "203.0.113.2", 7, 9, b"raw ip")
    sll = struct.pack(">HHH8sH", 0, 1, 6, b"\x02\0\0\0\0\x01\0\0", 0x0800) + ip
    w = Pcapng()
    w.section(first_big_endian)
    w.interface(ETHERNET, 65535)  # if_tsresol absent: 10^-6
    w.interface(RAW, 0, tsresol=9)
    w.interface(USER0, 65535, tsresol=3, tsoffset_s=3600)
    w.block(NRB, struct.pack(w.order + "HH", 0, 0))  # name resolution: skipped
    w.interface(ETHERNET, 65535, tsresol=0x80 | 10)
    w.enhanced(0, T0_S * 10**6 + 123_456, eth[0])
    w.enhanced(1, T0_NS + 987_654_321, ip, wirelen=1000)
    w.block(0x00000BAD, b"custom, not copyable")  # custom block: skipped
    w.enhanced(2, T0_S * 10**3 + 5, b"\x01\x02\x03")
    w.obsolete(1, T0_NS + 987_654_999, eth[1])
    w.simple(eth[2])
    w.enhanced(3, T0_S * 1024 + 777, eth[3])
    w.block(ISB, struct.pack(w.order + "III", 0, 0, 0))  # interface statistics: skipped
    w.block(0x40000BAD, b"another custom block")
    w.section(not first_big_endian)
    w.interface(LINUX_SLL, 0, tsresol=9, tsoffset_s=-7200)
    w.enhanced(0, T0_NS + 42, sll)
    w.simple(eth[4])
    w.obsolete(0, T0_NS + 43, eth[5], wirelen=2000)
    expected = [
        Frame(eth[0], T0_NS + 123_456_000, len(eth[0]), ETHERNET, 1),
        Frame(ip, T0_NS + 987_654_321, 1000, RAW, 2),
        Frame(b"\x01\x02\x03", T0_NS + 5_000_000 + 3600 * NS_PER_S, 3, UNKNOWN_LINKTYPE, 3),
        Frame(eth[1], T0_NS + 987_654_999, len(eth[1]), RAW, 2),
        # simple packet block: the previous packet's time, interface 0
        Frame(eth[2], T0_NS + 987_654_999, len(eth[2]), ETHERNET, 1),
        # 777 / 1024 s = 758789062.5 ns, truncated
        Frame(eth[3], T0_NS + 758_789_062, len(eth[3]), ETHERNET, 4),
        Frame(sll, T0_NS + 42 - 7200 * NS_PER_S, len(sll), LINUX_SLL, 1),
        Frame(eth[4], T0_NS + 42 - 7200 * NS_PER_S, len(eth[4]), LINUX_SLL, 1),
        Frame(eth[5], T0_NS + 43 - 7200 * NS_PER_S, 2000, LINUX_SLL, 1),
    ]
    return w.data(), expected


class TestPcapng:
    @pytest.mark.parametrize("first_big_endian", [False, True], ids=["le-then-be", "be-then-le"])
    def test_sections_interfaces_and_block_kinds(
        self, tmp_path: Path, cuts: int, first_big_endian: bool
    ) -> None:
        """Per-interface link type, ifindex and time resolution/offset; unknown blocks skipped."""
        data, expected = two_section_pcapng(first_big_endian)
        assert read(write(tmp_path, data, "in.pcapng"), cuts) == (expected, "")

    @pytest.mark.parametrize(
        ("tsresol", "raw", "expected_ns"),
        [
            (None, T0_S * 10**6 + 1, T0_NS + 1_000),
            (6, T0_S * 10**6 + 999_999, T0_NS + 999_999_000),
            (9, T0_NS + 1, T0_NS + 1),
            (3, T0_S * 10**3 + 999, T0_NS + 999_000_000),
            (0, T0_S, T0_NS),
            (0x80 | 10, T0_S * 1024 + 1, T0_NS + 976_562),  # 10^9 / 1024 = 976562.5
            (0x80 | 20, T0_S * 2**20 + 3, T0_NS + 2_861),  # 3 * 10^9 / 2^20 = 2861.02...
        ],
        ids=["default", "us", "ns", "ms", "s", "2^-10", "2^-20"],
    )
    def test_timestamp_resolutions(
        self, tmp_path: Path, tsresol: int | None, raw: int, expected_ns: int
    ) -> None:
        """if_tsresol 10^-n and 2^-n (top bit set) convert to ns, truncating what ns cannot hold."""
        frame = udp_frames(1)[0]
        w = Pcapng().section().interface(ETHERNET, 65535, tsresol=tsresol)
        w.enhanced(0, raw, frame.data)
        got, damage = read(write(tmp_path, w.data(), "in.pcapng"))
        assert damage == ""
        assert [f.ts_ns for f in got] == [expected_ns]

    def test_simple_packet_block_lengths(self, tmp_path: Path) -> None:
        """An SPB's caplen is the least of its original length, its block room and iface 0's snaplen."""
        data = bytes(range(100))
        w = Pcapng().section().interface(ETHERNET, 48).interface(RAW, 0)
        w.enhanced(1, T0_S * 10**6 + 5, data[:20])
        w.simple(data[:60], wirelen=100)  # snaplen limits: 48
        w.simple(data[:40], wirelen=40)  # original length limits: 40
        w.simple(data[:44], wirelen=1000)  # block room limits: 44
        w.simple(data[:42], wirelen=1000)  # room is the padded 44 bytes: 42 + 2 padding zeros
        w.section().interface(ETHERNET, 0)  # snaplen 0: no limit
        w.simple(data, wirelen=100)
        ts = T0_NS + 5_000
        assert read(write(tmp_path, w.data(), "in.pcapng")) == (
            [
                Frame(data[:20], ts, 20, RAW, 2),
                Frame(data[:48], ts, 100, ETHERNET, 1),
                Frame(data[:40], ts, 40, ETHERNET, 1),
                Frame(data[:44], ts, 1000, ETHERNET, 1),
                Frame(data[:42] + b"\0\0", ts, 1000, ETHERNET, 1),
                Frame(data, ts, 100, ETHERNET, 1),
            ],
            "",
        )

    def test_simple_packet_block_takes_time_across_batches(self, tmp_path: Path) -> None:
        """An SPB alone in its batch still takes the time of the packet in the batch before."""
        w = Pcapng().section().interface(ETHERNET, 0, tsresol=9)
        w.enhanced(0, T0_NS + 11, b"a" * 20).simple(b"b" * 20).simple(b"c" * 20)
        w.enhanced(0, T0_NS + 5, b"d" * 20).simple(b"e" * 20)
        got, damage = read(write(tmp_path, w.data(), "in.pcapng"), batch_frames=1)
        assert damage == ""
        assert [f.ts_ns - T0_NS for f in got] == [11, 11, 11, 5, 5]


def gzip_variants(data: bytes) -> list[bytes]:
    return [
        gzip.compress(data, mtime=0),
        gzip_members(data, len(data) // 3),
        gzip_flushed([data[:50], data[50:51], data[51:]]),
    ]


class TestCompressedAndStdin:
    @pytest.mark.parametrize("variant", [0, 1, 2], ids=["plain", "two-members", "flushed"])
    def test_gzip_pcap_and_pcapng(self, tmp_path: Path, variant: int) -> None:
        """gzip-compressed pcap and pcapng read as the uncompressed files do."""
        frames = mixed_frames()
        pcap = pcap_file(frames, nanos=True, big_endian=True)
        path = write(tmp_path, gzip_variants(pcap)[variant], "in.pcap.gz")
        assert read(path) == ([as_read(f) for f in frames], "")
        pcapng, expected = two_section_pcapng(False)
        path = write(tmp_path, gzip_variants(pcapng)[variant], "in.pcapng.gz")
        assert read(path, 2) == (expected, "")

    @pytest.mark.parametrize("compress", [False, True], ids=["pcap", "gzip-pcapng"])
    def test_stdin(self, monkeypatch: pytest.MonkeyPatch, compress: bool) -> None:
        """ "-" reads standard input's buffer, names it <stdin>, and leaves it open."""
        frames = mixed_frames()
        data, expected = (
            pcap_file(frames),
            [Frame(f.data, f.ts_ns - f.ts_ns % 1000, f.wire_length) for f in frames],
        )
        if compress:
            data, expected = two_section_pcapng(True)
            data = gzip.compress(data)
        buffer = io.BufferedReader(io.BytesIO(data))
        monkeypatch.setattr("sys.stdin", io.TextIOWrapper(buffer))
        assert read("-") == (expected, "")
        assert not buffer.closed

    def test_stdin_damage_is_named_stdin(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Damage on standard input is reported as <stdin> with its byte offset."""
        data = pcap_file(udp_frames(2))[:-1]
        monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BufferedReader(io.BytesIO(data))))
        got, damage = read("-")
        assert len(got) == 1
        start = pcap_record_starts(udp_frames(2))[1]
        assert damage == f"<stdin>: truncated last record (59 of 60 bytes) at byte offset {start}"


def open_error(path: Path) -> str:
    with pytest.raises(InputError) as info:
        Capture(str(path))
    return str(info.value)


class TestDamage:
    @pytest.mark.parametrize(
        ("nanos", "big_endian"), [(False, False), (True, True)], ids=["us-le", "ns-be"]
    )
    def test_pcap_truncated_at_every_byte(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, nanos: bool, big_endian: bool
    ) -> None:
        """Cut anywhere, a pcap yields its complete records, then names the partial one's offset."""
        small_buffers(monkeypatch, 64, 4096)
        frames = udp_frames(5)
        data = pcap_file(frames, nanos=nanos, big_endian=big_endian)
        starts = pcap_record_starts(frames)
        assert starts[-1] == len(data)
        expected = [
            Frame(f.data, f.ts_ns if nanos else f.ts_ns - f.ts_ns % 1000, f.wire_length)
            for f in frames
        ]
        for cut in range(len(data) + 1):
            path = write(tmp_path, data[:cut], f"cut{cut}.pcap")
            if cut < 24:
                message = open_error(path)
                assert message.startswith(f"{path}: ")
                if cut == 0:
                    assert message == f"{path}: empty file, not a capture"
                elif cut >= 4:
                    assert message == f"{path}: truncated pcap file header"
                continue
            got, damage = read(path, batch_frames=2)
            complete = sum(end <= cut for end in starts[1:])
            assert got == expected[:complete], cut
            start = starts[complete]
            if cut == start:
                assert damage == ""
                continue
            have = cut - start
            needed = 16 if have < 16 else 16 + len(frames[complete].data)
            assert damage == (
                f"{path}: truncated last record ({have} of {needed} bytes) at byte offset {start}"
            ), cut

    @pytest.mark.parametrize("small", [True, False], ids=["small-buffers", "default-buffers"])
    def test_pcapng_truncated_at_every_byte(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, small: bool
    ) -> None:
        """Cut anywhere, a pcapng yields its complete packet blocks, then names the partial block's offset."""
        if small:
            small_buffers(monkeypatch, 64, 4096)
        data, expected = two_section_pcapng(False)
        starts = _block_starts(data)
        packet_ends = _packet_block_ends(data)
        assert len(packet_ends) == len(expected)
        for cut in range(4, len(data) + 1):
            path = write(tmp_path, data[:cut], f"cut{cut}.pcapng")
            got, damage = read(path, batch_frames=3)
            complete = sum(end <= cut for end in packet_ends)
            assert got == expected[:complete], cut
            if cut in starts or cut == len(data):
                assert damage == "", cut
                continue
            start = max(s for s in starts if s < cut)
            pattern = rf"{re.escape(str(path))}: truncated last block( \(\d+ of \d+ bytes\))? at byte offset {start}"
            assert re.fullmatch(pattern, damage), (cut, damage)

    def test_pcap_record_longer_than_any_snaplen(self, tmp_path: Path) -> None:
        """A record claiming caplen 262145 stops the file there, after the records before it."""
        frames = udp_frames(3)
        bad = pcap_record(Frame(b"x" * 64, T0_NS), caplen=MAX_CAPLEN + 1)
        data = pcap_file(frames) + bad + pcap_record(frames[0])
        got, damage = read(write(tmp_path, data), batch_frames=2)
        assert len(got) == 3
        offset = pcap_record_starts(frames)[-1]
        assert (
            damage
            == f"{tmp_path / 'in.pcap'}: impossible record length 262145 at byte offset {offset}"
        )

    @pytest.mark.parametrize(
        "block_len",
        [34, 8, 0, MAX_BLOCK + 4],
        ids=["not-4-aligned", "below-12", "zero", "over-16MiB"],
    )
    def test_pcapng_packet_block_of_impossible_length(self, tmp_path: Path, block_len: int) -> None:
        """A packet block whose length is not a multiple of 4, under 12 or over 16 MiB is damage."""
        w = Pcapng().section().interface(ETHERNET, 0)
        frames = udp_frames(2)
        for f in frames:
            w.enhanced(0, 1, f.data)
        offset = len(w.data())
        w.block(EPB, bytes(24), total=block_len)
        w.enhanced(0, 2, frames[0].data)
        got, damage = read(write(tmp_path, w.data(), "in.pcapng"))
        assert [f.data for f in got] == [f.data for f in frames]
        assert damage == f"{tmp_path / 'in.pcapng'}: damaged pcapng block at byte offset {offset}"

    @pytest.mark.parametrize("block_type", [IDB, SHB], ids=["idb", "shb"])
    @pytest.mark.parametrize(
        "block_len", [34, 8, MAX_BLOCK + 4], ids=["not-4-aligned", "below-12", "over-16MiB"]
    )
    def test_pcapng_control_block_of_impossible_length(
        self, tmp_path: Path, block_type: int, block_len: int
    ) -> None:
        """A section header or interface block whose length is impossible is damage at its offset."""
        w = Pcapng().section().interface(ETHERNET, 0)
        frame = udp_frames(1)[0]
        w.enhanced(0, 1, frame.data)
        offset = len(w.data())
        body = (
            struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)
            if block_type == SHB
            else struct.pack("<HHI", 1, 0, 0)
        )
        w.block(block_type, body + bytes(12), total=block_len)
        w.enhanced(0, 2, frame.data)
        got, damage = read(write(tmp_path, w.data(), "in.pcapng"))
        assert [f.data for f in got] == [frame.data]
        assert re.fullmatch(
            rf"{re.escape(str(tmp_path / 'in.pcapng'))}: damaged pcapng (interface )?block( \(length \d+\))? at byte offset {offset}",
            damage,
        ), damage

    def test_pcapng_captured_length_beyond_its_block(self, tmp_path: Path) -> None:
        """An EPB whose caplen runs past the end of its block is damage at the block's offset."""
        w = Pcapng().section().interface(ETHERNET, 0)
        frame = udp_frames(1)[0]
        w.enhanced(0, 1, frame.data)
        offset = len(w.data())
        w.block(EPB, struct.pack("<IIIII", 0, 0, 3, 200, 200) + bytes(40))
        got, damage = read(write(tmp_path, w.data(), "in.pcapng"))
        assert [f.data for f in got] == [frame.data]
        assert damage == f"{tmp_path / 'in.pcapng'}: damaged pcapng block at byte offset {offset}"

    def test_pcapng_bad_byte_order_magic(self, tmp_path: Path) -> None:
        """A section header with neither byte-order magic is damage at its offset."""
        w = Pcapng().section().interface(ETHERNET, 0)
        w.enhanced(0, 1, b"z" * 20)
        offset = len(w.data())
        w.block(SHB, struct.pack("<IHHq", 0x11223344, 1, 0, -1))
        got, damage = read(write(tmp_path, w.data(), "in.pcapng"))
        assert [f.data for f in got] == [b"z" * 20]
        name = re.escape(str(tmp_path / "in.pcapng"))
        pattern = (
            rf"{name}: (bad pcapng byte-order magic|damaged pcapng block) at byte offset {offset}"
        )
        assert re.fullmatch(pattern, damage), damage

    @pytest.mark.parametrize(
        ("content", "message"),
        [
            (b"", "empty file, not a capture"),
            (b"frame,time\n1,2\n", "not a pcap or pcapng capture (starts with 6672616d)"),
            (b"\xd4\xc3", "not a pcap or pcapng capture (starts with d4c3)"),
            (
                gzip.compress(b"hello, not a capture"),
                "not a pcap or pcapng capture (starts with 68656c6c)",
            ),
            (gzip.compress(b""), "empty file, not a capture"),
        ],
        ids=["empty", "text", "two-bytes", "gzip-text", "gzip-empty"],
    )
    def test_not_a_capture_fails_at_open(
        self, tmp_path: Path, content: bytes, message: str
    ) -> None:
        """Input that is not a capture is refused at open with the file's name and what was seen."""
        path = write(tmp_path, content, "notes.txt")
        assert open_error(path) == f"{path}: {message}"

    def test_unsupported_pcap_link_type_fails_at_open(self, tmp_path: Path) -> None:
        """A pcap of a link type spanflow cannot decode (163, AVS 802.11) is refused at open."""
        path = write(tmp_path, pcap_file(udp_frames(1), link_field=163))
        assert open_error(path) == f"{path}: unsupported link type LINKTYPE 163"

    def test_missing_file_fails_at_open(self, tmp_path: Path) -> None:
        """A missing file is one line naming it."""
        path = tmp_path / "absent.pcap"
        assert open_error(path) == f"{path}: No such file or directory"

    def test_damaged_gzip_header_fails_at_open(self, tmp_path: Path) -> None:
        """A gzip header with an unknown compression method is refused at open."""
        data = bytearray(gzip.compress(pcap_file(udp_frames(1))))
        data[2] = 9
        path = write(tmp_path, bytes(data), "in.pcap.gz")
        assert open_error(path).startswith(f"{path}: damaged gzip stream: ")

    @pytest.mark.parametrize("ending", ["truncated", "bad_crc"])
    def test_gzip_stream_ending_badly(self, tmp_path: Path, ending: GzipEnding) -> None:
        """A gzip stream cut short or failing its CRC yields the records it held, then names where it broke."""
        frames = udp_frames(5)
        data = pcap_file(frames)
        starts = pcap_record_starts(frames)
        good = data if ending == "bad_crc" else data[: starts[3] + 20]
        path = write(tmp_path, gzip_flushed([good[:30], good[30:]], ending), "in.pcap.gz")
        got, damage = read(path)
        complete = 5 if ending == "bad_crc" else 3
        assert got == [
            Frame(f.data, f.ts_ns - f.ts_ns % 1000, f.wire_length) for f in frames[:complete]
        ]
        assert damage.startswith(f"{path}: read failed at byte offset {len(good)}: ")

    @pytest.mark.parametrize("records", [3, 300], ids=["inside-first-read", "after-600KB"])
    def test_corrupt_deflate_data(self, tmp_path: Path, records: int) -> None:
        """An invalid deflate block is an InputError naming the file, after the records well before it.

        zlib drops the output of the call that fails, so records just before the
        corruption may be lost: the ones yielded must be exactly those complete
        before the offset the message names, and no record ending more than
        256 KiB before the corruption may be lost.
        """
        frames = [Frame(f.data + bytes(2000), f.ts_ns) for f in udp_frames(records, step_ns=1000)]
        good = pcap_file(frames)
        ends = pcap_record_starts(frames)[1:]
        path = write(tmp_path, gzip_flushed([good], "garbage"), "in.pcap.gz")
        try:
            got, damage = read(path)
        except InputError as exc:  # broken inside the bytes read to recognise the format
            got, damage = [], str(exc)
        assert damage.startswith(f"{path}: ")
        found = re.search(r"byte offset (\d+)", damage)
        offset = int(found.group(1)) if found else 0
        assert offset <= len(good)
        assert got == [as_read(f) for f in frames[: sum(end <= offset for end in ends)]]
        assert len(got) >= sum(end <= len(good) - (256 << 10) for end in ends)


def _walk_blocks(data: bytes) -> list[tuple[int, int, int]]:
    """(start, type, length) of every block of a well-formed pcapng, walked with struct."""
    blocks, pos, order = [], 0, "<"
    while pos < len(data):
        if data[pos : pos + 4] == b"\x0a\x0d\x0d\x0a":
            order = "<" if data[pos + 8 : pos + 12] == b"\x4d\x3c\x2b\x1a" else ">"
        block_type, length = struct.unpack_from(order + "II", data, pos)
        blocks.append((pos, block_type, length))
        pos += length
    return blocks


def _block_starts(data: bytes) -> set[int]:
    return {start for start, _, _ in _walk_blocks(data)}


def _packet_block_ends(data: bytes) -> list[int]:
    return [start + length for start, kind, length in _walk_blocks(data) if kind in (EPB, SPB, OPB)]


class TestMeterOnDamage:
    def test_flows_before_the_damage_are_delivered(self, tmp_path: Path) -> None:
        """A truncated capture meters its complete records and reports the damage once."""
        packets = traffic()
        frames = [p.frame for p in packets]
        starts = pcap_record_starts(frames)
        path = write(tmp_path, pcap_file(frames, nanos=True)[: starts[8] + 5])
        parts: list[RecordTable] = []
        counters = meter_files([path], CacheConfig(), parts.append)
        records = RecordTable.concat(parts)
        assert counters.damage == [
            f"{path}: truncated last record (5 of 16 bytes) at byte offset {starts[8]}"
        ]
        assert counters.frames == 8
        ip = [p for p in packets[:8] if p.key is not None]
        assert int(records.packets.sum()) == len(ip) == 7
        assert int(records.octets.sum()) == sum(p.octets for p in ip)


def mapped_resident_bytes(path: Path) -> int:
    """Resident bytes of this process's mappings of ``path`` (from /proc/self/smaps)."""
    resident, in_file = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        fields = line.split()
        if fields and "-" in fields[0] and len(fields) >= 5:  # a mapping's header line
            in_file = fields[-1] == str(path)
        elif in_file and fields[0] == "Rss:":
            resident += int(fields[1]) * 1024
    return resident


class TestMappedFiles:
    def test_pages_behind_the_walk_leave_memory(self, tmp_path: Path) -> None:
        """Walking a 48 MB mapped capture keeps at most two release steps of it resident."""
        packet = ipv4_udp("198.18.0.1", "198.18.0.2", 1000, 53, b"x" * 1400)
        frame = Frame(ethernet(packet, 0x0800), T0_NS, 14 + len(packet))
        record = pcap_record(frame)
        count = (48 << 20) // len(record)
        path = write(tmp_path, pcap_header() + record * count)
        capture = Capture(str(path), 4096, mapped=True)
        assert isinstance(capture.source, MappedInput)
        seen, peak = 0, 0
        try:
            for batch in capture.reader.batches():
                seen += len(batch)
                peak = max(peak, mapped_resident_bytes(path))
        finally:
            capture.close()
        assert seen == count
        assert 0 < peak <= 2 * RELEASE_BYTES + (4096 * len(record))

    def test_regular_files_are_read_in_steps_unless_mapped_is_asked(self, tmp_path: Path) -> None:
        """By default a file is read into one reused buffer of the step size, never mapped; its
        frames are the same either way."""
        records = b"".join(pcap_record(f, nanos=True) for f in udp_frames(50))
        path = write(tmp_path, pcap_header(nanos=True) + records)
        capture = Capture(str(path))
        try:
            assert isinstance(capture.source, ChunkedInput)
            assert len(capture.source.buf) == DEFAULT_CHUNK_BYTES
            frames = [f for batch in capture.reader.batches() for f in frames_of(batch)]
            assert str(path) not in Path("/proc/self/maps").read_text()
        finally:
            capture.close()
        assert frames == [as_read(f) for f in udp_frames(50)]
        mapped = Capture(str(path), mapped=True)
        try:
            assert isinstance(mapped.source, MappedInput)
            assert [f for batch in mapped.reader.batches() for f in frames_of(batch)] == frames
        finally:
            mapped.close()
