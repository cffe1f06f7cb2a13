"""Installer commands for the Belgian eID reader: ``eid readers|read|emulate``.

``eid read`` runs the kiosk's own PC/SC reader (``hardware.eid.pcsc.PcscReader``) for one
card and prints what the kiosk would see. The national register number is masked unless
``--show-national-number`` is given; the photo is never printed. ``eid emulate`` serves a
card to Debian's vsmartcard virtual reader so the rest can be tried without a real card.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import queue
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hardware.eid.base import CardInserted, ReaderError, ReaderErrorKind, VerificationStatus
from hardware.errors import ConfigurationError, DeviceTimeout, DeviceUnavailable, HardwareError
from kiosk.cli import EXIT_FAILED, EXIT_HARDWARE, EXIT_OK, UsageError

if TYPE_CHECKING:
    from hardware.eid.cardfiles import CardFiles

DEFAULT_TIMEOUT_S = 20.0
VPCD_PORT = 35963  # vsmartcard-vpcd's default card-side port (/etc/reader.conf.d/vpcd)

# A made-up resident for ``eid emulate --generate``: no real person has these data.
DEMO_RESIDENT: dict[str, Any] = {
    "national_number": "85031412345",  # check digits fixed up in _demo_card
    "given_names": "Emma Louise",
    "surname": "Peeters",
    "birth_date_text": "14 MAAR 1985",
    "card_number": "592123456789",
    "sex": "F",
    "birth_place": "Leuven",
    "street_and_number": "Bibliotheekstraat 7",
    "postal_code": "1000",
    "municipality": "Brussel",
}

# What an installer can do about each reader error; the reader's own line comes first.
_ADVICE = {
    ReaderErrorKind.PCSCD_UNAVAILABLE: "is pcscd running? (systemctl start pcscd)",
    ReaderErrorKind.NO_READER: "plug in a card reader (digibank-kiosk eid readers lists them)",
    ReaderErrorKind.READER_REMOVED: "plug the reader back in",
    ReaderErrorKind.CARD_REMOVED: "leave the card in until the read is done",
    ReaderErrorKind.NOT_AN_EID: "insert a Belgian eID or residence card",
    ReaderErrorKind.MUTE_CARD: "insert the card chip first and face up; clean the chip",
    ReaderErrorKind.NOT_ACTIVATED: "the card must be activated at the municipality first",
}


def add_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``eid ...`` on the top-level parser."""
    eid = commands.add_parser("eid", help="check the eID card reader, read a card, emulate one")
    actions = eid.add_subparsers(title="eid commands", metavar="ACTION")

    readers = actions.add_parser("readers", help="list the PC/SC card readers")
    readers.add_argument("--json", action="store_true", help="print JSON")
    readers.set_defaults(handler=readers_command)

    read = actions.add_parser(
        "read",
        help="wait for a card, read it as the kiosk does and print it",
        description="Exit codes: 0 read (and verified when --trust is given), 1 tampered "
        "card or not verified under --trust, 3 no pcscd, no reader, no card, read failed.",
    )
    read.add_argument("--reader", metavar="NAME", help="reader name or its start (default: any)")
    read.add_argument(
        "--timeout",
        type=_seconds,
        default=DEFAULT_TIMEOUT_S,
        metavar="S",
        help=f"wait this long for a card (default {DEFAULT_TIMEOUT_S:g} s)",
    )
    read.add_argument("--trust", metavar="DIR", help="directory of trusted root certificates")
    read.add_argument("--photo", action="store_true", help="also read the photo, check its hash")
    read.add_argument(
        "--show-national-number",
        action="store_true",
        help="print the national register number in full (personal data: do not keep it)",
    )
    read.add_argument("--json", action="store_true", help="print one JSON object")
    read.set_defaults(handler=read_command)

    emulate = actions.add_parser(
        "emulate", help="serve a card to the vsmartcard virtual reader (vpcd) until interrupted"
    )
    emulate.add_argument(
        "--card",
        metavar="DIR",
        help="card directory (identity.tlv, ...); with --generate: write the made-up card there",
    )
    emulate.add_argument(
        "--generate",
        choices=["rsa", "ec"],
        help="make up a resident's card signed by a new test root",
    )
    emulate.add_argument(
        "--trust-out", metavar="DIR", help="write the card's test root certificate into DIR"
    )
    emulate.add_argument("--host", default="127.0.0.1", help="vpcd host (default 127.0.0.1)")
    emulate.add_argument(
        "--port", type=int, default=VPCD_PORT, help=f"vpcd port (default {VPCD_PORT})"
    )
    emulate.set_defaults(handler=emulate_command)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"{text} is out of range (0-3600 s)")
    return value


