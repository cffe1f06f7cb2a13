"""Settings: every error at once, with key paths, expected forms and hints."""

from __future__ import annotations

from pathlib import Path

import pytest

from hardware.locker.layout import Feedback
from kiosk.settings import DEMO_CONFIG, ConfigError, load_settings, parse_settings_text

ROOT = Path(__file__).resolve().parents[2]


def errors_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_settings_text(text, "test.toml")
    return caught.value.errors


SERIAL_HEAD = """
[locker]
driver = "serial"
[[locker.buses]]
name = "main"
port = "/dev/ttyUSB0"
family = "cu"
boards = [0, 1]
"""


def test_demo_and_example_configs_are_valid() -> None:
    demo = load_settings(DEMO_CONFIG)
    assert demo.locker.driver == "serial"
    assert len(demo.locker.compartments) == 16
    example = load_settings(ROOT / "config" / "kiosk.example.toml")
    assert [c.number for c in example.locker.compartments] == [1, 2]
    assert example.locker.compartments[0].size == "L"
    assert example.locker.compartments[1].bus == "main"  # the only bus is the default


def test_channel_out_of_range_names_index_and_board() -> None:
    compartments = "".join(
        f"[[locker.compartments]]\nnumber = {n}\nboard = {0 if n <= 12 else 1}\n"
        f"channel = {n if n <= 12 else 17}\n"
        for n in range(1, 14)
    )
    errors = errors_of(SERIAL_HEAD + compartments)
    assert errors == ["locker.compartments[12].channel: 17 is out of range 1-16 for board 1"]


def test_every_error_is_reported_at_once() -> None:
    text = """
[kiosk]
language = "de"
[logging]
level = "LOUD"
[locker]
driver = "serial"
[locker.pol]
interval_ms = 100
[locker.open]
wach_ms = 100
[[locker.buses]]
port = "/dev/ttyUSB0"
family = "cuu"
baud = "9600"
boards = [0, 99]
"""
    errors = errors_of(text)
    joined = "\n".join(errors)
    assert "kiosk.language: 'de' is not one of 'nl', 'fr', 'en'" in joined
    assert "logging.level: 'LOUD' is not one of" in joined
    assert "locker.pol: unknown key (did you mean 'poll'?)" in errors
    assert "locker.open.wach_ms: unknown key (did you mean 'watch_ms'?)" in errors
    assert "locker.buses[0].family: 'cuu' is not one of 'cu', '8a' (did you mean 'cu'?)" in errors
    assert "locker.buses[0].baud: expected a whole number, got '9600'" in errors
    assert len(errors) >= 6


def test_two_compartments_on_one_channel_and_gaps() -> None:
    text = (
        SERIAL_HEAD
        + """
[[locker.compartments]]
number = 1
board = 0
channel = 3
[[locker.compartments]]
number = 3
board = 0
channel = 3
"""
    )
    errors = errors_of(text)
    assert (
        "locker.compartments: compartments 1 and 3 both use bus 'main' board 0 channel 3" in errors
    )
    assert any("without gaps; missing [2]" in e for e in errors)


def test_board_not_on_bus_and_address_out_of_family_range() -> None:
    text = """
[locker]
driver = "serial"
[[locker.buses]]
port = "/dev/ttyUSB0"
family = "8a"
boards = [0, 1]
[[locker.compartments]]
number = 1
board = 2
channel = 1
"""
    errors = errors_of(text)
    assert "locker.buses[0].boards[0]: 0 is out of range 1-31 for 8a boards" in errors
    assert "locker.compartments[0].board: 2 is not on bus 'main' (boards: 0, 1)" in errors


def test_unknown_bus_and_missing_port() -> None:
    text = """
[locker]
driver = "serial"
[[locker.buses]]
name = "a"
boards = [0]
[[locker.buses]]
name = "b"
port = "/dev/ttyUSB1"
boards = [0]
[[locker.compartments]]
number = 1
bus = "c"
board = 0
channel = 1
"""
    errors = errors_of(text)
    assert "locker.buses[0].port: missing; expected text" in errors
    assert "locker.compartments[0].bus: 'c' is not a bus; buses: a, b" in errors


def test_auto_numbering_across_boards() -> None:
    settings = parse_settings_text(SERIAL_HEAD)
    compartments = settings.locker.compartments
    assert len(compartments) == 32
    assert (compartments[0].board, compartments[0].channel) == (0, 1)
    assert (compartments[16].number, compartments[16].board, compartments[16].channel) == (17, 1, 1)


def test_gpio_cabinet_rules() -> None:
    text = """
[locker]
driver = "gpio"
[locker.gpio]
relay_active_high = false
[[locker.compartments]]
number = 1
relay_pin = 17
door_pin = 27
[[locker.compartments]]
number = 2
relay_pin = "GPIO27"
[[locker.compartments]]
number = 3
door_sensor = false
item_sensor = true
relay_pin = 17
"""
    errors = errors_of(text)
    assert (
        "locker.compartments[1].door_pin: missing; set door_sensor = false for a door "
        "without a switch" in errors
    )
    assert any(e.startswith("locker.compartments[2].item_pin: missing") for e in errors)
    assert "locker.compartments: compartments 1 and 3 both use pin 17" in errors


def test_values_arrive_typed_and_in_seconds() -> None:
    settings = parse_settings_text(
        SERIAL_HEAD
        + """
feedback = "open_when_set"
reply_timeout_ms = 150
[locker.open]
watch_ms = 1500
retry = false
"""
    )
    bus = settings.locker.buses[0]
    assert bus.feedback is Feedback.OPEN_WHEN_SET
    assert bus.reply_timeout_s == pytest.approx(0.15)
    assert settings.locker.open_timing.watch_s == pytest.approx(1.5)
    assert settings.locker.open_timing.retry is False


def test_true_is_not_a_number_and_tables_must_be_tables() -> None:
    errors = errors_of("locker = 3\n[kiosk]\nname = true\n")
    assert "locker: expected a table, got 3 (a whole number)" in errors
    assert "kiosk.name: expected text, got true" in errors


def test_toml_syntax_error_is_one_clear_line() -> None:
    errors = errors_of('[locker\ndriver = "serial"\n')
    assert len(errors) == 1
    assert errors[0].startswith("not valid TOML:")
    assert "line 1" in errors[0]


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path / "missing.toml")
    assert caught.value.errors == ["cannot read the file: No such file or directory"]
    bad = tmp_path / "latin1.toml"
    bad.write_bytes(b'[kiosk]\nname = "caf\xe9"\n')
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_settings(bad)
