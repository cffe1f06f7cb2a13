"""Remote commands for a kiosk, queued by the back office (CLI or API).

A command is stored here and delivered in the kiosk's heartbeat answers until the kiosk
acknowledges it (``loanserver.api.kiosk``); this module only validates and queues.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from loanserver.models import COMMAND_KINDS, Command, utcnow
from loanserver.services import InvalidInput, _kiosk_by_name

# A compartment number is a small positive integer; the bound also keeps it inside
# PostgreSQL's INTEGER, so a typo is a clear 422 rather than a database error.
COMPARTMENT_MAX = 999
REASON_MAX = 200
# Which kinds take a compartment, and which need / allow a reason (docs/api.md).
NEEDS_COMPARTMENT = ("open", "out_of_service", "back_in_service")
NEEDS_REASON = ("open",)
ALLOWS_REASON = ("open", "out_of_service")


def _check(kind: str, compartment: int | None, reason: str | None) -> str | None:
    """The cleaned reason; InvalidInput for any combination the kiosk could not act on."""
    if kind not in COMMAND_KINDS:
        raise InvalidInput(f"a command is one of {', '.join(COMMAND_KINDS)} (got {kind[:40]!r})")
    if kind in NEEDS_COMPARTMENT:
        if compartment is None:
            raise InvalidInput(f"the {kind} command needs a compartment number")
        if isinstance(compartment, bool) or not 1 <= compartment <= COMPARTMENT_MAX:
            raise InvalidInput(f"a compartment number is 1 to {COMPARTMENT_MAX}")
    elif compartment is not None:
        raise InvalidInput(f"the {kind} command takes no compartment")
    if reason is not None:
        reason = reason.strip()
        if kind not in ALLOWS_REASON:
            raise InvalidInput(f"the {kind} command takes no reason")
        if not reason or len(reason) > REASON_MAX or not reason.isprintable():
            raise InvalidInput(f"a reason is 1 to {REASON_MAX} printable characters")
    elif kind in NEEDS_REASON:
        raise InvalidInput(f"the {kind} command needs a reason (it is shown and journalled)")
    return reason


def send_command(
    session: Session,
    kiosk_name: str,
    kind: str,
    compartment: int | None = None,
    reason: str | None = None,
) -> Command:
    """Queue a command for the kiosk named ``kiosk_name``; it goes out with the next heartbeat.

    ``open`` needs a compartment and a reason, ``out_of_service`` a compartment (a reason
    is optional), ``back_in_service`` a compartment, ``refresh`` nothing. An unknown kiosk
    is refused; a malformed command is InvalidInput. Nothing is stored on error.
    """
    reason = _check(kind, compartment, reason)
    kiosk = _kiosk_by_name(session, kiosk_name)
    command = Command(
        kiosk_id=kiosk.id,
        kind=kind,
        compartment=compartment,
        reason=reason,
        created_at=utcnow(),
    )
    session.add(command)
    session.commit()
    return command
