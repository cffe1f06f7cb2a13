"""``SyncClient``: HTTP + JSON to the loan server, every failure as ``ServerUnavailable``.

One ``requests.Session`` (kept-alive connections), ``(connect, read)`` timeouts on every
call, ``verify=`` the configured CA bundle, ``Authorization: Bearer`` from the token file
(read once, when the client is built). A connection error, a timeout, a 5xx, a 401, any
other unexpected status and a body that is not a JSON object all raise
``ServerUnavailable(reason)``: the caller keeps its data and tries again later. The
reason never holds a body, the token or a query string (codes and keys stay out of logs).
"""

from __future__ import annotations

import json
import logging
import re
import time
from pathlib import Path
from typing import Any

import requests
import urllib3

from kiosk.settings import ConfigError
from kiosk.settings_sync import SyncSettings

log = logging.getLogger("kiosk.sync")

_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")]+)")
MAX_BODY = 32 * 1024 * 1024  # an answer larger than this is refused (a broken proxy ...)
CHUNK = 64 * 1024
TOTAL_READS = 3  # a whole answer may take connect + this many read timeouts, no more


class ServerUnavailable(Exception):
    """The loan server could not be used for this call; ``reason`` says why in one line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Refused(ServerUnavailable):
    """The server read the request and refuses its content (400, 413, 422): resending the
    same rows will never help, unlike every other ``ServerUnavailable``."""


REFUSAL_STATUSES = frozenset({400, 413, 422})


def read_token(path: str) -> str:
    """The bearer token in ``path`` (surrounding blanks dropped); ConfigError when unusable."""
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(
            path, [f"sync.token_file: cannot read the token: {exc.strerror or exc}"]
        ) from None
    except UnicodeDecodeError:
        raise ConfigError(path, ["sync.token_file: the file is not UTF-8 text"]) from None
    if not token or any(c.isspace() for c in token):
        raise ConfigError(
            path,
            [
                "sync.token_file: the file must hold the kiosk's token on one line "
                "(printed once by `loanserver admin add-kiosk`)"
            ],
        )
    return token


class SyncClient:
    """Calls of the kiosk API (``/api/v1/kiosk/...``) with the kiosk's token."""

    def __init__(self, settings: SyncSettings, *, token: str | None = None) -> None:
        if settings.url is None:
            raise ConfigError("[sync]", ["sync.url: missing; no loan server configured"])
        if settings.ca_bundle is not None and not Path(settings.ca_bundle).is_file():
            raise ConfigError(
                settings.ca_bundle, ["sync.ca_bundle: the file does not exist or is not a file"]
            )
        self.base = settings.url.rstrip("/") + "/api/v1/kiosk"
        self._timeout = (settings.connect_timeout_s, settings.read_timeout_s)
        self._verify: bool | str = settings.ca_bundle or True
        self._token = token if token is not None else read_token(settings.token_file)
        self._session = requests.Session()
        self._session.headers["Authorization"] = f"Bearer {self._token}"
        self._session.headers["Accept"] = "application/json"
        self._session.trust_env = False  # no proxy or netrc from the environment: explicit only

    def get(self, path: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        """GET ``path`` (below /api/v1/kiosk); the answer's JSON object."""
        return self._call("GET", path, params=params)

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST ``body`` as JSON to ``path``; the answer's JSON object."""
        return self._call("POST", path, body=body)

    def close(self) -> None:
        """Close the pooled connections."""
        self._session.close()

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        what = f"{method} {path}"
        try:
            status, content = self._exchange(method, path, params, body)
        except (requests.Timeout, urllib3.exceptions.TimeoutError):
            raise ServerUnavailable(f"{what}: no answer within the timeout") from None
        except requests.exceptions.SSLError as exc:
            raise ServerUnavailable(f"{what}: TLS failed: {_short(exc)}") from None
        except requests.ConnectionError as exc:
            raise ServerUnavailable(f"{what}: cannot connect: {_cause(exc)}") from None
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            # urllib3 read errors (a cut connection mid-body) surface as these.
            raise ServerUnavailable(f"{what}: {type(exc).__name__}: {_short(exc)}") from None
        except _TooMuch as exc:
            raise ServerUnavailable(f"{what}: {exc}") from None
        if status == 401:
            raise ServerUnavailable(f"{what}: 401: the server does not know this kiosk's token")
        if status in REFUSAL_STATUSES:
            raise Refused(f"{what}: HTTP {status}{_detail(content)}")
        if status != 200:
            raise ServerUnavailable(f"{what}: HTTP {status}{_detail(content)}")
        try:
            data = json.loads(content)
        except ValueError:
            raise ServerUnavailable(f"{what}: the answer is not JSON") from None
        if not isinstance(data, dict):
            raise ServerUnavailable(f"{what}: the answer is not a JSON object")
        return data

    def _exchange(
        self,
        method: str,
        path: str,
        params: dict[str, str] | None,
        body: dict[str, Any] | None,
    ) -> tuple[int, bytes]:
        """Status and body, read in chunks: bounded in size and in total time."""
        deadline = time.monotonic() + self._timeout[0] + TOTAL_READS * self._timeout[1]
        with self._session.request(
            method,
            self.base + path,
            params=params,
            json=body,
            timeout=self._timeout,
            verify=self._verify,
            allow_redirects=False,
            stream=True,
        ) as response:
            chunks: list[bytes] = []
            size = 0
            while chunk := response.raw.read1(CHUNK, decode_content=True):  # what has arrived
                size += len(chunk)
                if size > MAX_BODY:
                    raise _TooMuch(f"the answer is larger than {MAX_BODY} bytes")
                if time.monotonic() > deadline:  # a server dripping bytes slowly
                    raise _TooMuch("the answer took too long to arrive")
                chunks.append(chunk)
            return response.status_code, b"".join(chunks)


class _TooMuch(Exception):
    """An answer too large or too slow (turned into ServerUnavailable)."""


def _short(exc: BaseException) -> str:
    """A one-line, bounded description of a library exception."""
    return " ".join(str(exc).split())[:200]


def _cause(exc: BaseException) -> str:
    """The OS reason inside urllib3's long retry message ("Connection refused" ...)."""
    found = _ERRNO.search(str(exc))
    return found.group(1).strip() if found else _short(exc)


def _detail(content: bytes) -> str:
    """``: <detail>`` of a JSON error body ({"detail": "..."}) when it is short text."""
    try:
        detail = json.loads(content).get("detail")
    except (ValueError, AttributeError):
        return ""
    return f": {' '.join(detail.split())[:200]}" if isinstance(detail, str) else ""
