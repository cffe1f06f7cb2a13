"""SimulatedReader: real card protocol in memory, events on its own thread."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

import pytest

from hardware.eid.base import (
    CardInserted,
    CardReader,
    CardRemoved,
    EidEvent,
    ReaderError,
    ReaderErrorKind,
    VerificationStatus,
)
from hardware.eid.belpic import CardFaults
from hardware.eid.cardmaker import TestPki, make_card
from hardware.eid.simulated import SimulatedReader

TIMEOUT = 10.0


@pytest.fixture(scope="module")
def pki() -> TestPki:
    return TestPki.create("ec")


def card(pki: TestPki, card_number: str = "592000123456"):
    return make_card(
        pki,
        national_number="71010112345",
        given_names="Jan",
        surname="Janssens",
        card_number=card_number,
    )


class Events:
    """Collects events with the thread they came on."""

    def __init__(self) -> None:
        self.queue: queue.Queue[tuple[EidEvent, str]] = queue.Queue()

    def __call__(self, event: EidEvent) -> None:
        self.queue.put((event, threading.current_thread().name))

    def next(self) -> EidEvent:
        return self.queue.get(timeout=TIMEOUT)[0]

    def none_left(self, reader: SimulatedReader) -> bool:
        assert reader.wait_idle(TIMEOUT)
        return self.queue.empty()


@pytest.fixture
def reader(pki: TestPki) -> Iterator[SimulatedReader]:
    reader = SimulatedReader(trusted_roots=[pki.root_certificate])
    reader.start()
    yield reader
    reader.close()


@pytest.fixture
def events(reader: SimulatedReader) -> Events:
    events = Events()
    reader.subscribe(events)
    return events


def test_is_a_card_reader(reader: SimulatedReader) -> None:
    assert isinstance(reader, CardReader)
    assert reader.readers() == [reader.name]


def test_insert_reads_the_card_on_the_reader_thread(reader: SimulatedReader, pki: TestPki) -> None:
    events = Events()
    reader.subscribe(events)
    reader.insert(card(pki))
    event, thread = events.queue.get(timeout=TIMEOUT)
    assert isinstance(event, CardInserted)
    assert thread != threading.current_thread().name
    assert event.reader == reader.name
    assert event.identity.surname == "Janssens"
    assert event.verification.status is VerificationStatus.VERIFIED
    assert event.timing.apdus > 0


def test_remove_reports_card_removed_once(
    reader: SimulatedReader, events: Events, pki: TestPki
) -> None:
    reader.insert(card(pki))
    assert isinstance(events.next(), CardInserted)
    reader.remove()
    reader.remove()  # no card any more: nothing
    removed = events.next()
    assert isinstance(removed, CardRemoved) and removed.reader == reader.name
    assert events.none_left(reader)


def test_second_card_of_the_family_costs_less(
    reader: SimulatedReader, events: Events, pki: TestPki
) -> None:
    reader.insert(card(pki, "592000000001"))
    first = events.next()
    reader.insert(card(pki, "592000000002"))  # implies the first one left
    assert isinstance(events.next(), CardRemoved)
    second = events.next()
    assert isinstance(first, CardInserted) and isinstance(second, CardInserted)
    assert second.timing.apdus < first.timing.apdus
    assert second.verification.status is VerificationStatus.VERIFIED


def test_removal_mid_read_is_an_error_and_no_removal_event_follows(
    reader: SimulatedReader, events: Events, pki: TestPki
) -> None:
    reader.insert(card(pki), faults=CardFaults(remove_after_apdus=3))
    error = events.next()
    assert isinstance(error, ReaderError) and error.kind is ReaderErrorKind.CARD_REMOVED
    reader.remove()
    assert events.none_left(reader)
    reader.insert(card(pki))
    assert isinstance(events.next(), CardInserted)


def test_fail_reports_the_error(reader: SimulatedReader, events: Events) -> None:
    reader.fail(ReaderErrorKind.NO_READER, "no card reader connected")
    error = events.next()
    assert isinstance(error, ReaderError)
    assert (error.kind, error.message) == (ReaderErrorKind.NO_READER, "no card reader connected")


def test_a_failing_subscriber_does_not_stop_the_reader(
    reader: SimulatedReader, events: Events, pki: TestPki
) -> None:
    def broken(event: EidEvent) -> None:
        raise RuntimeError("subscriber bug")

    reader.subscribe(broken)
    reader.insert(card(pki))
    assert isinstance(events.next(), CardInserted)
    reader.remove()
    assert isinstance(events.next(), CardRemoved)


def test_unsubscribe_and_close_twice(pki: TestPki) -> None:
    reader = SimulatedReader()
    events = Events()
    unsubscribe = reader.subscribe(events)
    reader.start()
    unsubscribe()
    reader.insert(card(pki))
    assert reader.wait_idle(TIMEOUT)
    assert events.queue.empty()
    reader.close()
    reader.close()


def test_logs_hold_the_card_number_at_most(
    reader: SimulatedReader, events: Events, pki: TestPki, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    reader.insert(card(pki))
    assert isinstance(events.next(), CardInserted)
    reader.insert(card(pki), faults=CardFaults(remove_after_apdus=4))
    assert isinstance(events.next(), CardRemoved)
    assert isinstance(events.next(), ReaderError)
    assert "592000123456" in caplog.text  # the card read is logged ...
    assert "71010112345" not in caplog.text  # ... but not whose it is
    assert "Janssens" not in caplog.text and "Jan " not in caplog.text
