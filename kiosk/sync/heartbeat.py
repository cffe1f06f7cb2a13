"""The heartbeat: the cabinet's state to the server, remote commands back to the core.

The payload is read from the store: compartments, active alarms, the backlog (unsent
journal rows) and the program version. Each command of the answer becomes a
``RemoteCommand`` event for the core, which executes an id at most once ever
(``kiosk.core.remote``); a command the store already shows finished is not posted again
but acknowledged in the next heartbeat (``acked_commands``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from importlib import metadata
from typing import Any

from kiosk.core.events import RemoteCommand
from kiosk.core.ports import Store
from kiosk.core.remote import command_record
from kiosk.sync import wire
from kiosk.sync.client import SyncClient

log = logging.getLogger("kiosk.sync")


def kiosk_version() -> str:
    """The installed package's version."""
    try:
        return metadata.version("digibank-kiosk")
    except metadata.PackageNotFoundError:
        return "0.0.0+unknown"


def clean(text: str, limit: int) -> str:
    """One printable line of at most ``limit`` characters (the server refuses the rest).

    A refused heartbeat would be refused for ever, and commands would never arrive.
    """
    return "".join(c if c.isprintable() else " " for c in text)[:limit]


def payload(store: Store, acked: list[dict[str, Any]]) -> dict[str, Any]:
    """The heartbeat body of docs/api.md, read in one snapshot of the store."""
    with store.reading() as tx:
        compartments = [
            {
                "number": c.number,
                "status": c.status.value,
                "asset_tag": None if c.asset_tag is None else clean(c.asset_tag, 64),
                "note": clean(c.note, 200),
            }
            for c in tx.compartments()
        ]
        alarms = [
            {
                "id": a.id,
                "kind": a.kind.value,
                "compartment": a.compartment,
                "detail": clean(a.detail, 500),
                "raised_at": a.raised_at.isoformat(),
            }
            for a in tx.alarms(active_only=True)
        ]
    return {
        "compartments": compartments,
        "alarms": alarms,
        "versions": {"kiosk": kiosk_version()},
        "backlog": len(store.journal_entries(unsent_only=True)),
        "acked_commands": acked,
    }


class Heartbeat:
    """Sends heartbeats and hands their commands to ``post`` (the core's queue)."""

    def __init__(
        self, store: Store, client: SyncClient, post: Callable[[object], None] | None
    ) -> None:
        self.store = store
        self.client = client
        self.post = post
        self._acks: dict[int, dict[str, Any]] = {}  # finished commands the server still lists

    def beat(self) -> list[wire.Command]:
        """One heartbeat; returns the commands of the answer. ``ServerUnavailable`` on failure."""
        answer = self.client.post("/heartbeat", payload(self.store, list(self._acks.values())))
        commands = wire.commands(answer)
        listed = {c.id for c in commands}
        self._acks = {i: ack for i, ack in self._acks.items() if i in listed}
        with self.store.reading() as tx:
            records = {c.id: command_record(tx, c.id) for c in commands}
        for command in commands:
            record = records[command.id]
            if record is not None and record.finished:
                self._acks[command.id] = {
                    "id": command.id,
                    "result": record.state,
                    "detail": record.detail,
                }
            elif self.post is not None:
                self.post(
                    RemoteCommand(command.id, command.kind, command.compartment, command.reason)
                )
        if commands:
            log.info("heartbeat: %d remote command(s) listed", len(commands))
        return commands
