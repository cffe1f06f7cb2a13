"""CardSession.read_der: a padded certificate file is read only up to its DER length."""

from __future__ import annotations

import pytest

from hardware.eid import apdu
from hardware.eid.apdu import CardSession, der_total_length
from hardware.eid.belpic import BelpicCard
from hardware.eid.cardmaker import TestPki, make_card
from hardware.eid.verify import der_length_trim


@pytest.mark.parametrize(
    ("head", "length"),
    [
        (bytes.fromhex("3005"), 7),
        (bytes.fromhex("308181"), 132),
        (bytes.fromhex("30820373"), 4 + 0x373),
        (bytes.fromhex("3082"), None),  # too short to tell
        (bytes.fromhex("0482"), None),  # not a SEQUENCE
        (bytes.fromhex("3080"), None),  # indefinite length
        (b"", None),
    ],
)
def test_der_total_length(head: bytes, length: int | None) -> None:
    assert der_total_length(head) == length


@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_read_der_stops_at_the_certificate_and_reads_less(kind: str) -> None:
    pki = TestPki.create(kind)  # type: ignore[arg-type]
    files = make_card(
        pki,
        national_number="71010100129",
        given_names="An",
        surname="Peeters",
        applet_version=0x18 if kind == "ec" else 0x17,
    )
    assert files.rrn_certificate is not None
    whole = CardSession(BelpicCard(files).transmit)
    padded = whole.read_file(apdu.RRN_CERTIFICATE)
    trimmed = CardSession(BelpicCard(files).transmit)
    certificate = trimmed.read_der(apdu.RRN_CERTIFICATE)
    assert certificate == der_length_trim(files.rrn_certificate)
    assert len(certificate) < len(padded)
    assert trimmed.bytes_read < whole.bytes_read
