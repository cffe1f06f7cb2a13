"""PcscReader through a real pcscd and vsmartcard's vpcd, with the BELPIC card emulator.

The private pcscd of ``tests/integration/conftest.py`` (session fixture ``pcscd``) serves
every test; the restart test halts and resumes it. Tests named ``scripted`` drive the
same reader over a scripted ``scard`` module instead (no pcscd needed).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import queue
import time
from collections.abc import Iterator

import pytest

from hardware.eid.base import (
    CardInserted,
    CardRemoved,
    EidEvent,
    ReaderError,
    ReaderErrorKind,
    VerificationStatus,
)
from hardware.eid.belpic import BelpicCard, CardFaults
from hardware.eid.cardfiles import CardFiles
from hardware.eid.cardmaker import TestPki, make_card
from hardware.eid.emulator import CardEmulator
from hardware.eid.pcsc import PcscReader, list_readers
from hardware.errors import DeviceUnavailable
from tests import eid_support

EVENT_WAIT_S = 15.0  # a read takes ~1 s through vpcd; generous for a loaded machine


@pytest.fixture(scope="module")
def rsa_pki() -> TestPki:
    return TestPki.create("rsa")


@pytest.fixture(scope="module")
def ec_pki() -> TestPki:
    return TestPki.create("ec")


def card(pki: TestPki, **overrides: object) -> CardFiles:
    fields: dict[str, object] = {
        "national_number": "71010112345",
        "given_names": "Lotte",
        "surname": "Claes",
    }
    fields.update(overrides)
    return make_card(pki, **fields)  # type: ignore[arg-type]


class Watch:
    """PcscReaders under test and the events they deliver."""

    reader_name = "Virtual PCD 00 00"

    def __init__(self) -> None:
        self.readers: list[PcscReader] = []
        self.events: queue.Queue[EidEvent] = queue.Queue()

    def reader(self, roots: list | None = None, **kwargs: object) -> PcscReader:
        reader = PcscReader(
            reader_name=self.reader_name,
            trusted_roots=roots or [],
            poll_timeout_s=0.2,
            **kwargs,  # type: ignore[arg-type]
        )
        reader.subscribe(self.events.put)
        self.readers.append(reader)
        reader.start()
        return reader

    def log_tail(self) -> str:
        return "(no pcscd)"

    def next(self, timeout: float = EVENT_WAIT_S) -> EidEvent:
        try:
            return self.events.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(
                f"no reader event within {timeout} s; pcscd log:\n{self.log_tail()}"
            ) from None

    def expect(self, kind: type[EidEvent]) -> EidEvent:
        event = self.next()
        assert isinstance(event, kind), f"expected {kind.__name__}, got {event!r}"
        return event

    def quiet(self, seconds: float) -> bool:
        try:
            event = self.events.get(timeout=seconds)
        except queue.Empty:
            return True
        raise AssertionError(f"unexpected event {event!r}")

    def close(self) -> None:
        for reader in self.readers:
            reader.close()


class Rig(Watch):
    """The session's private pcscd, an emulator on its vpcd port and the readers under test."""

    def __init__(self, daemon: eid_support.Pcscd) -> None:
        super().__init__()
        self.daemon = daemon
        self.reader_name = daemon.reader
        self.emulator = CardEmulator(port=self.daemon.port)

    def log_tail(self) -> str:
        return self.daemon.log_tail()

    def insert(self, files: CardFiles, faults: CardFaults | None = None) -> None:
        self.emulator.insert(BelpicCard(files, faults=faults))

    def close(self) -> None:
        super().close()
        self.emulator.stop()
        # The next test starts with an empty reader.
        with contextlib.suppress(TimeoutError):
            eid_support.wait_card(self.daemon.reader, present=False)


@pytest.fixture
def rig(request: pytest.FixtureRequest) -> Iterator[Rig]:
    why_not = eid_support.missing_tools()
    if why_not is not None:
        pytest.skip(f"no PC/SC test rig: {why_not}")
    pcscd: eid_support.Pcscd = request.getfixturevalue("pcscd")
    if not pcscd.alive():
        pytest.fail(f"pcscd died during the session:\n{pcscd.log_tail()}")
    rig = Rig(pcscd)
    try:
        yield rig
    finally:
        rig.close()


