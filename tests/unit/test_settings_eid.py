"""The [eid] settings: defaults, typed values, and every error with its key path and hint."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiosk.settings import (
    DEMO_CONFIG,
    ConfigError,
    EidSettings,
    Settings,
    load_settings,
    parse_settings_text,
)

ROOT = Path(__file__).resolve().parents[2]

CABINET = """
[locker]
driver = "simulated"
[[locker.compartments]]
number = 1
"""


def errors_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_settings_text(CABINET + text, "test.toml")
    return caught.value.errors


def eid_of(text: str) -> EidSettings:
    return parse_settings_text(CABINET + text, "test.toml").eid


def test_without_an_eid_section_the_defaults_apply() -> None:
    eid = eid_of("")
    assert eid == EidSettings()
    assert eid.driver == "simulated"
    assert eid.accept_unverified is False
    assert eid.read_photo is False
    assert eid.grace_days == 0
    assert eid.accepted_document_types is None  # every document type
    assert eid.read_timeout_s == 10.0


def test_settings_built_in_code_keep_working_without_eid() -> None:
    demo = load_settings(DEMO_CONFIG)
    settings = Settings(demo.kiosk, demo.logging, demo.locker)
    assert settings.eid == EidSettings()


def test_demo_and_example_configs_carry_an_eid_section() -> None:
    demo = load_settings(DEMO_CONFIG).eid
    assert demo.driver == "simulated"
    assert demo.accept_unverified is True
    example = load_settings(ROOT / "config" / "kiosk.example.toml").eid
    assert example.driver == "pcsc"
    assert example.pepper_file == "/etc/digibank-kiosk/pepper"
    assert example.trust_dir == "/etc/digibank-kiosk/eid-roots"
    assert example.accept_unverified is False
    assert example.read_timeout_s == 10.0


def test_a_full_section_arrives_typed_and_in_seconds() -> None:
    eid = eid_of("""
[eid]
driver = "pcsc"
reader = "ACS ACR38U 00 00"
trust_dir = "/etc/roots"
accept_unverified = false
read_photo = true
pepper_file = "/etc/pepper"
grace_days = 14
accepted_document_types = ["1", "01", "6"]
read_timeout_ms = 2500
""")
    assert eid == EidSettings(
        driver="pcsc",
        reader="ACS ACR38U 00 00",
        trust_dir="/etc/roots",
        accept_unverified=False,
        read_photo=True,
        pepper_file="/etc/pepper",
        grace_days=14,
        accepted_document_types=("1", "01", "6"),
        read_timeout_s=2.5,
    )


def test_pcsc_without_pepper_file_is_an_error_that_says_why() -> None:
    errors = errors_of('[eid]\ndriver = "pcsc"\ntrust_dir = "/etc/roots"\n')
    assert len(errors) == 1
    assert errors[0].startswith("eid.pepper_file: missing; the pcsc reader needs the secret pepper")
    blank = errors_of('[eid]\ndriver = "pcsc"\ntrust_dir = "/r"\npepper_file = "  "\n')
    assert blank[0].startswith("eid.pepper_file: missing")


def test_simulated_driver_needs_no_pepper() -> None:
    assert eid_of('[eid]\ndriver = "simulated"\n').pepper_file == ""


def test_pcsc_that_can_verify_nothing_and_accepts_nothing_unverified() -> None:
    errors = errors_of('[eid]\ndriver = "pcsc"\npepper_file = "/etc/pepper"\n')
    assert errors == [
        "eid.trust_dir: missing; without trusted root certificates no card can be verified "
        "and every card is refused: set trust_dir, or accept_unverified = true"
    ]
    eid = eid_of('[eid]\ndriver = "pcsc"\npepper_file = "/p"\naccept_unverified = true\n')
    assert eid.accept_unverified is True and eid.trust_dir == ""


def test_every_eid_error_at_once_with_key_paths_and_hints() -> None:
    errors = errors_of("""
[eid]
driver = "pcscd"
read_foto = true
accept_unverified = "yes"
grace_days = -1
read_timeout_ms = 100
accepted_document_types = [1, "5", "x1", "16"]
reader = 3
""")
    assert "eid.driver: 'pcscd' is not one of 'pcsc', 'simulated' (did you mean 'pcsc'?)" in errors
    assert "eid.read_foto: unknown key (did you mean 'read_photo'?)" in errors
    assert "eid.accept_unverified: expected true or false, got 'yes'" in errors
    assert "eid.grace_days: -1 is out of range 0-3650" in errors
    assert "eid.read_timeout_ms: 100.0 is out of range 500-120000" in errors
    assert "eid.accepted_document_types[0]: expected text, got 1 (a whole number)" in errors
    assert (
        "eid.accepted_document_types[1]: '5' is not a document type code; known codes: "
        "1, 6-8, 11-23, 27, 28, 31-36, 61-69" in errors
    )
    assert any(
        e.startswith("eid.accepted_document_types[2]: 'x1' is not a document") for e in errors
    )
    assert "eid.reader: expected text, got 3 (a whole number)" in errors
    assert len(errors) == 9  # "16" is a valid code


def test_an_empty_document_type_list_would_refuse_everyone() -> None:
    errors = errors_of("[eid]\naccepted_document_types = []\n")
    assert errors == [
        "eid.accepted_document_types: empty: no card would be accepted; leave the key out "
        "to accept every document type"
    ]


def test_eid_must_be_a_table() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_settings_text('eid = "pcsc"\n' + CABINET)
    assert caught.value.errors == ["eid: expected a table, got 'pcsc'"]
