"""The identity and address files of a Belgian eID: typed values and their parsing.

``repr``/``str`` of an Identity show the card number and document type only: a log line
or an exception that shows one cannot leak the national number or other personal data.
Parsing is pure (bytes in, values out) and raises ``CardDataError`` only; its messages
name the tag, never the value.
"""

from __future__ import annotations

import calendar
import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from typing import Any

from hardware.errors import CardDataError


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
    brexit_mention_1: str | None = None  # tags 1B-1F: foreigner card mentions
    brexit_mention_2: str | None = None
    card_a_mention_1: str | None = None
    card_a_mention_2: str | None = None
    eu_registration_date: str | None = None  # kept as on the card

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


# --- TLV ---------------------------------------------------------------------------------


def parse_tlv(data: bytes) -> list[tuple[int, bytes]]:
    """Split an identity or address file into ``(tag, value)`` pairs, in card order.

    The length is one byte below 255, or a run of ``FF`` bytes (255 each) ended by a byte
    below 255 that is added. A tag ``00`` as the first byte is the file structure version
    and is returned as tag 0; a ``00`` in tag position later is zero padding and ends the
    file. Raises ``CardDataError`` when a length or value runs past the end of the data.
    """
    data = bytes(data)
    fields: list[tuple[int, bytes]] = []
    pos = 0
    end = len(data)
    while pos < end:
        tag = data[pos]
        if tag == 0x00 and pos > 0:
            break  # zero padding up to the file size: nothing follows
        pos += 1
        length = 0
        while pos < end and data[pos] == 0xFF:
            length += 255
            pos += 1
        if pos >= end:
            raise CardDataError(f"tag 0x{tag:02X}: the file ends inside its length")
        length += data[pos]
        pos += 1
        if pos + length > end:
            raise CardDataError(
                f"tag 0x{tag:02X}: length {length} runs past the end of the file "
                f"({end - pos} bytes left)"
            )
        fields.append((tag, data[pos : pos + length]))
        pos += length
    return fields


def _text(tag: int, name: str, value: bytes) -> str:
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        # The message names the field only: the bytes may be personal data.
        raise CardDataError(f"{name} (tag 0x{tag:02X}) is not valid UTF-8") from None
    # Card values are fixed-width on some cards (trailing spaces in the street).
    return text.strip()


def _card_date(tag: int, name: str, value: bytes) -> date | None:
    text = _text(tag, name, value)
    if not text:
        return None  # card policy refuses a card without validity dates, not the parser
    match = re.fullmatch(r"(\d{1,2})[.\-/ ](\d{1,2})[.\-/ ](\d{4})", text)
    if match:
        day, month, year = (int(part) for part in match.groups())
        try:
            return date(year, month, day)
        except ValueError:
            pass
    raise CardDataError(f"{name} (tag 0x{tag:02X}) is not a DD.MM.YYYY date")


# Identity file: tag -> (field name, kind). Kinds: "required" text that may not be empty,
# "present" text that must be there but may be empty (a person with one name), "text"
# (empty -> None), "bytes", "date" (DD.MM.YYYY; empty -> None), "birth", "flag".
_IDENTITY_TAGS: dict[int, tuple[str, str]] = {
    0x01: ("card_number", "required"),
    0x02: ("chip_number", "bytes"),
    0x03: ("validity_begin", "date"),
    0x04: ("validity_end", "date"),
    0x05: ("issuing_municipality", "text"),
    0x06: ("national_number", "required"),
    0x07: ("surname", "present"),
    0x08: ("given_names", "present"),
    0x09: ("third_initial", "text"),
    0x0A: ("nationality", "text"),
    0x0B: ("birth_place", "text"),
    0x0C: ("birth_date", "birth"),
    0x0D: ("sex", "text"),
    0x0E: ("noble_condition", "text"),
    0x0F: ("document_type", "required"),
    0x10: ("special_status", "text"),
    0x11: ("photo_hash", "bytes"),
    0x12: ("duplicate", "text"),
    0x13: ("special_organisation", "text"),
    0x14: ("member_of_family", "flag"),
    0x15: ("date_and_country_of_protection", "text"),
    0x16: ("work_permit", "text"),
    0x17: ("employer_vat_1", "text"),
    0x18: ("employer_vat_2", "text"),
    0x19: ("regional_file_number", "text"),
    0x1A: ("basic_key_hash", "bytes"),
    0x1B: ("brexit_mention_1", "text"),
    0x1C: ("brexit_mention_2", "text"),
    0x1D: ("card_a_mention_1", "text"),
    0x1E: ("card_a_mention_2", "text"),
    0x1F: ("eu_registration_date", "text"),
}
_MANDATORY = ("card_number", "national_number", "surname", "given_names", "document_type")