def inserted(rig: Watch) -> CardInserted:
    event = rig.expect(CardInserted)
    assert isinstance(event, CardInserted)
    return event


@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_card_is_read_and_verified(rig: Rig, request: pytest.FixtureRequest, kind: str) -> None:
    pki: TestPki = request.getfixturevalue(f"{kind}_pki")
    applet = 0x18 if kind == "ec" else 0x17
    rig.reader([pki.root_certificate])
    rig.insert(card(pki, applet_version=applet, street_and_number="Markt 3"))
    event = inserted(rig)
    assert event.reader == rig.daemon.reader
    assert (event.identity.surname, event.identity.given_names) == ("Claes", "Lotte")
    assert event.address is not None and event.address.street_and_number == "Markt 3"
    assert event.verification.status is VerificationStatus.VERIFIED
    assert event.card.applet_version == ("1.8" if applet == 0x18 else "1.7")
    assert event.timing.apdus > 5 and event.timing.ms > 0
    rig.emulator.remove()
    removed = rig.expect(CardRemoved)
    assert removed.reader == rig.daemon.reader  # type: ignore[attr-defined]


def test_photo_read_and_checked_when_asked(rig: Rig, ec_pki: TestPki) -> None:
    rig.reader([ec_pki.root_certificate], read_photo=True)
    files = card(ec_pki)
    rig.insert(files)
    event = inserted(rig)
    assert event.photo == files.photo
    assert event.verification.status is VerificationStatus.VERIFIED
    assert "photo matches" in event.verification.reason


def test_second_card_of_the_family_costs_fewer_apdus(rig: Rig, rsa_pki: TestPki) -> None:
    rig.reader([rsa_pki.root_certificate])
    rig.insert(card(rsa_pki, card_number="592000000001"))
    first = inserted(rig)
    rig.insert(card(rsa_pki, card_number="592000000002"))  # the first one comes out
    rig.expect(CardRemoved)
    second = inserted(rig)
    assert second.identity.card_number == "592000000002"
    assert second.verification.status is VerificationStatus.VERIFIED
    assert second.timing.apdus < first.timing.apdus
    assert second.timing.bytes_read < first.timing.bytes_read


def test_expired_card_is_read_with_its_dates(rig: Rig, rsa_pki: TestPki) -> None:
    rig.reader([rsa_pki.root_certificate])
    begin, end = dt.date(2012, 3, 1), dt.date(2022, 3, 1)
    rig.insert(card(rsa_pki, validity_begin=begin, validity_end=end))
    event = inserted(rig)
    assert (event.identity.validity_begin, event.identity.validity_end) == (begin, end)
    assert event.verification.status is VerificationStatus.VERIFIED


def test_tampered_identity_is_a_bad_signature(rig: Rig, ec_pki: TestPki) -> None:
    rig.reader([ec_pki.root_certificate])
    files = card(ec_pki, surname="Claes")
    tampered = dataclasses.replace(files, identity=files.identity.replace(b"Claes", b"Claez"))
    rig.insert(tampered)
    event = inserted(rig)
    assert event.identity.surname == "Claez"
    assert event.verification.status is VerificationStatus.BAD_SIGNATURE


def test_untrusted_root(rig: Rig, rsa_pki: TestPki, ec_pki: TestPki) -> None:
    rig.reader([ec_pki.root_certificate])  # trusts another root than the card's
    rig.insert(card(rsa_pki))
    assert inserted(rig).verification.status is VerificationStatus.UNTRUSTED_ROOT


@pytest.mark.parametrize("after", [1, 4, 9])
def test_removal_mid_read_then_clean_read(rig: Rig, rsa_pki: TestPki, after: int) -> None:
    rig.reader([rsa_pki.root_certificate])
    files = card(rsa_pki)
    rig.insert(files, CardFaults(remove_after_apdus=after))
    error = rig.expect(ReaderError)
    assert error.kind is ReaderErrorKind.CARD_REMOVED, error  # type: ignore[attr-defined]
    rig.insert(files)
    event = inserted(rig)
    assert event.verification.status is VerificationStatus.VERIFIED


def test_not_activated_card(rig: Rig, rsa_pki: TestPki) -> None:
    rig.reader([rsa_pki.root_certificate])
    rig.insert(card(rsa_pki), CardFaults(not_activated=True))
    error = rig.expect(ReaderError)
    assert error.kind is ReaderErrorKind.NOT_ACTIVATED  # type: ignore[attr-defined]


