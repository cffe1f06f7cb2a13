"""eID benchmarks: card traffic per identification against the official middleware's
way of reading, and card-inserted-to-event time through pcscd and the card emulator.

Run: ``.venv/bin/python bench/bench_eid.py [--quick]``. Prints tables and writes
bench/results/eid.json.

1. Traffic, in process (``BelpicCard`` answering APDUs, no PC/SC): the kiosk's read
   (``cardread.read_card``: card data, identity, identity signature, address, address
   signature, RRN certificate; the certificate from the cache when warm) against a
   middleware-style read of every file (card data, identity, address, both signatures,
   photo, RRN certificate in full; SELECT by path, READ BINARY in 252-byte chunks until a
   short chunk or 6B00). Bytes are response data; wire bytes add commands and status words.
2. Latency, through the real stack (pcscd + vsmartcard-vpcd + ``CardEmulator`` +
   ``PcscReader``): from the emulated card's insertion to ``CardInserted`` at a
   subscriber, median and p95 over N insertions, certificate cache warm after the first.
   Skipped with a message when pcscd or the vpcd driver is missing.
"""

from __future__ import annotations

import argparse
import json
import queue
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a plain script from anywhere

from hardware.eid import apdu  # noqa: E402
from hardware.eid.belpic import BelpicCard  # noqa: E402
from hardware.eid.cardfiles import CardFiles, load_specimen  # noqa: E402
from hardware.eid.cardmaker import TestPki, make_card  # noqa: E402
from hardware.eid.cardread import CertificateCache, read_card  # noqa: E402

RESULTS = ROOT / "bench" / "results"
SPECIMENS = ROOT.parent / "shared" / "testdata" / "eid"
MIDDLEWARE_CHUNK = 252
MIDDLEWARE_FILES = (
    apdu.IDENTITY,
    apdu.ADDRESS,
    apdu.IDENTITY_SIGNATURE,
    apdu.ADDRESS_SIGNATURE,
    apdu.PHOTO,
    apdu.RRN_CERTIFICATE,
)


