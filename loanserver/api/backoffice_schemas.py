"""Request and answer bodies of the back-office API (docs/api.md), as pydantic models.

Requests refuse unknown fields (``extra="forbid"``). Strings are bounded and one line,
numbers that reach an INTEGER column fit in 32 bits, so a bad value is a 422 and never a
database error. The services (``loanserver.services``) do the remaining checks.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

# Shared with the kiosk API: 32-bit bounds, one-line text (PostgreSQL refuses NUL in a text
# column), times answered as ``+00:00`` (docs/api.md).
from loanserver.api.kiosk_schemas import INT32_MAX, UtcTime
from loanserver.api.kiosk_schemas import TEXT_PATTERN as ONE_LINE

Id = Annotated[int, Field(ge=1, le=INT32_MAX)]
Name = Annotated[str, Field(min_length=1, max_length=100, pattern=ONE_LINE)]
AssetTag = Annotated[str, Field(min_length=1, max_length=64, pattern=ONE_LINE)]
# Checked by the services (11 digits, separators allowed); bounded here so that a huge
# value is refused before anything else. Never echoed: see backoffice._NoEchoRoute.
NationalNumber = Annotated[str, Field(max_length=32)]
DeviceType = Literal["laptop", "tablet"]
Size = Literal["S", "M", "L"]
Language = Literal["nl", "fr", "en"]
Role = Literal["staff", "admin"]
CommandKind = Literal["open", "out_of_service", "back_in_service", "refresh"]


class _Request(BaseModel):
    """Base of request bodies: unknown fields are refused (a typo shows at once)."""

    model_config = ConfigDict(extra="forbid")


class KioskIn(_Request):
    """A new kiosk."""

    name: Name


class KioskCreated(BaseModel):
    """A kiosk just added; ``token`` is answered this once and stored only as a hash."""

    id: int
    name: str
    token: str


class DeviceIn(_Request):
    """A new lendable device."""

    asset_tag: AssetTag
    type: DeviceType
    size: Size = "M"
    charging: bool = Field(default=False, description="needs a charging compartment")


class DeviceOut(BaseModel):
    """A device as stored."""

    id: int
    asset_tag: str
    type: str
    size: str
    charging: bool
    status: str


class BorrowerIn(_Request):
    """A borrower: by national register number (turned into the key at once) or code-only."""

    national_number: NationalNumber | None = Field(
        default=None, description="needs the server's pepper; never stored nor echoed"
    )
    code_only: bool = False
    first_name: Name | None = None
    language: Language = "nl"
    contact: Annotated[str, Field(max_length=200, pattern=ONE_LINE)] | None = None


class BorrowerOut(BaseModel):
    """A borrower just registered (no key, no number)."""

    id: int
    code_only: bool
    language: str


class ReservationIn(_Request):
    """Reserve an available device for a borrower at a kiosk."""

    borrower_id: Id
    asset_tag: AssetTag
    kiosk: Name


class ReservationCreated(BaseModel):
    """A reservation just made; ``pickup_code`` is answered this once."""

    id: int
    expires_at: UtcTime
    pickup_code: str


class ReservationOut(BaseModel):
    """A reservation's id and status."""

    id: int
    status: str


class LoanOut(BaseModel):
    """An open loan."""

    loan_id: int
    asset_tag: str
    borrower_id: int | None
    started_at: UtcTime
    due_at: UtcTime
    overdue: bool


class LoanList(BaseModel):
    """Open loans, oldest due first."""

    items: list[LoanOut]


class StaffIn(_Request):
    """A staff member: national number (eID) or staff code, and a PIN."""

    name: Name
    pin: Annotated[str, Field(max_length=12)]
    role: Role = "staff"
    national_number: NationalNumber | None = None
    code: Annotated[str, Field(max_length=32)] | None = None


class StaffOut(BaseModel):
    """A staff member just added (no PIN, no code)."""

    id: int
    name: str
    role: str


class CommandIn(_Request):
    """A remote command: ``open`` (compartment, reason), ``out_of_service`` (compartment,
    optional reason), ``back_in_service`` (compartment), ``refresh`` (nothing)."""

    kind: CommandKind
    compartment: Annotated[int, Field(ge=1, le=999)] | None = None
    reason: Annotated[str, Field(min_length=1, max_length=200, pattern=ONE_LINE)] | None = None


class CommandOut(BaseModel):
    """A command queued for a kiosk; delivered with its next heartbeats until acknowledged."""

    id: int
    kiosk: str
    kind: str
    compartment: int | None
    reason: str | None
    created_at: UtcTime


class KioskFaults(BaseModel):
    """Alarms and conflicts raised at one kiosk in the month (kiosk null: no kiosk)."""

    kiosk: str | None
    alarms: int
    conflicts: int


class FaultTotals(BaseModel):
    """Alarms and conflicts of every kiosk in the month."""

    alarms: int
    conflicts: int


class Report(BaseModel):
    """The figures of one month (see ``loanserver.reports.report``)."""

    model_config = ConfigDict(populate_by_name=True)

    month: str = Field(description="YYYY-MM")
    from_: UtcTime = Field(alias="from", description="first instant of the month (UTC)")
    until: UtcTime = Field(description="first instant of the next month (UTC)")
    people_reached: int = Field(description="distinct borrowers with a loan started")
    loans_started: int
    returns: int = Field(description="loans returned in the month, whenever they started")
    average_loan_days: float | None = Field(description="of the returns; null when none")
    faults: list[KioskFaults]
    faults_total: FaultTotals