def test_pcscd_stopped_and_restarted(rig: Rig, rsa_pki: TestPki) -> None:
    assert rig.daemon.reader in list_readers()
    reader = rig.reader([rsa_pki.root_certificate])
    rig.insert(card(rsa_pki))
    inserted(rig)
    rig.daemon.halt()
    error = rig.expect(ReaderError)
    assert error.kind is ReaderErrorKind.PCSCD_UNAVAILABLE  # type: ignore[attr-defined]
    with pytest.raises(DeviceUnavailable, match="pcscd"):
        list_readers()
    assert reader.readers() == []
    rig.quiet(1.0)  # said once, not at every retry
    rig.daemon.resume()
    rig.insert(card(rsa_pki))
    event = inserted(rig)
    assert event.verification.status is VerificationStatus.VERIFIED


def test_close_is_prompt_and_a_failing_subscriber_is_survived(rig: Rig, rsa_pki: TestPki) -> None:
    calls: list[EidEvent] = []

    def broken(event: EidEvent) -> None:
        calls.append(event)
        raise RuntimeError("subscriber bug")

    reader = PcscReader(reader_name=rig.daemon.reader, poll_timeout_s=0.5)
    reader.subscribe(broken)
    reader.subscribe(rig.events.put)
    started = time.monotonic()
    reader.start()
    assert time.monotonic() - started < 0.5  # start() does not block
    rig.insert(card(rsa_pki))
    inserted(rig)
    rig.emulator.remove()
    rig.expect(CardRemoved)
    assert len(calls) == 2
    started = time.monotonic()
    reader.close()
    reader.close()
    assert time.monotonic() - started < 1.5


def test_no_such_reader_is_reported_once(rig: Rig) -> None:
    reader = PcscReader(reader_name="Nonexistent Reader 00 00", poll_timeout_s=0.2)
    reader.subscribe(rig.events.put)
    rig.readers.append(reader)
    reader.start()
    error = rig.expect(ReaderError)
    assert error.kind is ReaderErrorKind.NO_READER  # type: ignore[attr-defined]
    rig.quiet(1.0)


# -- the same reader over a scripted ``scard`` module: what vpcd cannot do ------------------
# (a reader unplugged and plugged back, a mute card, a card swapped between two polls)


class FakeScard:
    """Just enough of ``smartcard.scard`` for PcscReader: one world, thread-safe enough."""

    def __init__(self) -> None:
        from smartcard import scard

        for name in dir(scard):
            if name.startswith(("SCARD_STATE_", "SCARD_SCOPE_", "SCARD_SHARE_", "SCARD_PCI_")):
                setattr(self, name, getattr(scard, name))
        self.SCARD_PROTOCOL_T0 = scard.SCARD_PROTOCOL_T0
        self.SCARD_LEAVE_CARD = scard.SCARD_LEAVE_CARD
        self.service = True
        self.readers: list[str] = ["Fake Reader 00 00"]
        self.card: BelpicCard | None = None
        self.mute = False
        self.counter = 0

    def put(self, card: BelpicCard | None) -> None:
        self.card = card
        self.counter += 1

    def _state(self, name: str) -> int:
        if name == "\\\\?PnP?\\Notification":
            return len(self.readers) << 16
        if name not in self.readers:
            return self.SCARD_STATE_UNKNOWN | self.SCARD_STATE_UNAVAILABLE
        if self.card is None:
            return self.SCARD_STATE_EMPTY | (self.counter << 16)
        mute = self.SCARD_STATE_MUTE if self.mute else 0
        return self.SCARD_STATE_PRESENT | mute | (self.counter << 16)

    def SCardEstablishContext(self, scope: int) -> tuple[int, int]:
        return (0, 1) if self.service else (0x8010001D, 0)

    def SCardReleaseContext(self, context: int) -> int:
        return 0

    def SCardCancel(self, context: int) -> int:
        return 0

    def SCardGetErrorMessage(self, code: int) -> str:
        return "scripted error"

    def SCardListReaders(self, context: int, groups: list) -> tuple[int, list[str]]:
        if not self.service:
            return 0x8010001D, []
        return (0, list(self.readers)) if self.readers else (0x8010002E, [])

    def SCardGetStatusChange(self, context: int, timeout_ms: int, states: list) -> tuple:
        if not self.service:
            return 0x8010001D, []
        out = [(name, self._state(name), []) for name, _ in states]
        if all(new == old for (_, new, _), (_, old) in zip(out, states, strict=True)):
            time.sleep(min(timeout_ms, 20) / 1000)
            return 0x8010000A, []
        changed = self.SCARD_STATE_CHANGED
        return 0, [(name, state | changed, list(b"\x3b\x98")) for name, state, _ in out]

    def SCardConnect(self, context: int, name: str, share: int, protocols: int) -> tuple:
        if self.card is None:
            return 0x8010000C, 0, 0
        return (0x80100066, 0, 0) if self.mute else (0, 7, protocols)

    def SCardBeginTransaction(self, card: int) -> int:
        return 0

    def SCardEndTransaction(self, card: int, disposition: int) -> int:
        return 0

    def SCardDisconnect(self, card: int, disposition: int) -> int:
        return 0

    def SCardTransmit(self, card: int, pci: int, command: list[int]) -> tuple[int, list[int]]:
        if self.card is None:
            return 0x80100069, []
        try:
            return 0, list(self.card.transmit_raw(bytes(command)))
        except Exception:  # CardGone: pulled
            self.card = None
            self.counter += 1
            return 0x80100069, []


