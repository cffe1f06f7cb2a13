"""Locker benchmarks: poll exchange time, door-change latency and idle CPU, with baselines.

Run: ``make bench`` (or ``.venv/bin/python bench/bench_locker.py [--quick]``).
Prints tables and writes bench/results/locker.json. Every figure stands next to a
baseline measured in the same run: the wire floor (bytes x 10 / baud) for timings, a
bare pyserial poll loop for CPU.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import resource
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import serial

from hardware.locker.base import DoorForced, LockerEvent
from hardware.locker.bus import SerialBus
from hardware.locker.codecs import get_codec
from hardware.locker.emulator import BoardEmulator
from hardware.locker.layout import BusSpec, CompartmentSpec, PollTiming
from hardware.locker.serial_locker import SerialLocker

RESULTS = Path(__file__).resolve().parent / "results"


def pct(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of values."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def poll_exchange(family: str, baud: int, rounds: int) -> dict[str, float]:
    """Time of one status request + reply through SerialBus, emulator wire time on."""
    codec = get_codec(family)
    address = codec.addresses.start
    with BoardEmulator(
        family,
        [address],
        channels=16 if family == "cu" else 24,
        baud=baud,
        wire_time=True,
        latency_s=0.002,
    ) as emulator:
        emulator.start_pty()
        spec = BusSpec("bench", emulator.url, family, (address,), baud=baud)
        bus = SerialBus(spec, codec)
        bus.open()
        try:
            request = codec.status_request(address)
            reply = codec.status_reply(bus.request(request, address=address))  # type: ignore[arg-type]
            times = []
            for _ in range(rounds):
                start = time.perf_counter()
                bus.request(request, address=address)
                times.append(time.perf_counter() - start)
        finally:
            bus.close()
    floor = (len(request) + len(reply)) * 10 / baud
    median = statistics.median(times)
    return {
        "family": family,
        "baud": baud,
        "bytes": len(request) + len(reply),
        "median_ms": median * 1000,
        "p95_ms": pct(times, 0.95) * 1000,
        "floor_ms": floor * 1000,
        "ratio": median / floor,
    }


def detection_latency(family: str, baud: int, events: int, interval_s: float) -> dict[str, float]:
    """From a door pulled open at the emulator to DoorForced at a subscriber."""
    codec = get_codec(family)
    boards = tuple(codec.addresses[:3])
    with BoardEmulator(
        family, boards, channels=8, baud=baud, wire_time=True, latency_s=0.002
    ) as emulator:
        emulator.start_pty()
        bus = BusSpec("bench", emulator.url, family, boards, baud=baud, channels=8)
        compartments = [
            CompartmentSpec(i * 8 + ch, bus="bench", board=b, channel=ch)
            for i, b in enumerate(boards)
            for ch in range(1, 9)
        ]
        poll = PollTiming(interval_s=interval_s, offline_after=3, stable_reads=2)
        locker = SerialLocker(compartments, [bus], poll=poll)
        seen = threading.Event()
        latencies: list[float] = []

        def on_event(event: LockerEvent) -> None:
            if isinstance(event, DoorForced):
                seen.set()

        locker.subscribe(on_event)
        locker.start()
        try:
            locker.refresh()
            for i in range(events):
                address, channel = boards[i % len(boards)], 1 + i % 8
                seen.clear()
                start = time.monotonic()
                emulator.open_door(address, channel)
                if seen.wait(5):
                    latencies.append(time.monotonic() - start)
                emulator.close_door(address, channel)
                # a random phase against the poller, as a real door has
                time.sleep(interval_s * 4 + random.uniform(0, interval_s))
        finally:
            locker.close()
    expected = interval_s * (poll.stable_reads - 0.5)  # on average half an interval to the
    median = statistics.median(latencies)  # first read, then one more interval to confirm
    return {
        "family": family,
        "baud": baud,
        "interval_ms": interval_s * 1000,
        "median_ms": median * 1000,
        "p95_ms": pct(latencies, 0.95) * 1000,
        "expected_ms": expected * 1000,
        "ratio": median / expected,
        "missed": events - len(latencies),
    }


def idle_cpu(seconds: float) -> dict[str, float]:
    """CPU share of the idle poll loop: 3 boards at 4 polls/s each, emulator in another
    process; baseline: a bare pyserial loop doing the same exchanges."""
    emulator = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kiosk",
            "locker",
            "emulate",
            "--family",
            "cu",
            "--boards",
            "0,1,2",
            "--channels",
            "16",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert emulator.stdout is not None
        port = emulator.stdout.readline().strip().removeprefix("port: ")
        bare = _cpu_of(lambda: _bare_loop(port, seconds), seconds)
        locker = _cpu_of(lambda: _locker_loop(port, seconds), seconds)
    finally:
        emulator.terminate()
        emulator.wait(5)
    return {
        "boards": 3,
        "polls_per_board_per_s": 4,
        "seconds": seconds,
        "locker_cpu_pct": locker,
        "bare_pyserial_cpu_pct": bare,
        "ratio": locker / bare if bare else float("nan"),
    }


def _cpu_of(work, seconds: float) -> float:  # type: ignore[no-untyped-def]
    before = resource.getrusage(resource.RUSAGE_SELF)
    wall = time.monotonic()
    work()
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return 100 * cpu / (time.monotonic() - wall)


def _bare_loop(port: str, seconds: float) -> None:
    codec = get_codec("cu")
    with serial.Serial(port, 19200, timeout=0.3) as ser:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            cycle = time.monotonic()
            for address in (0, 1, 2):
                ser.reset_input_buffer()
                ser.write(codec.status_request(address))
                ser.read(9)
            time.sleep(max(0.0, 0.25 - (time.monotonic() - cycle)))


def _locker_loop(port: str, seconds: float) -> None:
    bus = BusSpec("bench", port, "cu", (0, 1, 2), baud=19200)
    compartments = [
        CompartmentSpec(b * 16 + ch, bus="bench", board=b, channel=ch)
        for b in range(3)
        for ch in range(1, 17)
    ]
    locker = SerialLocker(compartments, [bus], poll=PollTiming(interval_s=0.25))
    locker.start()
    try:
        time.sleep(seconds)
    finally:
        locker.close()


def table(title: str, rows: list[dict[str, float]]) -> None:
    """Print rows as an aligned table."""
    print(f"\n{title}")
    keys = list(rows[0])
    print("  ".join(f"{k:>14}" for k in keys))
    for row in rows:
        print(
            "  ".join(f"{v:>14.2f}" if isinstance(v, float) else f"{v!s:>14}" for v in row.values())
        )


def main() -> None:
    """Run every benchmark and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run)")
    quick = parser.parse_args().quick
    logging.basicConfig(level=logging.ERROR)  # forced-door warnings are the point here
    rounds, events, seconds = (30, 6, 3.0) if quick else (300, 30, 20.0)
    exchanges = [poll_exchange(f, b, rounds) for f in ("cu", "8a") for b in (9600, 19200)]
    table("poll exchange (one status request + reply), emulator wire time on", exchanges)
    latency = [detection_latency(f, b, events, 0.25) for f in ("cu", "8a") for b in (9600, 19200)]
    table("door-change detection latency (3 boards, poll 250 ms, stable_reads 2)", latency)
    cpu = [idle_cpu(seconds)]
    table("idle poll loop CPU (% of one core)", cpu)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "locker.json"
    out.write_text(json.dumps({"exchange": exchanges, "latency": latency, "cpu": cpu}, indent=2))
    print(f"\nwritten: {out}")


if __name__ == "__main__":
    main()
