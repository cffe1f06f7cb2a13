"""The ``[sync]`` section: the link to the central loan server (see kiosk.example.toml).

Without ``url`` the kiosk has no sync link and works standalone (demo, tests). Times are
``*_ms`` keys in the file, like every other section, and seconds in ``SyncSettings``.
The token and CA files are only named here; ``kiosk.sync.client`` reads them when the
link is built, so a missing token file stops the link with a clear message.
"""

from __future__ import annotations

from dataclasses import dataclass

from kiosk.settings_cabinet import ms
from kiosk.tomlcheck import Table

DEFAULT_TOKEN_FILE = "/etc/digibank-kiosk/server-token"
MAX_BATCH = 500  # docs/api.md: a transactions batch holds 1 to 500 rows


@dataclass(frozen=True)
class SyncSettings:
    """How the kiosk reaches the loan server (``[sync]``); ``url`` None: no sync link."""

    url: str | None = None  # base URL, e.g. https://loans.example.org (no trailing slash)
    token_file: str = DEFAULT_TOKEN_FILE  # the kiosk's bearer token, one line
    ca_bundle: str | None = None  # PEM file of CAs to trust; None: the system's CAs
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 20.0
    batch_size: int = MAX_BATCH  # journal rows per POST
    pull_interval_s: float = 300.0  # reservations, loans and staff
    heartbeat_interval_s: float = 60.0
    backoff_initial_s: float = 2.0  # first wait after a failure (full jitter) ...
    backoff_max_s: float = 300.0  # ... doubling up to this
    unreachable_alarm_after_s: float = 1800.0  # no answer this long: alarm for staff

    @property
    def enabled(self) -> bool:
        """True when a server is configured."""
        return self.url is not None


def read_sync(t: Table) -> SyncSettings:
    """``[sync]``: the server URL, credentials, timeouts and intervals."""
    url = t.get("url", str, "").strip().rstrip("/")
    t.check(
        not url or url.startswith(("https://", "http://")),
        "url",
        f"{url!r} is not an http(s) URL; e.g. https://loans.example.org (leave the key out "
        "to run without a loan server)",
    )
    token_file = t.get("token_file", str, DEFAULT_TOKEN_FILE)
    t.check(bool(token_file.strip()), "token_file", "empty; name the file holding the token")
    ca_bundle = t.get("ca_bundle", str, "").strip()
    settings = SyncSettings(
        url=url or None,
        token_file=token_file,
        ca_bundle=ca_bundle or None,
        connect_timeout_s=ms(t, "connect_timeout_ms", 5000, 100, 60000),
        read_timeout_s=ms(t, "read_timeout_ms", 20000, 100, 300000),
        batch_size=t.get("batch_size", int, MAX_BATCH, low=1, high=MAX_BATCH),
        pull_interval_s=ms(t, "pull_interval_ms", 300000, 1000, 86400000),
        heartbeat_interval_s=ms(t, "heartbeat_interval_ms", 60000, 1000, 3600000),
        backoff_initial_s=ms(t, "backoff_initial_ms", 2000, 10, 600000),
        backoff_max_s=ms(t, "backoff_max_ms", 300000, 10, 86400000),
        unreachable_alarm_after_s=ms(t, "unreachable_alarm_after_ms", 1800000, 0, 7 * 86400000),
    )
    t.check(
        settings.backoff_max_s >= settings.backoff_initial_s,
        "backoff_max_ms",
        "must not be shorter than backoff_initial_ms",
    )
    t.finish()
    return settings
