"""``digibank-kiosk eid ...`` as an installer runs it.

The first tests drive the command's own waiting and formatting over the simulated reader
(no PC/SC needed). The others run ``python -m kiosk eid ...`` as a subprocess against a
real pcscd with the vsmartcard virtual reader and the card emulator (the ``pcscd``
fixture of conftest.py); they skip with the reason when pcscd or vpcd are missing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hardware.eid.base import ReaderErrorKind
from hardware.eid.belpic import BelpicCard, CardFaults
from hardware.eid.cardfiles import CardFiles
from hardware.eid.cardmaker import TestPki, make_card
from hardware.eid.simulated import SimulatedReader
from hardware.errors import DeviceTimeout, DeviceUnavailable, HardwareError
from kiosk import eid_cli
from tests import eid_support

ROOT = Path(__file__).resolve().parents[2]
Completed = subprocess.CompletedProcess[str]

NUMBER = eid_cli.with_check_digits("850314123")  # a made-up resident
MASKED = "*******" + NUMBER[-4:]

# The documented keys of ``eid read --json`` (issue 3), in no particular order.
JSON_KEYS = {
    "card_number", "chip_number", "validity_begin", "validity_end", "issuing_municipality",
    "national_number", "surname", "given_names", "third_initial", "nationality",
    "birth_place", "birth_date", "sex", "noble_condition", "document_type",
    "document_type_name", "special_status", "photo_hash", "duplicate",
    "special_organisation", "member_of_family", "date_and_country_of_protection",
    "address", "verification", "card", "timing",
}  # fmt: skip


@pytest.fixture(scope="module")
def rsa_pki() -> TestPki:
    return TestPki.create("rsa")


def resident_card(pki: TestPki, **overrides: object) -> CardFiles:
    fields: dict[str, object] = {
        "national_number": NUMBER,
        "given_names": "Emma Louise",
        "surname": "Peeters",
        "birth_date_text": "14 MAAR 1985",
        "card_number": "592123456789",
        "validity_begin": dt.date(2024, 3, 1),
        "validity_end": dt.date(2034, 3, 1),
        "street_and_number": "Bibliotheekstraat 7",
        "postal_code": "1000",
        "municipality": "Brussel",
    }
    fields.update(overrides)
    return make_card(pki, **fields)  # type: ignore[arg-type]


@pytest.fixture
def simulated(rsa_pki: TestPki) -> Iterator[SimulatedReader]:
    reader = SimulatedReader(trusted_roots=[rsa_pki.root_certificate])
    yield reader
    reader.close()


# --- in process, over the simulated reader ------------------------------------------------


def test_read_json_has_exactly_the_documented_keys_and_masks(
    simulated: SimulatedReader, rsa_pki: TestPki
) -> None:
    simulated.insert(resident_card(rsa_pki))
    event = eid_cli.wait_for_card(simulated, 5.0)
    data = eid_cli.read_json(event)
    assert set(data) == JSON_KEYS
    assert data["national_number"] == MASKED
    assert NUMBER not in json.dumps(data)
    assert data["surname"] == "Peeters"
    assert data["birth_date"] == "1985-03-14"
    assert data["validity_end"] == "2034-03-01"
    assert data["document_type"] == "1" and data["document_type_name"] == "eID"
    assert data["address"] == {
        "street_and_number": "Bibliotheekstraat 7",
        "postal_code": "1000",
        "municipality": "Brussel",
    }
    assert data["verification"]["status"] == "verified"
    assert data["verification"]["algorithm"]
    assert data["card"] == {"atr": "3b9813400aa503010101ad1311", "applet_version": "1.7"}
    assert data["timing"]["apdus"] > 5 and data["timing"]["ms"] >= 0
    shown = eid_cli.read_json(event, show_national_number=True)
    assert shown["national_number"] == NUMBER


def test_read_text_masks_and_says_the_outcome(simulated: SimulatedReader, rsa_pki: TestPki) -> None:
    simulated.insert(resident_card(rsa_pki, validity_end=dt.date(2020, 1, 1)))
    event = eid_cli.wait_for_card(simulated, 5.0)
    text = eid_cli.read_text(event)
    assert NUMBER not in text
    assert f"national number: {MASKED}" in text
    assert "verification:    verified" in text
    assert "policy:          refused: card expired on 2020-01-01" in text
    assert "applet:          1.7, ATR 3b 98 13" in text
    assert NUMBER in eid_cli.read_text(event, show_national_number=True)


def test_no_card_within_the_timeout_is_one_line(simulated: SimulatedReader) -> None:
    with pytest.raises(DeviceTimeout, match=r"^no card inserted within 0.3 s$"):
        eid_cli.wait_for_card(simulated, 0.3)


@pytest.mark.parametrize(
    ("kind", "error", "advice"),
    [
        (ReaderErrorKind.PCSCD_UNAVAILABLE, DeviceUnavailable, "is pcscd running?"),
        (ReaderErrorKind.NOT_AN_EID, HardwareError, "insert a Belgian eID"),
        (ReaderErrorKind.CARD_REMOVED, HardwareError, "leave the card in"),
    ],
)
def test_a_reader_error_ends_the_wait_with_advice(
    simulated: SimulatedReader, kind: ReaderErrorKind, error: type, advice: str
) -> None:
    simulated.fail(kind, "it went wrong")
    with pytest.raises(error) as caught:
        eid_cli.wait_for_card(simulated, 5.0)
    assert "it went wrong" in str(caught.value) and advice in str(caught.value)
    assert "\n" not in str(caught.value)


def test_made_up_resident_has_a_valid_national_number() -> None:
    from hardware.eid.identity import national_number_valid

    assert national_number_valid(NUMBER)
    files, pki = eid_cli._demo_card("ec")
    assert files.rrn_certificate and pki.root_certificate_der


# --- as a subprocess, against a real pcscd with vpcd and the card emulator ---------------


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> Completed:
    return subprocess.run(
        [sys.executable, "-m", "kiosk", "eid", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=ROOT,
    )


def one_error_line(result: Completed) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_readers_lists_the_virtual_reader(pcscd: eid_support.Pcscd) -> None:
    result = run("readers")
    assert result.returncode == 0, result.stderr
    assert pcscd.reader in result.stdout.splitlines()


def test_read_json_of_a_generated_card(
    virtual_slot: eid_support.VirtualSlot, rsa_pki: TestPki, tmp_path: Path
) -> None:
    rsa_pki.write_trust_dir(tmp_path / "trust")
    virtual_slot.insert(resident_card(rsa_pki))
    result = run(
        "read", "--json", "--trust", str(tmp_path / "trust"), "--timeout", "10",
        "--reader", virtual_slot.reader,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) == JSON_KEYS
    assert data["national_number"] == MASKED
    assert NUMBER not in result.stdout + result.stderr
    assert (data["given_names"], data["surname"]) == ("Emma Louise", "Peeters")
    assert data["card_number"] == "592123456789"
    assert data["birth_date"] == "1985-03-14"
    assert data["address"]["municipality"] == "Brussel"
    assert data["verification"]["status"] == "verified"
    assert data["card"]["applet_version"] == "1.7"
    assert data["card"]["atr"] == "3b9813400aa503010101ad1311"
    assert data["timing"]["apdus"] > 5


def test_show_national_number_and_text_output(
    virtual_slot: eid_support.VirtualSlot, rsa_pki: TestPki
) -> None:
    virtual_slot.insert(resident_card(rsa_pki))
    shown = run("read", "--json", "--show-national-number", "--timeout", "10")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["national_number"] == NUMBER
    text = run("read", "--timeout", "10", "--photo")
    assert text.returncode == 0, text.stderr  # no --trust: untrusted is not a failure
    assert "photo:           read, 3000 bytes (not shown)" in text.stdout
    assert f"national number: {MASKED}" in text.stdout
    assert NUMBER not in text.stdout
    assert "verification:    untrusted_root" in text.stdout
    assert "APDUs" in text.stdout


def test_a_tampered_card_fails_verification(
    virtual_slot: eid_support.VirtualSlot, rsa_pki: TestPki, tmp_path: Path
) -> None:
    rsa_pki.write_trust_dir(tmp_path / "trust")
    files = resident_card(rsa_pki)
    identity = bytearray(files.identity)
    at = identity.index(b"Peeters")
    identity[at] = ord("B")  # one byte: "Beeters"
    virtual_slot.insert(dataclasses.replace(files, identity=bytes(identity)))
    result = run("read", "--json", "--trust", str(tmp_path / "trust"), "--timeout", "10")
    assert result.returncode == 1
    assert json.loads(result.stdout)["verification"]["status"] == "bad_signature"
    assert one_error_line(result).startswith("error: the card's files are not authentic")


def test_no_card_within_timeout_is_one_line(virtual_slot: eid_support.VirtualSlot) -> None:
    started = time.monotonic()
    result = run("read", "--timeout", "1")
    assert result.returncode == 3
    assert one_error_line(result) == "error: no card inserted within 1 s"
    assert result.stdout == ""
    assert time.monotonic() - started < 20


@pytest.mark.parametrize(
    ("faults", "atr", "expected"),
    [
        (CardFaults(remove_after_apdus=6), None, "(leave the card in until the read is done)"),
        (CardFaults(not_activated=True), None, "the card is not activated"),
        (
            CardFaults(not_activated=True),
            bytes.fromhex("3B8F8001804F0CA000000306"),
            "not a Belgian",
        ),
    ],
    ids=["pulled-mid-read", "not-activated", "bank-card"],
)
def test_a_card_that_cannot_be_read_is_one_line(
    virtual_slot: eid_support.VirtualSlot,
    rsa_pki: TestPki,
    faults: CardFaults,
    atr: bytes | None,
    expected: str,
) -> None:
    files = resident_card(rsa_pki)
    if atr is not None:
        files = dataclasses.replace(files, atr=atr)
    virtual_slot.insert(BelpicCard(files, faults=faults))
    result = run("read", "--json", "--timeout", "10")
    assert result.returncode == 3, result.stdout
    line = one_error_line(result)
    assert line.startswith(f"error: {virtual_slot.reader}: "), line
    assert expected in line
    assert result.stdout == ""


def test_unknown_reader_or_trust_dir_is_one_line(pcscd: eid_support.Pcscd, tmp_path: Path) -> None:
    result = run("read", "--reader", "ACS ACR38U", "--timeout", "1")
    assert result.returncode == 3
    line = one_error_line(result)
    assert line.startswith("error: no reader named 'ACS ACR38U'; readers: ")
    assert pcscd.reader in line
    result = run("read", "--trust", str(tmp_path / "missing"), "--timeout", "1")
    assert result.returncode == 2
    assert one_error_line(result).startswith("error: --trust: ")


def test_pcscd_not_running_is_one_line(tmp_path: Path) -> None:
    if eid_support.missing_tools():
        pytest.skip(eid_support.missing_tools())
    env = dict(os.environ, PCSCLITE_CSOCK_NAME=str(tmp_path / "nobody-here.comm"))
    for args in (["readers"], ["read", "--timeout", "5"]):
        result = run(*args, env=env)
        assert result.returncode == 3, result.stderr
        line = one_error_line(result)
        assert line.startswith("error: PC/SC service not available"), line
        assert "is pcscd running?" in line


def test_emulate_a_generated_card_and_read_it_verified(
    pcscd: eid_support.Pcscd, tmp_path: Path
) -> None:
    trust, card = tmp_path / "trust", tmp_path / "card"
    emulate = subprocess.Popen(
        [sys.executable, "-m", "kiosk", "eid", "emulate", "--generate", "ec",
         "--card", str(card), "--trust-out", str(trust), "--port", str(pcscd.port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    try:
        assert emulate.stdout is not None
        line = emulate.stdout.readline()
        assert line.startswith("emulating a made-up EC card (Emma Louise Peeters"), line
        assert (card / "identity.tlv").is_file()
        result = run("read", "--json", "--trust", str(trust), "--timeout", "10")
        assert result.returncode == 0, result.stderr
        data = json.loads(result.stdout)
        assert data["verification"]["status"] == "verified"
        assert "ECDSA" in (data["verification"]["algorithm"] or "")
        assert data["surname"] == "Peeters"
        assert data["national_number"].startswith("*******")
    finally:
        emulate.terminate()
        _, stderr = emulate.communicate(timeout=10)
    assert emulate.returncode == 0, stderr
    eid_support.wait_card(pcscd.reader, present=False)


def test_emulate_without_vpcd_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = run("emulate", "--generate", "rsa", "--port", str(port), timeout=30)
    assert result.returncode == 3
    assert "no vpcd virtual reader listening" in one_error_line(result)