def parse_identity(data: bytes) -> Identity:
    """Parse the identity file (3F00 DF01 4031) into an ``Identity``.

    Empty optional fields become None; ``member_of_family`` is the presence of tag 14; an
    unreadable birth date becomes None (see ``parse_birth_date``). Raises
    ``CardDataError`` for a malformed TLV, invalid UTF-8, a bad validity date, or a
    missing card number, national number, surname, given names or document type.
    """
    values: dict[str, object] = {}
    for tag, value in parse_tlv(data):
        if tag == 0x00:
            values.setdefault("version", value)
            continue
        spec = _IDENTITY_TAGS.get(tag)
        if spec is None or spec[0] in values:
            continue  # tags of newer cards, or a repeated tag: the first one counts
        name, kind = spec
        label = name.replace("_", " ")
        if kind == "bytes":
            values[name] = value
        elif kind == "flag":
            values[name] = True
        elif kind == "date":
            values[name] = _card_date(tag, label, value)
        elif kind == "birth":
            values[name] = parse_birth_date(_text(tag, label, value))
        else:
            text = _text(tag, label, value)
            if kind == "required" and not text:
                raise CardDataError(f"{label} (tag 0x{tag:02X}) is empty")
            values[name] = text if text or kind == "present" else None
    missing = [name.replace("_", " ") for name in _MANDATORY if name not in values]
    if missing:
        raise CardDataError(f"identity file lacks: {', '.join(missing)}")
    for name, _kind in _IDENTITY_TAGS.values():
        values.setdefault(name, False if name == "member_of_family" else None)
    return Identity(**values)  # type: ignore[arg-type]


def parse_address(data: bytes) -> Address:
    """Parse the address file (3F00 DF01 4033, zero padded) into an ``Address``.

    Raises ``CardDataError`` for a malformed TLV, invalid UTF-8 or a missing tag 01-03.
    """
    names = {0x01: "street_and_number", 0x02: "postal_code", 0x03: "municipality"}
    values: dict[str, object] = {}
    for tag, value in parse_tlv(data):
        if tag == 0x00:
            values.setdefault("version", value)
        elif tag in names and names[tag] not in values:
            values[names[tag]] = _text(tag, names[tag].replace("_", " "), value)
    missing = [name.replace("_", " ") for name in names.values() if name not in values]
    if missing:
        raise CardDataError(f"address file lacks: {', '.join(missing)}")
    return Address(**values)  # type: ignore[arg-type]


# --- Birth dates -------------------------------------------------------------------------

# Month abbreviations as printed on cards issued in Dutch, French and German, plus the
# full names and common variants; accents are removed before the look-up (MÄR -> MAR).
_MONTH_NAMES = (
    "JAN JANV JANVIER JANUARI JANUAR",
    "FEB FEBR FEV FEVR FEVRIER FEBRUARI FEBRUAR",
    "MAR MARS MAAR MAART MRT MAER MARZ MAERZ MRZ",
    "APR AVR AVRIL APRIL",
    "MAI MEI",
    "JUN JUIN JUNI",
    "JUL JUIL JUILLET JULI",
    "AUG AOU AOUT AUGUSTUS AUGUST",
    "SEP SEPT SEPTEMBRE SEPTEMBER",
    "OCT OKT OCTOBRE OCTOBER OKTOBER",
    "NOV NOVEMBRE NOVEMBER",
    "DEC DEZ DECEMBRE DECEMBER DEZEMBER",
)
_MONTHS = {name: n for n, names in enumerate(_MONTH_NAMES, start=1) for name in names.split()}


def _plain(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.upper())
    return "".join(char for char in decomposed if not unicodedata.combining(char))


def parse_birth_date(text: str) -> PartialDate | None:
    """Read a birth date as the card prints it; None when it cannot be read.

    Accepts ``01 JAN 1971``, ``26 AVR  1975``, ``24 MAAR 1969``, ``13.AUG. 1996``,
    ``22.DEZ. 1997``, numeric ``01.01.1971``, a bare year ``1975`` and a blank (or ``00``)
    day or month, which give a PartialDate with None parts. Never raises.
    """
    if not isinstance(text, str) or len(text) > 64:
        return None
    tokens = re.findall(r"[0-9]+|[A-Z]+", _plain(text))
    if not tokens or not _is_year(tokens[-1]):
        if len(tokens) == 3 and _is_year(tokens[0]) and all(t.isdigit() for t in tokens):
            tokens = tokens[::-1]  # ISO order: 1971-01-31
        else:
            return None
    year = int(tokens[-1])
    if len(tokens) == 1:
        return PartialDate(year)
    if len(tokens) == 2:
        day_text, month_text = "", tokens[0]
        if month_text.isdigit():
            # "01      1971": a day with a blank month; a day alone says nothing.
            return PartialDate(year) if int(month_text) <= 31 else None
    elif len(tokens) == 3:
        day_text, month_text = tokens[0], tokens[1]
    else:
        return None
    month = int(month_text) if month_text.isdigit() else _MONTHS.get(month_text)
    if month is None or month > 12 or (day_text and not day_text.isdigit()):
        return None
    if month == 0:
        return PartialDate(year)
    day = int(day_text) if day_text else 0
    if day > calendar.monthrange(year, month)[1]:
        return None
    return PartialDate(year, month, day or None)


