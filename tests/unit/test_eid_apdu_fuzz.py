"""CardSession against a card that answers anything: only HardwareError, always bounded."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hardware.eid import apdu
from hardware.eid.apdu import MAX_APDUS_PER_READ, CardSession
from hardware.errors import HardwareError

# Status words a card really gives, weighted in, plus any 16-bit value.
INTERESTING_SWS = [0x9000, 0x6B00, 0x6986, 0x6A82, 0x6A86, 0x6982, 0x6D00, 0x6E00]
status_words = st.one_of(
    st.sampled_from(INTERESTING_SWS),
    st.builds(lambda lo: 0x6100 | lo, st.integers(0, 255)),
    st.builds(lambda lo: 0x6C00 | lo, st.integers(0, 255)),
    st.integers(0, 0xFFFF),
)
answers = st.tuples(st.binary(max_size=300), status_words)
# A read of one file may legitimately need up to MAX_APDUS_PER_READ commands plus a few
# selects and one re-select per retry; anything beyond that is a loop.
APDU_BOUND = MAX_APDUS_PER_READ + 64


class ScriptedCard:
    """Answers from a list, then repeats the last answer forever (a stuck card)."""

    def __init__(self, script: list[tuple[bytes, int]]) -> None:
        self.script = script
        self.calls = 0

    def __call__(self, command: bytes) -> tuple[bytes, int]:
        assert self.calls < APDU_BOUND, "CardSession did not stop"
        answer = self.script[min(self.calls, len(self.script) - 1)]
        self.calls += 1
        return answer


def run(operation: str, session: CardSession) -> None:
    if operation == "read_file":
        session.read_file(apdu.IDENTITY)
    elif operation == "read_prefix":
        session.read_prefix(apdu.RRN_CERTIFICATE, 100)
    elif operation == "card_data":
        session.card_data()
    else:
        session.select(apdu.PHOTO)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    script=st.lists(answers, min_size=1, max_size=40),
    operation=st.sampled_from(["read_file", "read_prefix", "card_data", "select"]),
)
def test_random_answers_raise_only_hardware_errors(
    script: list[tuple[bytes, int]], operation: str
) -> None:
    card = ScriptedCard(script)
    session = CardSession(card)
    try:
        run(operation, session)
    except HardwareError as exc:
        message = str(exc)
        assert message and "\n" not in message
    assert card.calls == session.apdus <= APDU_BOUND


@pytest.mark.parametrize("sw", [0x6100, 0x61FF, 0x6C01, 0x6C00, 0x9000])
def test_stuck_card_never_loops(sw: int) -> None:
    """A card that answers the same thing forever: the session gives up in bounded APDUs."""
    card = ScriptedCard([(b"\x00", sw)])
    session = CardSession(card)
    with contextlib.suppress(HardwareError):
        session.read_file(apdu.PHOTO)
    assert card.calls <= APDU_BOUND
