"""The BELPIC card emulator through the REAL pcscd and vpcd, read with pyscard.

These tests also pin down which pyscard exceptions the PC/SC reader (``pcsc.py``) has to
translate: no pcscd, no reader, no card, card pulled mid-read, mute card.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hardware.eid import apdu
from hardware.eid.apdu import CardSession
from hardware.eid.belpic import BelpicCard, CardFaults
from hardware.eid.cardfiles import ATR_17, ATR_18, CardFiles
from hardware.eid.emulator import CardEmulator
from hardware.errors import DeviceUnavailable
from tests import eid_support
from tests.eid_support import VirtualSlot

pytestmark = pytest.mark.timeout(60)

SCARD_E_NO_SMARTCARD = 0x8010000C
SCARD_E_NOT_TRANSACTED = 0x80100016
SCARD_E_NO_SERVICE = 0x8010001D
SCARD_E_NO_READERS_AVAILABLE = 0x8010002E
SCARD_W_REMOVED_CARD = 0x80100069

CHIP = bytes(range(0xA0, 0xB0))


def card_files(*, applet_version: int = 0x17) -> CardFiles:
    """A card with an identity of 3 chunks + a bit and a 2.6 KB photo (11 chunks)."""
    identity = b"\x01\x0c592123456789\x02\x10" + CHIP + bytes(range(256)) * 2 + b"\x07\x03Doe"
    return CardFiles(
        identity=identity,
        identity_signature=bytes(range(128)),
        address=b"\x01\x0bKerkstraat 1\x02\x049000" + bytes(40),
        address_signature=bytes(range(128, 256)),
        rrn_certificate=bytes((i * 7) % 256 for i in range(840)),
        photo=bytes((i * 13) % 256 for i in range(2629)),
        atr=ATR_18 if applet_version == 0x18 else ATR_17,
        applet_version=applet_version,
    )


class Connection:
    """A pyscard connection to the virtual reader, with the ``Transmit`` CardSession wants."""

    def __init__(self, reader_name: str) -> None:
        from smartcard.System import readers

        (reader,) = [r for r in readers() if str(r) == reader_name]
        self.connection = reader.createConnection()

    def transmit(self, command: bytes) -> tuple[bytes, int]:
        data, sw1, sw2 = self.connection.transmit(list(command))
        return bytes(data), (sw1 << 8) | sw2

    def close(self) -> None:
        from smartcard.Exceptions import SmartcardException

        # The card or the service may be gone already: then there is nothing to release.
        for step in (self.connection.disconnect, self.connection.release):
            with contextlib.suppress(SmartcardException):
                step()


@pytest.fixture
def connect(virtual_slot: VirtualSlot) -> Iterator[type[Connection]]:
    opened: list[Connection] = []

    def factory() -> Connection:
        conn = Connection(virtual_slot.reader)
        opened.append(conn)
        return conn

    yield factory  # type: ignore[misc]
    for conn in opened:
        conn.close()


def test_reader_is_listed(virtual_slot: VirtualSlot) -> None:
    from smartcard.System import readers

    assert virtual_slot.reader in [str(r) for r in readers()]
    assert virtual_slot.reader == "Virtual PCD 00 00"


@pytest.mark.parametrize("version", [0x17, 0x18])
def test_atr_matches_the_applet_version(virtual_slot: VirtualSlot, connect, version: int) -> None:
    virtual_slot.insert(BelpicCard(card_files(applet_version=version)))
    conn = connect()
    conn.connection.connect()
    assert bytes(conn.connection.getATR()) == (ATR_18 if version == 0x18 else ATR_17)
    session = CardSession(conn.transmit)
    assert session.card_data().applet_version == ("1.8" if version == 0x18 else "1.7")


def test_files_read_through_pcscd_are_byte_exact(virtual_slot: VirtualSlot, connect) -> None:
    files = card_files()
    virtual_slot.insert(BelpicCard(files))
    conn = connect()
    conn.connection.connect()
    session = CardSession(conn.transmit)
    assert session.read_file(apdu.IDENTITY) == files.identity
    assert session.read_file(apdu.PHOTO) == files.photo
    assert session.read_prefix(apdu.RRN_CERTIFICATE, 64) == files.rrn_certificate[:64]
    data = session.card_data()
    assert data.chip_serial == CHIP
    assert session.bytes_read == len(files.identity) + len(files.photo) + 64 + 28


def test_fallback_select_and_spurious_error_through_pcscd(
    virtual_slot: VirtualSlot, connect
) -> None:
    files = card_files()
    # APDUs: 1 path select (refused), 2-4 file ids, 5 READ @0, 6 READ @248 -> spurious.
    faults = CardFaults(no_path_select=True, spurious_6b00_at={6})
    virtual_slot.insert(BelpicCard(files, faults=faults))
    conn = connect()
    conn.connection.connect()
    assert CardSession(conn.transmit).read_file(apdu.IDENTITY) == files.identity


def test_no_card_in_the_reader(virtual_slot: VirtualSlot, connect) -> None:
    from smartcard.Exceptions import NoCardException

    conn = connect()
    with pytest.raises(NoCardException) as info:
        conn.connection.connect()
    assert info.value.hresult == SCARD_E_NO_SMARTCARD


@pytest.mark.parametrize("pulled_after", [1, 4])
def test_card_removed_mid_read(virtual_slot: VirtualSlot, connect, pulled_after: int) -> None:
    """vpcd answers the APDU in flight with nothing, then pcscd reports the card removed."""
    from smartcard.Exceptions import CardConnectionException

    card = BelpicCard(card_files(), faults=CardFaults(remove_after_apdus=pulled_after))
    virtual_slot.insert(card)
    conn = connect()
    conn.connection.connect()
    session = CardSession(conn.transmit)
    with pytest.raises(CardConnectionException) as first:
        session.read_file(apdu.PHOTO)
    assert card.gone and card.apdu_count == pulled_after
    # The APDU in flight: an empty response (not even a status word).
    assert "no valid response" in str(first.value)
    # Until pcscd's next poll of the slot (~0.4 s) a further APDU fails as a transaction...
    with pytest.raises(CardConnectionException) as soon:
        session.read_file(apdu.PHOTO)
    assert soon.value.hresult in (SCARD_E_NOT_TRANSACTED, SCARD_W_REMOVED_CARD)
    # ...and once pcscd has seen the empty slot, as a removed card.
    eid_support.wait_card(virtual_slot.reader, present=False)
    with pytest.raises(CardConnectionException) as later:
        session.read_file(apdu.PHOTO)
    assert later.value.hresult == SCARD_W_REMOVED_CARD
    assert "Card was removed" in str(later.value)


def test_card_back_in_right_after_a_pull(virtual_slot: VirtualSlot, connect) -> None:
    """Pulled mid-read, then straight back in: pcscd must see it leave and come back."""
    from smartcard.Exceptions import CardConnectionException

    files = card_files()
    virtual_slot.insert(BelpicCard(files, faults=CardFaults(remove_after_apdus=2)))
    first = connect()
    first.connection.connect()
    session = CardSession(first.transmit)
    for _ in range(2):  # the APDU in flight, then one more before pcscd notices
        with pytest.raises(CardConnectionException):
            session.read_file(apdu.PHOTO)
    virtual_slot.insert(files)
    again = connect()
    again.connection.connect()
    assert CardSession(again.transmit).read_file(apdu.PHOTO) == files.photo


def test_removed_then_inserted_again(virtual_slot: VirtualSlot, connect) -> None:
    files = card_files()
    virtual_slot.insert(files)
    virtual_slot.remove()
    virtual_slot.insert(files)
    conn = connect()
    conn.connection.connect()
    assert CardSession(conn.transmit).read_file(apdu.ADDRESS) == files.address


def test_mute_card_is_never_present(virtual_slot: VirtualSlot, connect) -> None:
    """No ATR: pcscd keeps the reader empty, so connecting fails at once (no hang)."""
    from smartcard.Exceptions import NoCardException
    from smartcard.scard import SCARD_STATE_PRESENT

    virtual_slot.insert(BelpicCard(card_files(), faults=CardFaults(mute=True)), wait=False)
    assert virtual_slot.emulator.inserted
    deadline = time.monotonic() + 1.5  # several pcscd polls
    while time.monotonic() < deadline:
        assert not eid_support.card_state(virtual_slot.reader) & SCARD_STATE_PRESENT
        time.sleep(0.1)
    conn = connect()
    started = time.monotonic()
    with pytest.raises(NoCardException) as info:
        conn.connection.connect()
    assert info.value.hresult == SCARD_E_NO_SMARTCARD
    assert time.monotonic() - started < 2.0


def test_pcscd_halted_and_resumed(pcscd: eid_support.Pcscd, virtual_slot: VirtualSlot, connect):
    """pcscd stops under an inserted card: no service, card out; back on the same port."""
    from smartcard.pcsc.PCSCExceptions import EstablishContextException
    from smartcard.System import readers

    files = card_files()
    virtual_slot.insert(files)
    pcscd.halt()
    try:
        with pytest.raises(EstablishContextException) as info:
            readers()
        assert info.value.hresult == SCARD_E_NO_SERVICE
        deadline = time.monotonic() + 2.0
        while virtual_slot.emulator.inserted and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not virtual_slot.emulator.inserted  # vpcd went away with pcscd
    finally:
        pcscd.resume()
    virtual_slot.insert(files)
    conn = connect()
    conn.connection.connect()
    assert CardSession(conn.transmit).read_file(apdu.IDENTITY) == files.identity


def test_kept_card_is_back_after_a_pcscd_restart(pcscd: eid_support.Pcscd) -> None:
    """The standalone emulator (keep_inserted) reconnects when pcscd comes back."""
    files = card_files()
    slot = VirtualSlot(pcscd)
    slot.emulator.keep_inserted = True
    try:
        slot.insert(files)
        pcscd.halt()
        try:
            time.sleep(0.3)
            assert slot.emulator.inserted  # waiting for vpcd, card still meant to be in
        finally:
            pcscd.resume()
        eid_support.wait_card(slot.reader, present=True)
        conn = Connection(slot.reader)
        try:
            conn.connection.connect()
            assert CardSession(conn.transmit).read_file(apdu.IDENTITY) == files.identity
        finally:
            conn.close()
        stopped = time.monotonic()
        slot.emulator.stop()
        assert time.monotonic() - stopped < 1.0 and not slot.emulator.inserted
    finally:
        slot.close()


class FakeVpcd:
    """vpcd's side of the wire, to check the emulator's framing without pcscd."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.server.settimeout(5.0)
        self.conn: socket.socket | None = None

    def accept(self) -> None:
        self.conn, _ = self.server.accept()
        self.conn.settimeout(2.0)

    def send(self, payload: bytes, *, split: bool = False) -> None:
        assert self.conn is not None
        frame = len(payload).to_bytes(2, "big") + payload
        if split:  # length and payload in separate segments, as TCP may deliver them
            self.conn.sendall(frame[:1])
            time.sleep(0.02)
            self.conn.sendall(frame[1:3])
            time.sleep(0.02)
            self.conn.sendall(frame[3:])
        else:
            self.conn.sendall(frame)

    def receive(self, timeout: float = 2.0) -> bytes | None:
        """One framed answer; None when the card says nothing; b"" when it hung up."""
        assert self.conn is not None
        self.conn.settimeout(timeout)
        data = b""
        try:
            while len(data) < 2 or len(data) < 2 + int.from_bytes(data[:2], "big"):
                chunk = self.conn.recv(4096)
                if not chunk:
                    return b""
                data += chunk
        except TimeoutError:
            return None
        return data[2:]

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.server.close()


