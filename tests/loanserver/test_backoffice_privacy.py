"""The national register number through the back-office API: turned into the key at once,
never echoed (a 422 included), never logged, never stored; refused without a pepper.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from loanserver.models import Borrower
from tests.loanserver.backoffice_support import (
    ADMIN,
    AUTH,
    DIGITS,
    NUMBER,
    admin_client,
    count,
    every_value,
)
from tests.loanserver.backoffice_support import api as api  # the fixture

BAD_NUMBER_BODIES: list[dict[str, Any]] = [
    {"national_number": int(DIGITS)},  # a number, not a string
    {"national_number": DIGITS, "code_only": True},  # both: the service refuses
    {"national_number": DIGITS + "0" * 30},  # too long for the schema
    {"national_number": "85.07.30-033.6"},  # 10 digits: the service refuses
    {"national_number": DIGITS, "first_name": ""},  # another field is wrong
    {"national_number": DIGITS, "nationalnumber": DIGITS},  # unknown field
    {"national_number": DIGITS, "language": "de"},
]


def test_a_refused_national_number_is_never_echoed_nor_logged(
    api: TestClient,
    engine: Engine,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    for body in BAD_NUMBER_BODIES:
        answer = api.post(ADMIN + "/borrowers", json=body, headers=AUTH)
        assert answer.status_code == 422, body
        assert answer.json()["detail"]  # says what is wrong ...
        captured = capfd.readouterr()
        for text in (answer.text, caplog.text, captured.out, captured.err):
            for form in (DIGITS, "85.07.30", "033.6", DIGITS[:9]):
                assert form not in text, body  # ... without the value
    assert count(engine, Borrower) == 0


def test_a_validation_error_names_the_field(api: TestClient) -> None:
    answer = api.post(ADMIN + "/borrowers", json={"national_number": 1}, headers=AUTH)
    assert answer.json()["detail"][0]["loc"] == ["body", "national_number"]
    answer = api.post(ADMIN + "/borrowers", json={"national_number": "1"}, headers=AUTH)
    assert answer.json()["detail"] == "a national register number has 11 digits"


def test_a_registered_number_is_nowhere_but_as_its_key(
    api: TestClient,
    engine: Engine,
    database_url: str,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    answers = [
        api.post(ADMIN + "/borrowers", json={"national_number": NUMBER}, headers=AUTH),
        api.post(ADMIN + "/borrowers", json={"national_number": DIGITS}, headers=AUTH),
        api.post(
            ADMIN + "/staff",
            json={"name": "A", "pin": "1234", "national_number": NUMBER},
            headers=AUTH,
        ),
    ]
    assert [a.status_code for a in answers] == [201, 409, 201]
    captured = capfd.readouterr()
    texts = [a.text for a in answers] + [
        caplog.text,
        captured.out,
        captured.err,
        every_value(engine),
    ]
    for text in texts:
        assert DIGITS not in text and NUMBER not in text
    if database_url.startswith("sqlite:///"):
        engine.dispose()  # everything written to the file
        for file in Path(database_url.removeprefix("sqlite:///")).parent.glob("*.db*"):
            assert DIGITS.encode() not in file.read_bytes()


def test_without_a_pepper_a_number_is_503_and_code_only_still_works(engine: Engine) -> None:
    with admin_client(engine, pepper=None) as client:
        answer = client.post(ADMIN + "/borrowers", json={"national_number": NUMBER}, headers=AUTH)
        assert answer.status_code == 503 and "--pepper-file" in answer.json()["detail"]
        staff = client.post(
            ADMIN + "/staff",
            json={"name": "A", "pin": "1234", "national_number": NUMBER},
            headers=AUTH,
        )
        assert staff.status_code == 503
        assert count(engine, Borrower) == 0
        code_only = client.post(ADMIN + "/borrowers", json={"code_only": True}, headers=AUTH)
        assert code_only.status_code == 201
