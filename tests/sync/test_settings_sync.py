"""The ``[sync]`` section: defaults, the example file, and helpful errors."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from kiosk.settings import ConfigError, load_settings, parse_settings_text
from kiosk.settings_sync import SyncSettings

ROOT = Path(__file__).resolve().parents[2]
HEAD = '[locker]\ndriver = "simulated"\n[[locker.compartments]]\nnumber = 1\n'


def errors_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_settings_text(HEAD + text)
    return info.value.errors


def test_without_a_sync_section_the_kiosk_runs_standalone() -> None:
    settings = parse_settings_text(HEAD)
    assert settings.sync == SyncSettings() and not settings.sync.enabled


def test_the_example_documents_every_key_with_its_default() -> None:
    example = load_settings(ROOT / "config" / "kiosk.example.toml").sync
    assert example.enabled and example.url == "https://loans.example.org"
    assert dataclasses.replace(example, url=None) == SyncSettings()


def test_times_in_milliseconds_become_seconds() -> None:
    text = '[sync]\nurl = "http://10.0.0.5:8000/"\nread_timeout_ms = 1500\nbatch_size = 50\n'
    sync = parse_settings_text(HEAD + text).sync
    assert sync.url == "http://10.0.0.5:8000"  # no trailing slash
    assert sync.read_timeout_s == 1.5 and sync.batch_size == 50


def test_typos_and_bad_values_are_all_reported_with_their_key() -> None:
    text = (
        '[sync]\nurl = "loans.example.org"\nbatch_size = 0\nheartbeat_interval_ms = "60"\n'
        "backoff_initial_ms = 5000\nbackoff_max_ms = 1000\npull_intervall_ms = 5\n"
    )
    assert errors_of(text) == [
        "sync.url: 'loans.example.org' is not an http(s) URL; e.g. https://loans.example.org "
        "(leave the key out to run without a loan server)",
        "sync.batch_size: 0 is out of range 1-500",
        "sync.heartbeat_interval_ms: expected a number, got '60'",
        "sync.backoff_max_ms: must not be shorter than backoff_initial_ms",
        "sync.pull_intervall_ms: unknown key (did you mean 'pull_interval_ms'?)",
    ]