# --- readers -------------------------------------------------------------------------------


def readers_command(args: argparse.Namespace) -> int:
    """``eid readers``: one reader name a line; no pcscd -> one line and exit 3."""
    from hardware.eid.pcsc import list_readers

    names = list_readers()  # DeviceUnavailable when pcscd is not running
    if args.json:
        print(json.dumps({"readers": names}))
    elif names:
        print("\n".join(names))
    if not names:
        print("error: no card reader found: plug one in (pcscd is running)", file=sys.stderr)
        return EXIT_HARDWARE
    return EXIT_OK


# --- read ----------------------------------------------------------------------------------


def read_command(args: argparse.Namespace) -> int:
    """``eid read``: wait for one card, print it, exit by its verification outcome."""
    from hardware.eid.pcsc import PcscReader, list_readers
    from hardware.eid.verify import load_trusted_roots

    try:
        roots = load_trusted_roots(args.trust) if args.trust else []
    except ConfigurationError as exc:
        raise UsageError(f"--trust: {exc}") from None
    # A missing pcscd or reader is one clear line now, not a wait for the timeout.
    names = list_readers()
    if args.reader and not any(n.startswith(args.reader) for n in names):
        listed = ", ".join(repr(n) for n in names) or "none"
        raise DeviceUnavailable(f"no reader named {args.reader!r}; readers: {listed}")
    reader = PcscReader(reader_name=args.reader or None, trusted_roots=roots, read_photo=args.photo)
    event = wait_for_card(reader, args.timeout)
    if args.json:
        print(json.dumps(read_json(event, show_national_number=args.show_national_number)))
    else:
        print(read_text(event, show_national_number=args.show_national_number))
    status = event.verification.status
    if status is VerificationStatus.BAD_SIGNATURE:
        print(
            f"error: the card's files are not authentic: {event.verification.reason}",
            file=sys.stderr,
        )
        return EXIT_FAILED
    if args.trust and status is not VerificationStatus.VERIFIED:
        print(f"error: card not verified: {event.verification.reason}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def wait_for_card(reader: Any, timeout_s: float) -> CardInserted:
    """Start ``reader``, return its first ``CardInserted``; a ``ReaderError`` or no card
    within ``timeout_s`` raises a ``HardwareError`` whose message is one line."""
    events: queue.Queue[object] = queue.Queue()
    unsubscribe = reader.subscribe(events.put)
    reader.start()
    try:
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            try:
                event = events.get(timeout=left)
            except queue.Empty:
                break
            if isinstance(event, CardInserted):
                return event
            if isinstance(event, ReaderError):
                raise _reader_failure(event)
        raise DeviceTimeout(f"no card inserted within {timeout_s:g} s")
    finally:
        unsubscribe()
        reader.close()


def _reader_failure(event: ReaderError) -> HardwareError:
    where = f"{event.reader}: " if event.reader else ""
    advice = _ADVICE.get(event.kind)
    message = f"{where}{event.message}" + (f" ({advice})" if advice else "")
    if event.kind in (ReaderErrorKind.PCSCD_UNAVAILABLE, ReaderErrorKind.NO_READER):
        return DeviceUnavailable(message)
    return HardwareError(message)


def read_json(event: CardInserted, *, show_national_number: bool = False) -> dict[str, Any]:
    """The documented ``eid read --json`` object (see issue 3 and docs)."""
    from hardware.eid.identity import identity_json

    data = identity_json(event.identity, event.address, show_national_number=show_national_number)
    data["verification"] = {
        "status": event.verification.status.value,
        "reason": event.verification.reason,
        "algorithm": event.verification.algorithm,
    }
    data["card"] = {"atr": event.card.atr.hex(), "applet_version": event.card.applet_version}
    data["timing"] = {"apdus": event.timing.apdus, "ms": round(event.timing.ms, 1)}
    return data


def read_text(event: CardInserted, *, show_national_number: bool = False) -> str:
    """What ``eid read`` prints for a person: the card, its holder, how it was read."""
    from hardware.eid.policy import check_card

    data = read_json(event, show_national_number=show_national_number)
    decision = check_card(event.identity, dt.date.today())
    verification = event.verification
    address = data["address"]
    rows = [
        ("reader", event.reader),
        ("card", f"{data['card_number']} ({data['document_type_name']}, "
                 f"type {data['document_type']})"),
        ("valid", f"{data['validity_begin'] or '?'} to {data['validity_end'] or '?'}"),
        ("policy", _joined("accepted" if decision.accepted else "refused", decision.reason)),
        ("name", f"{data['given_names']} {data['surname']}".strip()),
        ("national number", data["national_number"]),
        ("born", (data["birth_date"] or "?") + _prefixed(" in ", data["birth_place"])),
        ("nationality", data["nationality"] or "-"),
        ("address", "-" if address is None else f"{address['street_and_number']}, "
                    f"{address['postal_code']} {address['municipality']}"),
        ("verification", verification.status.value
         + _prefixed(" ", verification.algorithm and f"({verification.algorithm})")
         + _prefixed(": ", verification.reason)),
        ("applet", f"{event.card.applet_version or 'unknown'}, ATR {event.card.atr.hex(' ')}"),
        ("read", f"{event.timing.apdus} APDUs, {event.timing.bytes_read} bytes, "
                 f"{event.timing.ms:.0f} ms"),
    ]  # fmt: skip
    if event.photo is not None:
        rows.insert(-3, ("photo", f"read, {len(event.photo)} bytes (not shown)"))
    width = max(len(label) for label, _ in rows) + 1
    return "\n".join(f"{label + ':':<{width}} {value}" for label, value in rows)


def _prefixed(prefix: str, text: str | None) -> str:
    return f"{prefix}{text}" if text else ""


def _joined(head: str, reason: str) -> str:
    return head + _prefixed(": ", reason)


# --- emulate -------------------------------------------------------------------------------


def emulate_command(args: argparse.Namespace) -> int:
    """``eid emulate``: attach a card to vpcd and serve it until interrupted.

    When vpcd drops the card (pcscd restarted), the emulator puts it back as soon as vpcd
    listens again, so a demo survives a pcscd restart.
    """
    from hardware.eid.belpic import BelpicCard
    from hardware.eid.emulator import CardEmulator

    files, what = _emulated_card(args)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    emulator = CardEmulator(host=args.host, port=args.port, keep_inserted=True)
    try:
        emulator.insert(BelpicCard(files))  # DeviceUnavailable: no vpcd, one line, exit 3
        print(f"emulating {what} on vpcd {args.host}:{args.port}; Ctrl+C to stop", flush=True)
        try:
            while not stop.wait(1.0):
                pass
        except KeyboardInterrupt:
            pass
    finally:
        emulator.stop()
    return EXIT_OK


def _emulated_card(args: argparse.Namespace) -> tuple[CardFiles, str]:
    """The card to serve and one line saying what it is; writes --card/--trust-out."""
    from hardware.eid.cardfiles import load_card_dir, save_card_dir

    if args.generate:
        files, pki = _demo_card(args.generate)
        what = f"a made-up {args.generate.upper()} card ({DEMO_RESIDENT['given_names']} "
        what += f"{DEMO_RESIDENT['surname']}, card {DEMO_RESIDENT['card_number']})"
        if args.card:
            save_card_dir(files, args.card)
            what += f", saved in {args.card}"
        if args.trust_out:
            path = pki.write_trust_dir(args.trust_out)
            what += f", test root in {path}"
        return files, what
    if not args.card:
        raise UsageError("give --card DIR (a card directory) or --generate rsa|ec")
    files = load_card_dir(args.card)
    what = f"the card in {args.card}"
    if args.trust_out:
        if files.root_certificate is None:
            raise UsageError(f"{args.card} has no root_certificate.der to write to --trust-out")
        target = Path(args.trust_out)
        try:
            target.mkdir(parents=True, exist_ok=True)
            (target / "card-root.der").write_bytes(files.root_certificate)
        except OSError as exc:
            raise UsageError(f"cannot write {target}: {exc.strerror or exc}") from None
        what += f", its root in {target / 'card-root.der'}"
    return files, what


def _demo_card(kind: str) -> tuple[CardFiles, Any]:
    """The made-up resident's card on a new test PKI of ``kind``."""
    from hardware.eid.cardmaker import TestPki, make_card

    pki = TestPki.create(kind)  # type: ignore[arg-type]
    resident = dict(DEMO_RESIDENT)
    resident["national_number"] = with_check_digits(resident["national_number"][:9])
    return make_card(pki, **resident), pki


def with_check_digits(first_nine: str) -> str:
    """A national number from its 9 first digits (born before 2000): 97 - (n mod 97)."""
    return f"{first_nine}{97 - int(first_nine) % 97:02d}"
