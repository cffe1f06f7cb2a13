"""Pure rules of the core: compartment choice, wrong-code lockout, reservation states, codes."""

from __future__ import annotations

import datetime as dt

import pytest

from kiosk.core.codes import check_code, hash_code
from kiosk.core.model import Compartment, CompartmentStatus, Reservation, ReservationStatus
from kiosk.core.policy import CodeGuard, CorePolicy, choose_compartment, reservation_state

EMPTY = CompartmentStatus.EMPTY


def comp(number: int, size: str = "M", charging: bool = False, **kw: object) -> Compartment:
    return Compartment(number=number, size=size, charging=charging, **kw)  # type: ignore[arg-type]


class TestChooseCompartment:
    def test_smallest_that_fits(self) -> None:
        cabinet = [comp(1, "L"), comp(2, "S"), comp(3, "M")]
        assert choose_compartment(cabinet, size="M", needs_charging=False).number == 3
        assert choose_compartment(cabinet, size="S", needs_charging=False).number == 2
        assert choose_compartment(cabinet, size="L", needs_charging=False).number == 1

    def test_too_big_for_every_free_compartment(self) -> None:
        assert (
            choose_compartment([comp(1, "S"), comp(2, "M")], size="L", needs_charging=False) is None
        )

    def test_charging_preferred_when_needed_and_kept_free_otherwise(self) -> None:
        cabinet = [comp(1, "M"), comp(2, "M", charging=True)]
        assert choose_compartment(cabinet, size="M", needs_charging=True).number == 2
        assert choose_compartment(cabinet, size="M", needs_charging=False).number == 1

    def test_charging_device_still_taken_in_without_a_charging_compartment(self) -> None:
        assert choose_compartment([comp(4, "M")], size="M", needs_charging=True).number == 4

    def test_spreads_wear_among_equals(self) -> None:
        cabinet = [comp(1, opened_count=9), comp(2, opened_count=3), comp(3, opened_count=3)]
        assert choose_compartment(cabinet, size="M", needs_charging=False).number == 2

    def test_only_empty_and_usable_compartments(self) -> None:
        cabinet = [
            comp(1, status=CompartmentStatus.LOADED),
            comp(2, status=CompartmentStatus.OUT_OF_SERVICE),
            comp(3, status=CompartmentStatus.UNKNOWN),
            comp(4),
            comp(5),
        ]
        assert choose_compartment(cabinet, size="M", needs_charging=False, unusable={4}).number == 5
        assert choose_compartment(cabinet, size=None, needs_charging=False, unusable={4, 5}) is None


class TestCodeGuard:
    policy = CorePolicy(code_attempts=5, code_window_s=900, lockout_s=60, lockout_max_s=300)

    def test_locks_after_five_wrong_codes_within_the_window(self) -> None:
        guard, now = CodeGuard(), 1000.0
        for i in range(4):
            guard = guard.failed(now + i, self.policy)
            assert not guard.locked(now + i)
        assert guard.attempts_left(now + 4, self.policy) == 1
        guard = guard.failed(now + 4, self.policy)
        assert guard.locked(now + 5) and not guard.locked(now + 4 + 60)

    def test_old_failures_fall_out_of_the_window(self) -> None:
        guard = CodeGuard()
        for i in range(4):
            guard = guard.failed(1000.0 + i, self.policy)
        guard = guard.failed(1000.0 + 901 + 3, self.policy)  # the first four are too old
        assert not guard.locked(1905.0)

    def test_back_off_grows_and_is_capped(self) -> None:
        guard, now, lengths = CodeGuard(), 0.0, []
        for _ in range(5):
            for _ in range(5):
                guard = guard.failed(now, self.policy)
            lengths.append(guard.locked_until - now)
            now = guard.locked_until + 1
        assert lengths == [60, 120, 240, 300, 300]

    def test_survives_its_stored_form_and_ignores_garbage(self) -> None:
        guard = CodeGuard().failed(5.0, self.policy)
        assert CodeGuard.from_text(guard.to_text()) == guard
        assert CodeGuard.from_text("{not json") == CodeGuard()
        assert CodeGuard.from_text('{"failures": "x"}') == CodeGuard()


def test_reservation_states() -> None:
    now = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)
    loaded = Reservation("R", "LAP-1", ReservationStatus.LOADED, compartment=3)
    assert reservation_state(loaded, now) == "ready"
    assert reservation_state(Reservation("R", "LAP-1"), now) == "not_ready"
    late = Reservation(
        "R", "LAP-1", ReservationStatus.LOADED, compartment=3, expires_at=now - dt.timedelta(1)
    )
    assert reservation_state(late, now) == "expired"
    assert reservation_state(Reservation("R", "X", ReservationStatus.CANCELLED), now) == "gone"


class TestCodes:
    def test_right_and_wrong_code(self) -> None:
        stored = hash_code("123456")
        assert check_code("123456", stored)
        assert not check_code("123457", stored)
        assert "123456" not in stored

    def test_each_hash_has_its_own_salt(self) -> None:
        assert hash_code("123456") != hash_code("123456")

    @pytest.mark.parametrize(
        "stored",
        [None, "", "garbage", "md5$1$00$00", "pbkdf2-sha256$x$00$00", "pbkdf2-sha256$1$zz$00"],
    )
    def test_malformed_stored_hash_never_matches(self, stored: str | None) -> None:
        assert not check_code("123456", stored)