def test_emulator_speaks_the_vpcd_protocol() -> None:
    vpcd = FakeVpcd()
    files = card_files()
    emulator = CardEmulator(port=vpcd.port)
    try:
        emulator.insert(BelpicCard(files, faults=CardFaults(remove_after_apdus=2)))
        vpcd.accept()
        vpcd.send(b"\x01")  # power on: no answer
        vpcd.send(b"\x04")  # ATR
        assert vpcd.receive() == ATR_17
        vpcd.send(bytes.fromhex("00A4080C063F00DF014031"), split=True)
        assert vpcd.receive() == b"\x90\x00"
        vpcd.send(bytes.fromhex("00B0000004"))
        assert vpcd.receive() == files.identity[:4] + b"\x90\x00"
        vpcd.send(bytes.fromhex("00B0000404"))  # the third APDU: the card is pulled
        assert vpcd.receive() == b""
        deadline = time.monotonic() + 1.0
        while emulator.inserted and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not emulator.inserted
    finally:
        emulator.stop()
        vpcd.close()


def test_mute_emulated_card_answers_nothing() -> None:
    vpcd = FakeVpcd()
    emulator = CardEmulator(port=vpcd.port)
    try:
        emulator.insert(BelpicCard(card_files(), faults=CardFaults(mute=True)))
        vpcd.accept()
        vpcd.send(b"\x04")
        assert vpcd.receive(timeout=0.3) is None
        vpcd.send(bytes.fromhex("80E400001C"))
        assert vpcd.receive(timeout=0.3) is None
        assert emulator.inserted
        stopped = time.monotonic()
        emulator.remove()
        assert time.monotonic() - stopped < 1.0
        assert vpcd.receive() == b""  # removal closes the connection
    finally:
        emulator.stop()
        vpcd.close()


