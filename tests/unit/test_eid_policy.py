"""Card policy: expired, not yet valid and unwanted document types are refused."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from hardware.eid.identity import Identity, parse_identity
from hardware.eid.policy import CardDecision, check_card
from hardware.errors import ConfigurationError

SPECIMENS = Path(__file__).resolve().parents[2].parent / "shared" / "testdata" / "eid"
TODAY = dt.date(2026, 11, 22)


def _identity(
    begin: dt.date | None = dt.date(2020, 1, 1),
    end: dt.date | None = dt.date(2030, 1, 1),
    document_type: str = "1",
) -> Identity:
    return Identity(
        card_number="592000123456",
        chip_number=None,
        validity_begin=begin,
        validity_end=end,
        issuing_municipality="Brussel",
        national_number="71715100070",
        surname="Peeters",
        given_names="Alice",
        third_initial=None,
        nationality="Belg",
        birth_place="Gent",
        birth_date=None,
        sex="F",
        noble_condition=None,
        document_type=document_type,
        special_status=None,
        photo_hash=None,
    )


def test_valid_card_is_accepted() -> None:
    decision = check_card(_identity(), TODAY)
    assert decision == CardDecision(True, "card valid until 2030-01-01")


def test_last_day_of_validity_is_still_valid() -> None:
    assert check_card(_identity(end=TODAY), TODAY).accepted
    assert not check_card(_identity(end=TODAY - dt.timedelta(days=1)), TODAY).accepted


def test_expired_card_is_refused_with_its_end_date() -> None:
    decision = check_card(_identity(end=dt.date(2026, 3, 1)), TODAY)
    assert not decision.accepted
    assert decision.reason == "card expired on 2026-03-01"


def test_grace_period_accepts_recently_expired_cards_only() -> None:
    end = TODAY - dt.timedelta(days=30)
    inside = check_card(_identity(end=end), TODAY, grace_days=30)
    assert inside.accepted and "grace period" in inside.reason
    outside = check_card(_identity(end=end), TODAY, grace_days=29)
    assert not outside.accepted and "expired" in outside.reason


def test_not_yet_valid_card_is_refused() -> None:
    tomorrow = TODAY + dt.timedelta(days=1)
    decision = check_card(_identity(begin=tomorrow), TODAY, grace_days=10)
    assert not decision.accepted
    assert decision.reason == f"card not valid before {tomorrow.isoformat()}"
    assert check_card(_identity(begin=TODAY), TODAY).accepted


@pytest.mark.parametrize(("begin", "end"), [(None, dt.date(2030, 1, 1)), (TODAY, None)])
def test_missing_validity_dates_are_refused(begin, end) -> None:
    decision = check_card(_identity(begin=begin, end=end), TODAY)
    assert decision == CardDecision(False, "card has no validity dates")


def test_kids_id_refused_when_not_configured() -> None:
    decision = check_card(_identity(document_type="6"), TODAY, accepted_document_types={"1"})
    assert decision == CardDecision(False, "kids ID not accepted here")


@pytest.mark.parametrize("code", ["1", "01", " 1"])
def test_document_type_codes_compare_as_numbers(code: str) -> None:
    assert check_card(_identity(document_type=code), TODAY, accepted_document_types=["01"]).accepted


def test_foreigner_cards_accepted_when_listed() -> None:
    accepted = ["1", "6", "16"]
    assert check_card(
        _identity(document_type="16"), TODAY, accepted_document_types=accepted
    ).accepted
    refused = check_card(_identity(document_type="19"), TODAY, accepted_document_types=accepted)
    assert not refused.accepted and refused.reason.endswith("not accepted here")


def test_no_document_type_list_accepts_every_type() -> None:
    assert check_card(_identity(document_type="99"), TODAY).accepted


def test_reasons_hold_no_personal_data() -> None:
    identity = _identity(end=dt.date(2020, 1, 1), document_type="6")
    for kwargs in ({}, {"accepted_document_types": ["1"]}):
        reason = check_card(identity, TODAY, **kwargs).reason
        assert "71715100070" not in reason and "Peeters" not in reason


def test_negative_grace_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        check_card(_identity(), TODAY, grace_days=-1)


def test_specimen_cards_by_their_dates() -> None:
    if not SPECIMENS.is_dir():
        pytest.skip(f"Belgian eID specimen files not found at {SPECIMENS} (see its NOTICE.md)")
    alice = parse_identity((SPECIMENS / "Alice_Identity.tlv").read_bytes())
    decision = check_card(alice, TODAY, grace_days=90)
    assert decision == CardDecision(False, "card expired on 2014-07-23")
    # NOTICE.md says every specimen is expired, but the EC card's file says 05.07.2032.
    ec_card = parse_identity((SPECIMENS / "test-eid-v17-ec__identity.tlv").read_bytes())
    assert check_card(ec_card, TODAY) == CardDecision(True, "card valid until 2032-07-05")
    assert not check_card(ec_card, dt.date(2032, 7, 6)).accepted
