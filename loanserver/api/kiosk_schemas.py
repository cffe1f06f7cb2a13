"""Request and answer bodies of the kiosk API (docs/api.md), as pydantic models.

Request models refuse unknown fields (``extra="forbid"``): a typo on either side shows at
once as a 422. Numbers that reach an INTEGER column are bounded to 32 bits, so PostgreSQL
never sees a value it cannot store (that would be a 5xx the kiosk retries for ever).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    field_validator,
)

INT32_MAX = 2**31 - 1
BATCH_MAX = 500
PAYLOAD_MAX_BYTES = 16 * 1024
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
# Plain printable text (no control characters: PostgreSQL refuses NUL in a text column).
TEXT_PATTERN = r"^[^\x00-\x1f\x7f]*$"

# Answers carry times as ``2026-11-26T15:04:05+00:00`` (docs/api.md), not pydantic's "Z".
UtcTime = Annotated[
    datetime, PlainSerializer(lambda v: v.isoformat(), return_type=str, when_used="json")
]
Int32 = Annotated[int, Field(ge=0, le=INT32_MAX)]
Positive32 = Annotated[int, Field(ge=1, le=INT32_MAX)]


def _text(max_length: int) -> Any:
    """A one-line printable string of at most ``max_length`` characters."""
    return Field(default="", max_length=max_length, pattern=TEXT_PATTERN)


class _Request(BaseModel):
    """Base of request bodies: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")


class TransactionIn(_Request):
    """One journal row of a kiosk."""

    uuid: str = Field(pattern=UUID_PATTERN, description="idempotency key (8-4-4-4-12 uuid)")
    seq: Positive32
    kind: str = Field(pattern=r"^[a-z_]{1,40}$")
    # None: the kiosk had no wall-clock time for the row (its journal allows that).
    occurred_at: AwareDatetime | None = None
    boot: Int32 = 0
    payload: dict[str, Any] = Field(default_factory=dict)

    @field_validator("occurred_at")
    @classmethod
    def _in_utc_range(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        try:
            return value.astimezone(UTC)
        except OverflowError:
            raise ValueError("occurred_at is out of range") from None

    @field_validator("payload")
    @classmethod
    def _payload_size(cls, value: dict[str, Any]) -> dict[str, Any]:
        size = len(json.dumps(value, ensure_ascii=False).encode("utf-8"))
        if size > PAYLOAD_MAX_BYTES:
            raise ValueError(f"payload is {size} bytes; at most {PAYLOAD_MAX_BYTES} allowed")
        return value


class TransactionBatch(_Request):
    """A batch of 1 to 500 journal rows, in the kiosk's sequence order."""

    transactions: list[TransactionIn] = Field(min_length=1, max_length=BATCH_MAX)


class TransactionsAnswer(BaseModel):
    """Every uuid of the batch, in exactly one list; both mean "stored"."""

    accepted: list[str]
    duplicates: list[str]


class CompartmentState(_Request):
    """One compartment as the kiosk sees it."""

    number: Positive32
    status: str = Field(max_length=40, pattern=TEXT_PATTERN)
    asset_tag: str | None = Field(default=None, max_length=64, pattern=TEXT_PATTERN)
    note: str = _text(200)


class KioskAlarm(_Request):
    """An active alarm of the kiosk."""

    id: str = Field(max_length=64, pattern=TEXT_PATTERN)
    kind: str = Field(max_length=40, pattern=TEXT_PATTERN)
    compartment: Positive32 | None = None
    detail: str = _text(500)
    raised_at: datetime | None = None  # only kept in the heartbeat's record


class CommandAck(_Request):
    """The kiosk executed (or refused) a remote command."""

    id: Positive32
    result: Literal["done", "refused", "failed"]
    # Any text: clipped to one line when stored, so an odd detail never blocks the ack.
    detail: str = Field(default="", max_length=2000)


class HeartbeatIn(_Request):
    """A kiosk's periodic report."""

    compartments: list[CompartmentState] = Field(default_factory=list, max_length=1000)
    alarms: list[KioskAlarm] = Field(default_factory=list, max_length=1000)
    versions: dict[Annotated[str, Field(max_length=40)], Annotated[str, Field(max_length=100)]] = (
        Field(default_factory=dict, max_length=20)
    )
    backlog: Int32 = 0
    acked_commands: list[CommandAck] = Field(default_factory=list, max_length=1000)


class CommandOut(BaseModel):
    """A remote command waiting for the kiosk."""

    id: int
    kind: str
    compartment: int | None
    reason: str | None


class HeartbeatAnswer(BaseModel):
    """The server's time and the commands not yet done, oldest first."""

    server_time: UtcTime
    commands: list[CommandOut]


class ReservationOut(BaseModel):
    """A reservation as the kiosk caches it."""

    id: str
    asset_tag: str
    status: str
    borrower_key: str | None
    code_hash: str | None
    device_type: str
    size: str
    charging: bool
    compartment: int | None
    ready_by: UtcTime | None
    expires_at: UtcTime | None
    loan_days: int


class ReservationsAnswer(BaseModel):
    """A full list (``full``) or the changes since the cursor."""

    full: bool
    cursor: str
    items: list[ReservationOut]


class LoanOut(BaseModel):
    """A loan as the kiosk caches it (for returns)."""

    id: str
    asset_tag: str
    borrower_key: str | None
    device_type: str
    size: str
    charging: bool
    started_at: UtcTime
    due_at: UtcTime
    returned_at: UtcTime | None
    reservation_id: str | None


class LoansAnswer(BaseModel):
    """A full list of open loans (``full``) or the loans changed since the cursor."""

    full: bool
    cursor: str
    items: list[LoanOut]


class StaffOut(BaseModel):
    """An active staff member."""

    id: str
    name: str
    role: str
    pin_hash: str
    borrower_key: str | None
    code_hash: str | None


class StaffAnswer(BaseModel):
    """Every active staff member."""

    items: list[StaffOut]
