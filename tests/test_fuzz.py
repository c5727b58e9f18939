"""Bounded fuzzing of the decoder and the capture readers: never an exception, nothing read lost.

The long coverage-guided campaign over the same cases is tests/fuzz/run_campaign.py
(``make fuzz``).
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.packets import FrameBatch
from probe.decode.reasons import DecodeReason
from tests.captures import IDB, IF_TSOFFSET, IF_TSRESOL, Pcapng
from tests.frames import ETHERNET, LINK_TYPES, eth, frame_batch, ipv4, udp
from tests.fuzz.capture_cases import ALL_SAMPLES, capture_case
from tests.fuzz.capture_checks import check_capture, read_capture
from tests.fuzz.choices import DrawChoices
from tests.fuzz.decode_checks import UNSUPPORTED_LINK_TYPES, check_decode
from tests.fuzz.frame_cases import batch_of, fuzz_frame
from tests.fuzz.interpreted import decode_interpreted


def fuzz(examples: int) -> settings:
    """A bounded run: ``examples`` cases, no per-case deadline (the first compiles kernels)."""
    return settings(
        max_examples=examples, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )


class TestDecoderFuzz:
    @fuzz(400)
    @given(st.data())
    def test_random_and_damaged_frames(self, data: st.DataObject) -> None:
        """Random bytes and damaged valid frames of any link type: one checked row each."""
        c = DrawChoices(data)
        frames = [fuzz_frame(c) for _ in range(c.integer(0, 8))]
        batch = batch_of(frames, c)
        check_decode(batch)
        check_decode(batch, inner=True, attributes=True)  # tunnels opened, --fields words

    @pytest.mark.parametrize("linktype", [*LINK_TYPES, *UNSUPPORTED_LINK_TYPES])
    @fuzz(25)
    @given(frames=st.lists(st.binary(max_size=80), max_size=6), data=st.data())
    def test_random_bytes_of_each_link_type(
        self, linktype: int, frames: list[bytes], data: st.DataObject
    ) -> None:
        """Random bytes behind each link type code, known or not, cut anywhere: no escape."""
        c = DrawChoices(data)
        cut = [(linktype, f, c.integer(0, len(f)), c.integer(0, 2**32 - 1)) for f in frames]
        check_decode(batch_of(cut, c), attributes=True)

    def test_interpreted_kernel_catches_a_read_past_the_buffer(self) -> None:
        """The interpreted kernel raises where a frame claims more bytes than its buffer holds."""
        whole = frame_batch([(1, eth(ipv4(udp())))])
        short = FrameBatch(
            whole.buf[:30].copy(), whole.offset, whole.caplen, whole.wirelen, whole.ts_ns,
            whole.linktype, whole.ifindex,
        )  # fmt: skip
        assert int(short.caplen[0]) > len(short.buf)
        with pytest.raises(IndexError):
            decode_interpreted(short)

    def test_interpreted_kernel_decodes_as_compiled(self) -> None:
        """The interpreted kernel gives the compiled kernel's row for a valid frame."""
        batch = frame_batch([(1, eth(ipv4(udp(1234, 53))))])
        table = decode_interpreted(batch)
        assert (table.reason[0], table.sport[0], table.dport[0]) == (DecodeReason.OK, 1234, 53)
        assert np.array_equal(table.src_lo, check_decode(batch).src_lo)


class TestReaderFuzz:
    @fuzz(300)
    @given(st.data())
    def test_damaged_captures(
        self, tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
    ) -> None:
        """Flipped, cut, spliced files and lying lengths: one located message, intact frames kept."""
        c = DrawChoices(data)
        path = tmp_path_factory.mktemp("damaged") / "capture.pcap"
        check_capture(capture_case(c, options=True), path, batch_frames=c.integer(1, 80))

    @fuzz(80)
    @given(st.data())
    def test_valid_changes_read_every_frame(
        self, tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
    ) -> None:
        """A lying snaplen or wire length, empty and >64 KiB records: every frame, no message."""
        c = DrawChoices(data)
        path = tmp_path_factory.mktemp("valid") / "capture.pcap"
        check_capture(
            capture_case(c, ALL_SAMPLES, clean=True), path, batch_frames=c.integer(1, 5000)
        )

    @fuzz(40)
    @given(st.data())
    def test_cli_on_damaged_captures(
        self, tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
    ) -> None:
        """``spanflow convert`` on damaged files exits 0 or 1 with the located line, no traceback."""
        c = DrawChoices(data)
        path = tmp_path_factory.mktemp("cli") / "capture.pcap"
        check_capture(capture_case(c), path, batch_frames=64, cli=True)


def interface_with(body: bytes) -> bytes:
    """A pcapng section whose one Ethernet interface block has ``body``, then one UDP frame."""
    return Pcapng().section().block(IDB, body).enhanced(0, 12345, eth(ipv4(udp()))).data()


IDB_HEAD = struct.pack("<HHI", ETHERNET, 0, 0)  # link type, reserved, snaplen


def idb_option(code: int, value: bytes) -> bytes:
    return IDB_HEAD + struct.pack("<HH", code, len(value)) + value + bytes(-len(value) % 4)


class TestInterfaceOptionEdges:
    """Reproducers the fuzzers found in probe/sources/readers.py (once crashes, now located damage)."""

    @pytest.mark.parametrize(
        "body",
        [
            pytest.param(idb_option(IF_TSRESOL, bytes([20])), id="tsresol-1e-20"),
            pytest.param(idb_option(IF_TSRESOL, bytes([0x80 | 64])), id="tsresol-2^-64"),
            pytest.param(idb_option(IF_TSOFFSET, struct.pack("<q", 2**62)), id="tsoffset-2^62"),
            pytest.param(IDB_HEAD + struct.pack("<HH", IF_TSOFFSET, 8), id="tsoffset-cut-off"),
        ],
    )
    def test_interface_option_edges(self, tmp_path: Path, body: bytes) -> None:
        """An interface option whose time does not fit int64 ns, or runs past its block, is damage."""
        path = tmp_path / "options.pcapng"
        path.write_bytes(interface_with(body))
        got = read_capture(path, batch_frames=64)
        idb_at = len(Pcapng().section().data())  # the interface block follows the section header
        assert len(got.messages) == 1
        assert re.match(rf"{re.escape(str(path))}: .* at byte offset {idb_at}$", got.messages[0])
        assert got.frames == []