def pct(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of values."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Counter:
    """A ``Transmit`` over a BelpicCard that counts APDUs, data bytes and wire bytes."""

    def __init__(self, card: BelpicCard) -> None:
        self.card = card
        self.apdus = 0
        self.data_bytes = 0
        self.wire_bytes = 0

    def __call__(self, command: bytes) -> tuple[bytes, int]:
        raw = self.card.transmit_raw(command)
        self.apdus += 1
        self.data_bytes += len(raw) - 2
        self.wire_bytes += len(command) + len(raw)
        return raw[:-2], int.from_bytes(raw[-2:], "big")


def middleware_read(transmit: Callable[[bytes], tuple[bytes, int]]) -> dict[bytes, bytes]:
    """Every file the way the official middleware reads it (no retries, no cache)."""
    transmit(bytes.fromhex("80E400001C"))  # GET CARD DATA: the middleware shows the chip data
    files: dict[bytes, bytes] = {}
    for path in MIDDLEWARE_FILES:
        _, sw = transmit(bytes([0x00, 0xA4, 0x08, 0x0C, len(path)]) + path)
        if sw != 0x9000:
            continue  # a card without this file (no address on some cards)
        out = bytearray()
        while True:
            le = MIDDLEWARE_CHUNK
            command = bytes([0x00, 0xB0, len(out) >> 8, len(out) & 0xFF, le])
            data, sw = transmit(command)
            if sw >> 8 == 0x6C:  # wrong Le: the card says how many bytes are left
                data, sw = transmit(command[:4] + bytes([sw & 0xFF]))
                le = len(data)
            if sw != 0x9000:
                break  # 6B00: the file was an exact multiple of the chunk
            out += data
            if len(data) < le or not data:
                break
        files[path] = bytes(out)
    return files


def kiosk_read(
    files: CardFiles, roots: list[Any], cache: CertificateCache | None
) -> tuple[Counter, str]:
    """One ``read_card`` as the PC/SC reader does it; returns the counts and the outcome."""
    counter = Counter(BelpicCard(files))
    event = read_card(apdu.CardSession(counter), files.atr, trusted_roots=roots, cert_cache=cache)
    return counter, event.verification.status.value


def traffic(name: str, files: CardFiles, roots: list[Any]) -> list[dict[str, Any]]:
    """Rows for one card: middleware, kiosk with a cold and with a warm certificate cache."""
    middleware = Counter(BelpicCard(files))
    middleware_read(middleware)
    cache = CertificateCache()
    cold, status = kiosk_read(files, roots, cache)
    warm, _ = kiosk_read(files, roots, cache)
    rows = []
    for way, counter in (("middleware", middleware), ("kiosk cold", cold), ("kiosk warm", warm)):
        rows.append(
            {
                "card": name,
                "read": way,
                "apdus": counter.apdus,
                "data_bytes": counter.data_bytes,
                "wire_bytes": counter.wire_bytes,
                "bytes_ratio": counter.data_bytes / middleware.data_bytes,
                "verification": status if way != "middleware" else "-",
            }
        )
    return rows


def cards() -> list[tuple[str, CardFiles, list[Any]]]:
    """Generated cards of every kind, and the specimen cards when the folder is there."""
    result: list[tuple[str, CardFiles, list[Any]]] = []
    for kind, applet in (("rsa", 0x17), ("ec", 0x17), ("ec", 0x18)):
        pki = TestPki.create(kind)  # type: ignore[arg-type]
        files = make_card(
            pki,
            national_number="85031412302",  # made up, valid check digits
            given_names="Emma Louise",
            surname="Peeters",
            applet_version=applet,
        )
        result.append(
            (f"generated {kind} {applet >> 4}.{applet & 15}", files, [pki.root_certificate])
        )
    if SPECIMENS.is_dir():
        from hardware.eid.verify import load_certificate

        for kind in ("rsa", "ec"):
            files = load_specimen(SPECIMENS, kind)  # type: ignore[arg-type]
            roots = [load_certificate(files.root_certificate)] if files.root_certificate else []
            result.append((f"specimen {kind}", files, roots))
    else:
        print(f"specimen cards skipped: {SPECIMENS} not found")
    return result


def latency(
    insertions: int, cards_: list[tuple[str, CardFiles, list[Any]]]
) -> tuple[list[dict[str, Any]], str]:
    """Card-inserted-to-event times through pcscd; ([], reason) when it cannot run.

    Uses the tests' private pcscd (``tests/eid_support.py``: its own socket and vpcd port,
    so a system pcscd is left alone).
    """
    from tests import eid_support

    eid_support.claim_socket_path()  # before the first PC/SC call of this process
    reason = eid_support.missing_tools()
    if reason:
        return [], reason
    try:
        daemon = eid_support.start_pcscd()
    except eid_support.PcscdUnavailable as exc:
        return [], str(exc)
    try:
        return [_latency_of(daemon, *card, insertions) for card in cards_], ""
    finally:
        daemon.stop()


def _latency_of(
    daemon: Any, name: str, files: CardFiles, roots: list[Any], insertions: int
) -> dict[str, Any]:
    from hardware.eid.base import CardInserted, CardRemoved, EidEvent, ReaderError
    from hardware.eid.emulator import CardEmulator
    from hardware.eid.pcsc import PcscReader

    events: queue.Queue[EidEvent] = queue.Queue()
    reader = PcscReader(reader_name=daemon.reader, trusted_roots=roots)
    reader.subscribe(events.put)
    emulator = CardEmulator(port=daemon.port)
    latencies: list[float] = []
    read_ms: list[float] = []
    apdus: list[int] = []
    errors = 0
    reader.start()
    try:
        time.sleep(1.0)  # the reader thread has its first look at the empty slot
        for _ in range(insertions):
            start = time.monotonic()
            emulator.insert(BelpicCard(files))
            event = _next(events, (CardInserted, ReaderError), 10.0)
            if isinstance(event, CardInserted):
                latencies.append((time.monotonic() - start) * 1000)
                read_ms.append(event.timing.ms)
                apdus.append(event.timing.apdus)
            else:
                errors += 1
            emulator.remove()
            _next(events, (CardRemoved,), 5.0)
            # A random phase against pcscd's slot polling (~400 ms for vpcd), as a hand has.
            time.sleep(random.uniform(0.05, 0.5))
    finally:
        emulator.stop()
        reader.close()
    if not latencies:
        return {"card": name, "insertions": insertions, "errors": errors}
    return {
        "card": name,
        "insertions": insertions,
        "median_ms": statistics.median(latencies),
        "p95_ms": pct(latencies, 0.95),
        "first_ms": latencies[0],  # certificate cache cold
        "read_median_ms": statistics.median(read_ms),  # of which the card read itself
        "apdus_cold": apdus[0],
        "apdus_warm": apdus[-1],
        "errors": errors,
    }


def _next(events: queue.Queue[Any], kinds: tuple[type, ...], timeout: float) -> Any:
    """The next event of one of ``kinds`` within ``timeout`` (others skipped), or None."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            event = events.get(timeout=left)
        except queue.Empty:
            return None
        if isinstance(event, kinds):
            return event
    return None


def table(title: str, rows: list[dict[str, Any]]) -> None:
    """Print rows as an aligned table."""
    print(f"\n{title}")
    keys = list(rows[0])
    widths = [max(len(k), *(len(_cell(r[k])) for r in rows)) for k in keys]
    print("  ".join(f"{k:>{w}}" for k, w in zip(keys, widths, strict=True)))
    for row in rows:
        print("  ".join(f"{_cell(row[k]):>{w}}" for k, w in zip(keys, widths, strict=True)))


def _cell(value: object) -> str:
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def main() -> None:
    """Run the benchmarks and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer insertions (a smoke run)")
    parser.add_argument("--insertions", type=int, help="insertions for the latency part")
    args = parser.parse_args()
    insertions = args.insertions or (5 if args.quick else 30)

    all_cards = cards()
    rows = [row for card in all_cards for row in traffic(*card)]
    table("card traffic per identification (in process, BelpicCard)", rows)
    kiosk_rows = [r for r in rows if r["read"].startswith("kiosk")]
    worst = max(r["bytes_ratio"] for r in kiosk_rows)
    worst_warm = max(r["bytes_ratio"] for r in kiosk_rows if r["read"] == "kiosk warm")
    print(
        f"kiosk/middleware bytes, worst card: {worst:.2f} cold cache, {worst_warm:.2f} warm "
        "(aim: under 0.33)"
    )

    latency_rows, skipped = latency(insertions, all_cards[:3:2])  # rsa 1.7 and ec 1.8
    if latency_rows:
        table(
            f"card inserted -> CardInserted through pcscd + vpcd ({insertions} insertions)",
            latency_rows,
        )
    else:
        print(f"\nlatency skipped: {skipped}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "eid.json"
    out.write_text(
        json.dumps(
            {
                "traffic": rows,
                "worst_byte_ratio": worst,
                "latency": latency_rows,
                "latency_skipped": skipped,
            },
            indent=2,
        )
    )
    print(f"\nwritten: {out}")


if __name__ == "__main__":
    main()