def test_emulator_without_vpcd_gives_up_cleanly() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nobody listens here once the probe closes
    emulator = CardEmulator(port=port, connect_timeout_s=0.3)
    started = time.monotonic()
    with pytest.raises(DeviceUnavailable, match=f"127.0.0.1:{port}"):
        emulator.insert(BelpicCard(card_files()))
    assert time.monotonic() - started < 2.0
    assert not emulator.inserted


# --- pyscard without a service or without readers: in a child process -----------------------------
# libpcsclite fixes its socket path at the first call of a process, so another daemon (or
# none) is only reachable from a fresh process.
_CLIENT = """
import json
from smartcard import scard
from smartcard.System import readers
out = {}
try:
    out["readers"] = [str(r) for r in readers()]
except Exception as exc:
    out["error"] = [type(exc).__module__ + "." + type(exc).__name__, str(exc),
                    getattr(exc, "hresult", None)]
hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
out["establish"] = hresult
if hresult == 0:
    out["list"] = scard.SCardListReaders(context, [])[0]
    scard.SCardReleaseContext(context)
print(json.dumps(out))
"""


def _client(socket_path: Path) -> dict[str, object]:
    env = {**os.environ, "PCSCLITE_CSOCK_NAME": str(socket_path)}
    done = subprocess.run(
        [sys.executable, "-c", _CLIENT],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return json.loads(done.stdout)


def test_no_pcscd_is_establish_context_exception(tmp_path: Path) -> None:
    if eid_support.missing_tools():
        pytest.skip(eid_support.missing_tools())
    out = _client(tmp_path / "pcscd.comm")  # nobody listens there
    name, message, hresult = out["error"]  # type: ignore[misc]
    assert name == "smartcard.pcsc.PCSCExceptions.EstablishContextException"
    assert "Service not available" in message
    assert hresult == SCARD_E_NO_SERVICE
    assert out["establish"] == SCARD_E_NO_SERVICE


def test_pcscd_without_readers(tmp_path: Path, pcscd: eid_support.Pcscd) -> None:
    """A second, reader-less pcscd: pyscard lists nothing, SCardListReaders says why."""
    try:
        bare = eid_support.start_pcscd(tmp_path / "bare" / "pcscd.comm", with_vpcd=False)
    except eid_support.PcscdUnavailable as exc:
        pytest.skip(str(exc))
    try:
        out = _client(bare.socket_path)
    finally:
        bare.stop()
    assert out == {"readers": [], "establish": 0, "list": SCARD_E_NO_READERS_AVAILABLE}