@pytest.fixture
def scripted(
    monkeypatch: pytest.MonkeyPatch, rsa_pki: TestPki
) -> Iterator[tuple[FakeScard, Watch]]:
    pytest.importorskip("smartcard.scard", reason="pyscard is not installed")
    from hardware.eid import pcsc

    fake = FakeScard()
    monkeypatch.setattr(pcsc, "_scard", lambda: fake)
    watch = Watch()
    watch.reader_name = fake.readers[0]
    watch.reader([rsa_pki.root_certificate], retry_max_s=0.2)
    try:
        yield fake, watch
    finally:
        watch.close()


def test_scripted_reader_unplugged_and_back(
    scripted: tuple[FakeScard, Watch], rsa_pki: TestPki
) -> None:
    fake, rig = scripted
    fake.put(BelpicCard(card(rsa_pki)))
    assert inserted(rig).verification.status is VerificationStatus.VERIFIED
    fake.readers = []
    error = rig.expect(ReaderError)
    assert error.kind is ReaderErrorKind.READER_REMOVED  # type: ignore[attr-defined]
    error = rig.expect(ReaderError)
    assert error.kind is ReaderErrorKind.NO_READER  # type: ignore[attr-defined]
    rig.quiet(0.5)
    fake.readers = ["Fake Reader 00 00"]
    assert inserted(rig).identity.surname == "Claes"  # the card still in it is read again


def test_scripted_mute_card(scripted: tuple[FakeScard, Watch], rsa_pki: TestPki) -> None:
    fake, rig = scripted
    fake.mute = True
    fake.put(BelpicCard(card(rsa_pki)))
    error = rig.expect(ReaderError)
    assert error.kind is ReaderErrorKind.MUTE_CARD  # type: ignore[attr-defined]
    fake.put(None)
    rig.expect(CardRemoved)


def test_scripted_card_swapped_between_polls(
    scripted: tuple[FakeScard, Watch], rsa_pki: TestPki
) -> None:
    fake, rig = scripted
    fake.put(BelpicCard(card(rsa_pki, card_number="592000000001")))
    inserted(rig)
    fake.put(None)
    fake.put(BelpicCard(card(rsa_pki, card_number="592000000002")))  # faster than a poll
    rig.expect(CardRemoved)
    assert inserted(rig).identity.card_number == "592000000002"


def test_scripted_service_down_then_back(
    scripted: tuple[FakeScard, Watch], rsa_pki: TestPki
) -> None:
    fake, rig = scripted
    fake.service = False
    error = rig.expect(ReaderError)
    assert error.kind is ReaderErrorKind.PCSCD_UNAVAILABLE  # type: ignore[attr-defined]
    rig.quiet(0.6)  # said once, retried quietly
    fake.put(BelpicCard(card(rsa_pki)))
    fake.service = True
    assert inserted(rig).verification.status is VerificationStatus.VERIFIED
