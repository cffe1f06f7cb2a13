"""SerialLocker end to end: the real driver and bus against the board emulator.

Each cabinet has two boards with two compartments each; compartment 4 is wired to
channel 16 so the second status group is exercised. Waiting is always bounded polling
(``wait_for``/``EventRecorder.wait_for``), never a bare sleep used as an assertion.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from hardware.errors import ConfigurationError, DeviceBusy
from hardware.locker.base import (
    BoardOffline,
    BoardOnline,
    DoorClosed,
    DoorForced,
    DoorOpened,
    DoorState,
    ItemChanged,
    OpenOutcome,
)
from hardware.locker.bus import SerialBus
from hardware.locker.codecs import get_codec
from hardware.locker.emulator import BoardEmulator
from hardware.locker.layout import BusSpec, CompartmentSpec, Feedback, OpenTiming, PollTiming
from hardware.locker.serial_locker import SerialLocker
from tests.contract.rig import EventRecorder, wait_for, wait_ready

pytestmark = pytest.mark.timeout(30)

OPEN = OpenTiming(watch_s=0.4, cooldown_s=0.2, check_interval_s=0.02)
POLL = PollTiming(interval_s=0.03, offline_after=3, stable_reads=2)
FAMILIES = {"cu": (19200, (0, 1)), "8a": (9600, (1, 2))}
DOOR_EVENTS = (DoorOpened, DoorClosed, DoorForced)


@dataclass
class Cabinet:
    """A started locker on an emulator; ``where[n]`` is (board, channel) of compartment n."""

    family: str
    emulator: BoardEmulator
    locker: SerialLocker
    where: dict[int, tuple[int, int]]
    events: EventRecorder
    extra: list[BoardEmulator] = field(default_factory=list)

    def door(self, n: int) -> DoorState:
        return self.locker.states().compartment(n).door

    def door_events(self, n: int | None = None) -> list[object]:
        return [
            e
            for e in self.events.events
            if isinstance(e, DOOR_EVENTS) and (n is None or e.compartment == n)
        ]


def wiring(boards: tuple[int, int]) -> dict[int, tuple[int, int]]:
    return {1: (boards[0], 1), 2: (boards[0], 2), 3: (boards[1], 1), 4: (boards[1], 16)}


def build(
    family: str,
    *,
    tcp: bool = False,
    feedback: Feedback = Feedback.CLOSED_WHEN_SET,
    emulator_feedback: Feedback | None = None,
    ready: bool = True,
    echo: bool = False,
    pulse_ms: int | None = None,
) -> Cabinet:
    baud, boards = FAMILIES[family]
    emulator = BoardEmulator(
        family, boards, baud=baud, feedback=emulator_feedback or feedback, echo=echo
    )
    port = f"socket://127.0.0.1:{emulator.start_tcp()}" if tcp else emulator.start_pty()
    where = wiring(boards)
    specs = [
        CompartmentSpec(n, bus="main", board=a, channel=ch, item_sensor=(n == 1))
        for n, (a, ch) in where.items()
    ]
    bus = BusSpec(
        "main",
        port,
        family,
        boards,
        baud=baud,
        feedback=feedback,
        reply_timeout_s=0.1,
        pulse_ms=pulse_ms,
    )
    locker = SerialLocker(specs, [bus], OPEN, POLL)
    events = EventRecorder(locker)
    try:
        locker.start()
        if ready:
            wait_ready(locker)
    except BaseException:
        locker.close()
        emulator.stop()
        raise
    return Cabinet(family, emulator, locker, where, events)


@pytest.fixture(params=sorted(FAMILIES))
def cab(request: pytest.FixtureRequest) -> Iterator[Cabinet]:
    cabinet = build(request.param)
    try:
        yield cabinet
    finally:
        cabinet.locker.close()
        cabinet.emulator.stop()


# --- opening -------------------------------------------------------------------------------


def test_open_reports_timings_then_door_closes(cab: Cabinet) -> None:
    result = cab.locker.open(1, "txn-1")
    assert result.outcome is OpenOutcome.OPENED, result
    assert result.pulses == 1 and result.door_before is DoorState.CLOSED
    assert result.first_pulse_ms is not None and result.opened_ms is not None
    assert cab.emulator.pulses(*cab.where[1]) == 1
    assert all(cab.emulator.pulses(*cab.where[n]) == 0 for n in (2, 3, 4))
    cab.events.wait_for(DoorOpened, compartment=1)
    cab.emulator.close_door(*cab.where[1])
    cab.events.wait_for(DoorClosed, compartment=1)
    assert cab.door(1) is DoorState.CLOSED
    assert not cab.events.of(DoorForced)


def test_pulse_length_is_left_alone_unless_configured(cab: Cabinet) -> None:
    boards = FAMILIES[cab.family][1]
    assert [cab.emulator.pulse_ms(a) for a in boards] == [None, None]


@pytest.mark.parametrize("family", ["cu", "8a"])
def test_pulse_length_is_set_where_the_family_can(family: str) -> None:
    cab = build(family, pulse_ms=700)
    try:
        boards = FAMILIES[family][1]
        expected = 700 if family == "cu" else None  # 8a boards have no such command
        assert [cab.emulator.pulse_ms(a) for a in boards] == [expected, expected]
    finally:
        cab.locker.close()
        cab.emulator.stop()


def test_high_channel_on_second_board(cab: Cabinet) -> None:
    assert cab.locker.open(4, "txn-16").outcome is OpenOutcome.OPENED
    assert cab.emulator.door_open(*cab.where[4])
    assert cab.emulator.pulses(*cab.where[4]) == 1
    assert cab.door(3) is DoorState.CLOSED  # its neighbour did not move


def test_door_opened_by_hand_is_forced(cab: Cabinet) -> None:
    cab.emulator.open_door(*cab.where[3])
    cab.events.wait_for(DoorForced, compartment=3)
    assert cab.door(3) is DoorState.OPEN
    assert not cab.events.of(DoorOpened)
    assert cab.emulator.pulses(*cab.where[3]) == 0


def test_jammed_after_exactly_two_pulses(cab: Cabinet) -> None:
    cab.emulator.jam(*cab.where[2])
    result = cab.locker.open(2, "txn-jam")
    assert result.outcome is OpenOutcome.JAMMED, result
    assert result.pulses == 2
    assert cab.emulator.pulses(*cab.where[2]) == 2
    assert cab.door(2) is DoorState.CLOSED


def test_already_open_is_still_pulsed(cab: Cabinet) -> None:
    cab.emulator.open_door(*cab.where[2])
    wait_for(lambda: cab.door(2) is DoorState.OPEN, message="door 2 seen open")
    result = cab.locker.open(2, "txn-open-already")
    assert result.outcome is OpenOutcome.ALREADY_OPEN, result
    assert cab.emulator.pulses(*cab.where[2]) == 1


def test_cooldown_between_two_pulses_of_one_lock(cab: Cabinet) -> None:
    assert cab.locker.open(3, "txn-a").outcome is OpenOutcome.OPENED
    assert cab.locker.open(3, "txn-b").outcome is OpenOutcome.ALREADY_OPEN
    times = cab.emulator.pulse_times(*cab.where[3])
    assert len(times) == 2
    assert times[1] - times[0] >= OPEN.cooldown_s


def test_same_txn_pulses_once(cab: Cabinet) -> None:
    first = cab.locker.open(2, "txn-same")
    cab.emulator.close_door(*cab.where[2])
    wait_for(lambda: cab.door(2) is DoorState.CLOSED, message="door 2 closed again")
    assert cab.locker.open(2, "txn-same") == first
    assert cab.emulator.pulses(*cab.where[2]) == 1


# --- board health and bad replies ---------------------------------------------------------


def test_board_offline_after_failed_polls_and_back(cab: Cabinet) -> None:
    board = cab.where[3][0]
    switched_off = time.monotonic()
    cab.emulator.set_offline(board)
    offline = cab.events.wait_for(BoardOffline, address=board)
    # Three failed polls need two poll intervals between the first and the third at least.
    assert offline.at - switched_off >= POLL.interval_s * (POLL.offline_after - 1) / 2
    state = cab.locker.states()
    assert state.compartment(3).door is DoorState.UNKNOWN
    assert state.compartment(4).door is DoorState.UNKNOWN
    assert state.compartment(1).door is DoorState.CLOSED  # the other board is unaffected
    assert not [b for b in state.boards if b.address == board and b.online]
    result = cab.locker.open(3, "txn-dead")
    assert result.outcome is OpenOutcome.BOARD_OFFLINE and result.pulses == 0
    cab.emulator.set_offline(board, False)
    cab.events.wait_for(BoardOnline, address=board)
    wait_for(lambda: cab.door(3) is DoorState.CLOSED, message="door 3 known again")
    assert cab.emulator.pulses(*cab.where[3]) == 0
    assert not cab.door_events()  # first sight after coming back is not a movement


@pytest.mark.parametrize("fault", ["garbled", "wrong_address", "short_reply"])
def test_bad_replies_never_give_a_false_door_state(cab: Cabinet, fault: str) -> None:
    board = cab.where[1][0]
    getattr(cab.emulator, f"set_{fault}")(board, True)
    cab.events.wait_for(BoardOffline, address=board)
    assert {cab.door(1), cab.door(2)} == {DoorState.UNKNOWN}
    assert cab.locker.open(1, f"txn-{fault}").outcome is OpenOutcome.BOARD_OFFLINE
    assert cab.emulator.pulses(*cab.where[1]) == 0
    getattr(cab.emulator, f"set_{fault}")(board, False)
    cab.events.wait_for(BoardOnline, address=board)
    wait_for(lambda: cab.door(1) is DoorState.CLOSED, message="door 1 known again")
    assert not cab.door_events()  # no door ever "moved"


def test_chatter_does_not_storm(cab: Cabinet) -> None:
    where = cab.where[2]
    cab.emulator.set_chatter(*where)  # every status read is a coin toss for this switch
    seen_at = cab.emulator.requests_seen()
    # ~40 status reads of the chattering board (the poller reads both boards in turn).
    wait_for(lambda: cab.emulator.requests_seen() >= seen_at + 80, message="80 more requests")
    cab.emulator.set_chatter(*where, False)
    # Unfiltered, 40 coin tosses change the door ~20 times; the stable-reads filter leaves
    # ~6.5 (more than 13 in 1 of ~3000 runs). Fewer would need a stronger filter in base.
    assert len(cab.door_events(2)) <= 13, cab.door_events(2)
    assert not cab.door_events(1)  # the neighbour on the same board stays quiet


def test_item_sensor(cab: Cabinet) -> None:
    if cab.family != "cu":
        pytest.skip("family 8a boards report no item sensors")
    cab.emulator.set_item(*cab.where[1], True)
    cab.events.wait_for(ItemChanged, compartment=1, present=True)
    assert cab.locker.states().compartment(1).item is True
    cab.emulator.set_item(*cab.where[1], False)
    cab.events.wait_for(ItemChanged, compartment=1, present=False)
    assert cab.locker.states().compartment(1).item is False


# --- polarity, transports, several buses --------------------------------------------------


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_polarity_open_when_set(family: str) -> None:
    cabinet = build(family, feedback=Feedback.OPEN_WHEN_SET)
    try:
        assert cabinet.locker.open(2, "txn-pol").outcome is OpenOutcome.OPENED
        cabinet.emulator.close_door(*cabinet.where[2])
        cabinet.events.wait_for(DoorClosed, compartment=2)
    finally:
        cabinet.locker.close()
        cabinet.emulator.stop()


def test_wrong_polarity_shows_every_door_inverted() -> None:
    cabinet = build("cu", emulator_feedback=Feedback.OPEN_WHEN_SET, ready=False)
    try:
        wait_for(
            lambda: all(c.door is DoorState.OPEN for c in cabinet.locker.states().compartments),
            message="every (closed) door read as open",
        )
    finally:
        cabinet.locker.close()
        cabinet.emulator.stop()


def test_over_tcp() -> None:
    cabinet = build("cu", tcp=True)
    try:
        assert cabinet.locker.open(3, "txn-tcp").outcome is OpenOutcome.OPENED
        cabinet.emulator.close_door(*cabinet.where[3])
        cabinet.events.wait_for(DoorClosed, compartment=3)
    finally:
        cabinet.locker.close()
        cabinet.emulator.stop()


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_adapter_that_echoes(family: str) -> None:
    cabinet = build(family, echo=True)  # a half-duplex adapter hears its own requests
    try:
        assert cabinet.locker.open(4, "txn-echo").outcome is OpenOutcome.OPENED
        cabinet.emulator.set_offline(cabinet.where[1][0])
        cabinet.events.wait_for(BoardOffline, address=cabinet.where[1][0])
        # Only our echo comes back now: it must never pass for a status.
        assert {cabinet.door(1), cabinet.door(2)} == {DoorState.UNKNOWN}
        assert not cabinet.events.of(DoorForced)
    finally:
        cabinet.locker.close()
        cabinet.emulator.stop()


def test_unplugged_adapter_comes_back(tmp_path: Path) -> None:
    link = tmp_path / "usb-rs485"  # a udev by-id link survives a replug; the pts does not
    first = BoardEmulator("cu", (0, 1), baud=19200)
    link.symlink_to(first.start_pty())
    specs = [CompartmentSpec(n, bus="main", board=0, channel=n) for n in (1, 2)]
    bus = BusSpec("main", str(link), "cu", (0, 1), baud=19200, reply_timeout_s=0.1)
    locker = SerialLocker(specs, [bus], OPEN, POLL)
    events = EventRecorder(locker)
    second: BoardEmulator | None = None
    try:
        locker.start()
        wait_ready(locker)
        first.stop()  # unplugged
        link.unlink()
        events.wait_for(BoardOffline, address=0)
        events.wait_for(BoardOffline, address=1)
        assert locker.states().compartment(1).door is DoorState.UNKNOWN
        second = BoardEmulator("cu", (0, 1), baud=19200)
        link.symlink_to(second.start_pty())  # plugged in again
        second.open_door(0, 2)  # moved while we could not see
        wait_for(lambda: len(events.of(BoardOnline, address=0)) == 2, timeout=5.0, message="back")
        wait_for(lambda: locker.states().compartment(2).door is DoorState.OPEN, message="door 2")
        assert locker.open(1, "txn-replug").outcome is OpenOutcome.OPENED
        assert not events.of(DoorForced)  # first sight after the gap is not a movement
    finally:
        locker.close()
        first.stop()
        if second is not None:
            second.stop()


def _two_bus_locker(main_port: str, second_port: str) -> SerialLocker:
    baud, boards = FAMILIES["cu"]
    specs = [
        CompartmentSpec(n, bus="main", board=a, channel=ch) for n, (a, ch) in wiring(boards).items()
    ] + [CompartmentSpec(5, bus="second", board=0, channel=1)]
    buses = [
        BusSpec("main", main_port, "cu", boards, baud=baud, reply_timeout_s=0.1),
        BusSpec("second", second_port, "cu", (0, 1), baud=baud, reply_timeout_s=0.1),
    ]
    return SerialLocker(specs, buses, OPEN, POLL)


@pytest.mark.parametrize("second", ["missing port", "silent boards"])
def test_dead_second_bus_does_not_stop_the_first(second: str) -> None:
    main = BoardEmulator("cu", FAMILIES["cu"][1], baud=19200)
    other = BoardEmulator("cu", (0, 1), baud=19200)
    try:
        other_port = other.start_pty() if second == "silent boards" else "/dev/ttyNOSUCHLOCKER"
        other.set_offline(0)
        other.set_offline(1)
        locker = _two_bus_locker(main.start_pty(), other_port)
        events = EventRecorder(locker)
        locker.start()  # a missing port is not fatal
        try:
            events.wait_for(BoardOffline, bus="second", address=0)
            events.wait_for(BoardOffline, bus="second", address=1)
            wait_for(
                lambda: all(
                    locker.states().compartment(n).door is DoorState.CLOSED for n in (1, 2, 3, 4)
                ),
                message="main bus doors known",
            )
            main.open_door(0, 2)
            events.wait_for(DoorForced, compartment=2, timeout=1.0)
            result = locker.open(1, "txn-main")
            assert result.outcome is OpenOutcome.OPENED, result
            assert result.total_ms < 400
            assert locker.open(5, "txn-second").outcome is OpenOutcome.BOARD_OFFLINE
        finally:
            locker.close()
    finally:
        main.stop()
        other.stop()


def test_port_held_by_another_process_fails_start_at_once() -> None:
    emulator = BoardEmulator("cu", (0, 1), baud=19200)
    try:
        port = emulator.start_pty()
        holder = SerialBus(BusSpec("x", port, "cu", (0, 1)), get_codec("cu"))
        holder.open()
        try:
            locker = _two_bus_locker(port, port.replace("pts", "nonexistent"))
            with pytest.raises(DeviceBusy, match=port):
                locker.start()
            locker.close()
        finally:
            holder.close()
    finally:
        emulator.stop()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"bus": "nowhere"}, "unknown bus"),
        ({"board": 7}, "not listed"),
        ({"channel": 0}, "not in 1..16"),
        ({"channel": 17}, "not in 1..16"),
        ({"bus": None}, "bus, board and channel"),
    ],
)
def test_wiring_is_checked_at_construction(change: dict[str, object], message: str) -> None:
    values: dict[str, object] = {"bus": "main", "board": 0, "channel": 1, **change}
    specs = [CompartmentSpec(1, **values), CompartmentSpec(2, bus="main", board=0, channel=2)]  # type: ignore[arg-type]
    bus = BusSpec("main", "/dev/null", "cu", (0, 1))
    with pytest.raises(ConfigurationError, match=message):
        SerialLocker(specs, [bus])


def test_two_compartments_on_one_lock_are_refused() -> None:
    specs = [CompartmentSpec(n, bus="main", board=1, channel=3) for n in (1, 2)]
    with pytest.raises(ConfigurationError, match="already compartment 1"):
        SerialLocker(specs, [BusSpec("main", "/dev/null", "8a", (1,), baud=9600)])
