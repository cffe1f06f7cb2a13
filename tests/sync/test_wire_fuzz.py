"""Any JSON the server might send: the checks return values or raise ServerUnavailable only."""

from __future__ import annotations

import contextlib
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.sync import wire
from kiosk.sync.client import ServerUnavailable
from tests.sync.test_garbage import RESERVATION

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=20,
)
# Mostly right answers with one field replaced: the checks must look everywhere.
fields = st.sampled_from(sorted(RESERVATION))
broken_reservation = st.builds(
    lambda key, value: {**RESERVATION, key: value}, fields, json_values | scalars
)
pages = st.fixed_dictionaries(
    {
        "full": st.booleans() | scalars,
        "cursor": st.text(max_size=10) | scalars,
        "items": st.lists(broken_reservation | json_values, max_size=3) | scalars,
    }
)

READERS = [
    wire.reservations,
    wire.loans,
    wire.staff,
    wire.commands,
    lambda data: wire.acknowledged(data, ["a", "b"]),
]


def check_all(data: Any) -> None:
    for read in READERS:
        with contextlib.suppress(ServerUnavailable):
            read(data)


@settings(max_examples=150, deadline=None)
@given(json_values)
def test_arbitrary_json_never_escapes_as_another_error(data: Any) -> None:
    check_all(data)


@settings(max_examples=150, deadline=None)
@given(pages)
def test_almost_right_pages_are_checked_in_every_field(data: dict[str, Any]) -> None:
    check_all(data)
    try:
        page = wire.reservations(data)
    except ServerUnavailable:
        return
    for item in page.items:  # what passes is what the cache can hold
        assert isinstance(item.id, str) and isinstance(item.charging, bool)
        assert item.expires_at is None or item.expires_at.tzinfo is not None
