"""FlowCache.adopt: records opened again continue exactly as if they had never left."""

from __future__ import annotations

from hypothesis import given, settings

from cache.flow_cache import FlowCache
from core.packets import PacketTable
from core.records import EndedRecords
from tests.cache.test_flow_cache import cases
from tests.reference_engine import table_rows


@settings(max_examples=200, deadline=None)
@given(case=cases(max_rows=60))
def test_a_stream_cut_anywhere_and_adopted_gives_the_records_of_one_cache(
    case: tuple[object, PacketTable],
) -> None:
    config, packets = case
    cut = len(packets) // 2
    whole = FlowCache(config)  # type: ignore[arg-type]
    expected = EndedRecords.concat([whole.update(packets), whole.flush()])
    first = FlowCache(config)  # type: ignore[arg-type]
    ended = [first.update(packets.take(slice(0, cut)))]
    clock, still_open = first.clock_ns, first.flush()
    second = FlowCache(config)  # type: ignore[arg-type]
    second.adopt(still_open.records(), clock)
    ended += [second.update(packets.take(slice(cut, None))), second.flush()]
    assert rows(EndedRecords.concat(ended)) == rows(expected)


def rows(records: EndedRecords) -> list[tuple[int, ...]]:
    return sorted(table_rows(records, list(EndedRecords.DTYPES)))
