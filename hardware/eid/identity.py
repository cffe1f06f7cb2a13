"""The identity and address files of a Belgian eID: typed values (parsing comes below).

``repr``/``str`` of an Identity show the card number and document type only: a log line
or an exception that shows one cannot leak the national number or other personal data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class PartialDate:
    """A birth date as printed on the card: the day or the month may be unknown."""

    year: int
    month: int | None = None
    day: int | None = None

    def iso(self) -> str:
        """``YYYY-MM-DD``, or ``YYYY-MM`` / ``YYYY`` when the card leaves parts out."""
        if self.month is None:
            return f"{self.year:04d}"
        if self.day is None:
            return f"{self.year:04d}-{self.month:02d}"
        return f"{self.year:04d}-{self.month:02d}-{self.day:02d}"


@dataclass(frozen=True, repr=False)
class Identity:
    """Every field of the identity file (tags 01-1F); absent fields are None."""

    card_number: str
    chip_number: bytes | None
    validity_begin: date | None
    validity_end: date | None
    issuing_municipality: str | None
    national_number: str  # never in repr, str or logs: see __repr__
    surname: str
    given_names: str
    third_initial: str | None
    nationality: str | None
    birth_place: str | None
    birth_date: PartialDate | None
    sex: str | None
    noble_condition: str | None
    document_type: str  # the code as on the card, e.g. "1", "01", "16"
    special_status: str | None
    photo_hash: bytes | None
    duplicate: str | None = None
    special_organisation: str | None = None
    member_of_family: bool = False
    date_and_country_of_protection: str | None = None
    work_permit: str | None = None
    employer_vat_1: str | None = None
    employer_vat_2: str | None = None
    regional_file_number: str | None = None
    basic_key_hash: bytes | None = None
    version: bytes | None = None  # tag 00 at the start (newer cards)

    def __repr__(self) -> str:
        return f"Identity(card_number={self.card_number!r}, document_type={self.document_type!r})"

    __str__ = __repr__


@dataclass(frozen=True, repr=False)
class Address:
    """The address file."""

    street_and_number: str
    postal_code: str
    municipality: str
    version: bytes | None = None

    def __repr__(self) -> str:
        return "Address(<hidden>)"

    __str__ = __repr__
