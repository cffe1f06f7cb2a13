"""Remote commands for kiosks: delivered in every heartbeat answer until acknowledged.

A command is acknowledged either in a heartbeat (``acked_commands``) or by a
``remote_command`` transaction; either is enough, and the first result is kept (the kiosk
executes a command once and may report it twice).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from loanserver.models import COMMAND_RESULTS, Command
from loanserver.payload import clip

DETAIL_MAX = 200


def acknowledge(
    session: Session, kiosk_id: int, command_id: int, result: str, detail: str, at: datetime
) -> bool:
    """Mark this kiosk's command done; False when the kiosk has no such command.

    Does not commit (the caller's transaction holds the whole request).
    """
    if result not in COMMAND_RESULTS:
        raise ValueError(f"result must be one of {', '.join(COMMAND_RESULTS)}")
    command = session.get(Command, command_id)
    if command is None or command.kiosk_id != kiosk_id:
        return False
    if command.done_at is None:
        command.done_at = at
        command.result = result
        command.detail = clip(detail, DETAIL_MAX) or None
    return True


def pending(session: Session, kiosk_id: int, now: datetime) -> list[Command]:
    """Every command of the kiosk not yet done, oldest first; marks first deliveries.

    Does not commit.
    """
    commands = list(
        session.scalars(
            select(Command)
            .where(Command.kiosk_id == kiosk_id, Command.done_at.is_(None))
            .order_by(Command.created_at, Command.id)
        )
    )
    for command in commands:
        if command.delivered_at is None:
            command.delivered_at = now
    return commands
