"""The read-ahead worker: items in order, errors raised to the consumer, a prompt stop."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from probe.meter.readahead import ReadAhead


def test_items_arrive_in_order() -> None:
    """Every item of the iterator reaches the consumer, in its order."""
    with ReadAhead(iter(range(1000))) as items:
        assert list(items) == list(range(1000))


def test_an_error_of_the_iterator_reaches_the_consumer_after_the_items_before_it() -> None:
    """Items before the failure are delivered, then the iterator's own exception is raised."""

    def failing() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("damaged at byte 7")

    got: list[int] = []

    def consume(items: ReadAhead[int]) -> None:
        for item in items:
            got.append(item)

    with ReadAhead(failing()) as items, pytest.raises(ValueError, match="damaged at byte 7"):
        consume(items)
    assert got == [1, 2]


def test_close_stops_the_worker_even_when_the_consumer_stops_early() -> None:
    """A consumer that stops after one item leaves no worker running and no item produced past
    what the queue holds."""
    produced: list[int] = []

    def endless() -> Iterator[int]:
        n = 0
        while True:
            produced.append(n)
            yield n
            n += 1

    with ReadAhead(endless(), depth=2) as items:
        assert next(iter(items)) == 0
    assert not any(t.name == "spanflow-decode" for t in threading.enumerate())
    assert len(produced) <= 4  # the item taken, two queued, one waiting to be queued
