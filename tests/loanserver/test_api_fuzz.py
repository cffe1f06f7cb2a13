"""Fuzzing the kiosk API and health from the app's own OpenAPI schema (schemathesis).

Requests are generated from the schema, valid ones (positive) and near misses (negative),
and sent with a valid kiosk token, so validation and the transaction application behind
it are exercised over real ASGI on the real database. Whatever is sent, the server never
answers 5xx, and a valid token never gets 401 (in the valid requests). A small world
(devices, reservations, a pending command) lets generated ids sometimes hit real rows.
A second test sends the kinds the server applies with payloads of random JSON values
under the keys the kiosk core writes: applying them never fails either.

schemathesis' pytest integration (``from_fixture``) does not run under pytest 9, so the
operations' strategies are driven by Hypothesis directly, inside one test per database.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import APIOperation, Case, GenerationMode
from sqlalchemy import Engine

from loanserver.api.app import create_app
from loanserver.apply import HANDLERS
from loanserver.models import Command, Transaction
from tests.loanserver.kiosk_support import TX_PATH, World, open_world

EXAMPLES = {GenerationMode.POSITIVE: 25, GenerationMode.NEGATIVE: 10}  # per operation
FUZZED = r"^/(api/v1/kiosk/|health)"


@pytest.fixture
def fuzz_world(engine: Engine) -> Iterator[World]:
    with open_world(engine) as world:
        with world.session() as session:
            session.add(Command(kiosk_id=world.kiosk_id, kind="open", compartment=1))
            session.commit()
        yield world


def test_no_input_makes_the_kiosk_api_fail(fuzz_world: World) -> None:
    app = create_app(fuzz_world.engine)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app).include(path_regex=FUZZED)
    operations = [result.ok() for result in schema.get_all_operations()]
    labels = sorted(f"{op.method.upper()} {op.path}" for op in operations)
    assert len(labels) == 6, labels  # five kiosk routes and health
    headers = {"Authorization": f"Bearer {fuzz_world.token}"}
    calls: dict[int, int] = {}

    for operation in operations:
        for mode, examples in EXAMPLES.items():
            _fuzz(operation, mode, examples, headers, calls)
    assert calls.get(200, 0) > 20, calls  # the valid requests did get through
    assert calls.get(422, 0) > 5, calls  # and the near misses were refused
    assert fuzz_world.count(Transaction) > 0


def _fuzz(
    operation: APIOperation,
    mode: GenerationMode,
    examples: int,
    headers: dict[str, str],
    calls: dict[int, int],
) -> None:
    """Send ``examples`` generated requests of ``operation``; none may fail the server."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def call(case: Case) -> None:
        response = case.call(headers=headers)
        calls[response.status_code] = calls.get(response.status_code, 0) + 1
        label = f"{case.method} {case.path} ({mode.value})"
        assert response.status_code < 500, (label, response.text[:300])
        if mode is GenerationMode.POSITIVE:  # a near miss may spoil the token on purpose
            assert response.status_code != 401, label

    try:
        call()
    except Unsatisfiable:
        # Nothing can be wrong in a request without parameters (GET /health): no near miss.
        if mode is GenerationMode.POSITIVE:
            raise


PAYLOAD_KEYS = [
    "reservation_id",
    "asset_tag",
    "compartment",
    "borrower_key",
    "loan_id",
    "started_at",
    "due_date",
    "unknown",
    "alarm_id",
    "kind",
    "detail",
    "command_id",
    "result",
]
ODD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=80),  # NUL and other control characters included
    st.sampled_from(["1", "2", "LT-1", "LT-2", "2026-12-10", "2026-11-26T15:00:00+14:00"]),
    st.sampled_from(["0001-01-01T00:00:00-12:00", "9999-12-31", "done", "x" * 70, "\x00"]),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
ROWS = st.lists(
    st.tuples(
        st.sampled_from(sorted(HANDLERS)),
        st.dictionaries(st.sampled_from(PAYLOAD_KEYS), ODD_VALUES, max_size=len(PAYLOAD_KEYS)),
    ),
    min_size=1,
    max_size=6,
)


def test_applying_any_payload_never_fails(fuzz_world: World) -> None:
    @given(rows=ROWS)
    @settings(
        max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    def send(rows: list[tuple[str, dict[str, object]]]) -> None:
        batch = [fuzz_world.row(kind, payload) for kind, payload in rows]
        answer = fuzz_world.client.post(
            TX_PATH, headers=fuzz_world.auth, json={"transactions": batch}
        )
        assert answer.status_code == 200, (rows, answer.text[:300])
        assert answer.json()["accepted"] == [row["uuid"] for row in batch]

    send()