def _is_year(token: str) -> bool:
    return len(token) == 4 and token.isdigit() and int(token) > 0


# --- Document types ----------------------------------------------------------------------

DOCUMENT_TYPES: dict[int, str] = {
    1: "eID",
    6: "kids ID",
    7: "bootstrap card",
    8: "habilitation card",
    11: "A card",
    12: "B card",
    13: "C card",
    14: "D card",
    15: "E card",
    16: "E+ card",
    17: "F card",
    18: "F+ card",
    19: "H card",
    20: "I card",
    21: "J card",
    22: "M card",
    23: "N card",
    27: "K card",
    28: "L card",
    31: "EU card",
    32: "EU+ card",
    # 33-36: the A, B, F and F+ cards in their newer model (own document type codes).
    33: "A card (new model)",
    34: "B card (new model)",
    35: "F card (new model)",
    36: "F+ card (new model)",
    61: "kids EU card",
    62: "kids EU+ card",
    63: "kids A card",
    64: "kids B card",
    65: "kids K card",
    66: "kids L card",
    67: "kids F card",
    68: "kids F+ card",
    69: "kids M card",
}


def document_type_name(code: str) -> str:
    """The name of a document type code as on the card (``"1"``, ``"01"``, ``"16"``)."""
    text = str(code).strip()
    if text.isascii() and text.isdigit() and len(text) <= 3:
        name = DOCUMENT_TYPES.get(int(text))
        if name is not None:
            return name
        return f"unknown document type {int(text)}"
    return "unknown document type"


# --- National register number ------------------------------------------------------------


def _digits(number: str) -> str:
    return re.sub(r"[.\- ]", "", str(number))


def national_number_valid(number: str) -> bool:
    """True when the 11 digits (dots, dashes, spaces allowed) carry valid check digits.

    CC = 97 - (first 9 digits mod 97); for births from 2000 on, "2" is put in front of
    the 9 digits first. The number itself does not say the century, so either may match.
    """
    digits = _digits(number)
    if len(digits) != 11 or not (digits.isascii() and digits.isdigit()):
        return False
    check = int(digits[9:])
    return check in (97 - int(digits[:9]) % 97, 97 - int("2" + digits[:9]) % 97)


def mask_national_number(number: str) -> str:
    """Hide all but the last four digits: ``71715100070`` -> ``*******0070``."""
    digits = _digits(number)
    shown = digits[-4:] if len(digits) > 4 else ""
    return "*" * (len(digits) - len(shown)) + shown


# --- JSON --------------------------------------------------------------------------------


def identity_json(
    identity: Identity, address: Address | None, *, show_national_number: bool = False
) -> dict[str, Any]:
    """The identity and address part of the ``eid read --json`` object.

    Dates are ISO (a partial birth date ``YYYY`` or ``YYYY-MM``), bytes are lowercase hex,
    absent fields None. The national number is masked unless ``show_national_number``.
    """

    def iso(value: date | PartialDate | None) -> str | None:
        if value is None:
            return None
        return value.isoformat() if isinstance(value, date) else value.iso()

    def hexed(value: bytes | None) -> str | None:
        return None if value is None else value.hex()

    number = identity.national_number
    return {
        "card_number": identity.card_number,
        "chip_number": hexed(identity.chip_number),
        "validity_begin": iso(identity.validity_begin),
        "validity_end": iso(identity.validity_end),
        "issuing_municipality": identity.issuing_municipality,
        "national_number": number if show_national_number else mask_national_number(number),
        "surname": identity.surname,
        "given_names": identity.given_names,
        "third_initial": identity.third_initial,
        "nationality": identity.nationality,
        "birth_place": identity.birth_place,
        "birth_date": iso(identity.birth_date),
        "sex": identity.sex,
        "noble_condition": identity.noble_condition,
        "document_type": identity.document_type,
        "document_type_name": document_type_name(identity.document_type),
        "special_status": identity.special_status,
        "photo_hash": hexed(identity.photo_hash),
        "duplicate": identity.duplicate,
        "special_organisation": identity.special_organisation,
        "member_of_family": identity.member_of_family,
        "date_and_country_of_protection": identity.date_and_country_of_protection,
        "address": None
        if address is None
        else {
            "street_and_number": address.street_and_number,
            "postal_code": address.postal_code,
            "municipality": address.municipality,
        },
    }
