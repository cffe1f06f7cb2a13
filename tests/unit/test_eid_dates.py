"""Birth dates as the card prints them: three languages, dotted forms, partial dates.

A date the parser cannot read is None (the card is still usable), never an exception.
"""

from __future__ import annotations

import pytest

from hardware.eid.identity import PartialDate, parse_birth_date

# Every month abbreviation of the fact sheet, per card language.
MONTHS = {
    "fr": "JAN FEV MARS AVR MAI JUIN JUIL AOUT SEPT OCT NOV DEC",
    "nl": "JAN FEB MAAR APR MEI JUN JUL AUG SEP OKT NOV DEC",
    "de": "JAN FEB MÄR APR MAI JUN JUL AUG SEP OKT NOV DEZ",
}


@pytest.mark.parametrize("language", sorted(MONTHS))
def test_month_table(language: str) -> None:
    for number, name in enumerate(MONTHS[language].split(), start=1):
        assert parse_birth_date(f"15 {name} 1980") == PartialDate(1980, number, 15), name
        assert parse_birth_date(f"15.{name}. 1980") == PartialDate(1980, number, 15), name
        assert parse_birth_date(f"15 {name.lower()} 1980") == PartialDate(1980, number, 15)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("01 JAN 1971", PartialDate(1971, 1, 1)),
        ("1 JAN 1971", PartialDate(1971, 1, 1)),
        ("26 AVR  1975", PartialDate(1975, 4, 26)),  # two spaces
        ("24 MAAR 1969", PartialDate(1969, 3, 24)),
        ("03 MEI 2001", PartialDate(2001, 5, 3)),
        ("13.AUG. 1996", PartialDate(1996, 8, 13)),
        ("22.DEZ. 1997", PartialDate(1997, 12, 22)),
        ("07 SEPT 2003", PartialDate(2003, 9, 7)),
        ("15 AOÛT 1960", PartialDate(1960, 8, 15)),  # accents as a French card may print
        ("10 FÉV 1950", PartialDate(1950, 2, 10)),
        ("05 DÉC 1948", PartialDate(1948, 12, 5)),
        ("12 MRZ 1990", PartialDate(1990, 3, 12)),
        ("12 MRT 1990", PartialDate(1990, 3, 12)),
        ("  01 JAN 1971  ", PartialDate(1971, 1, 1)),
        ("01.01.1971", PartialDate(1971, 1, 1)),  # numeric form
        ("29 FEB 2000", PartialDate(2000, 2, 29)),  # leap year
    ],
)
def test_full_dates(text: str, expected: PartialDate) -> None:
    assert parse_birth_date(text) == expected


@pytest.mark.parametrize(
    ("text", "expected", "iso"),
    [
        ("1975", PartialDate(1975), "1975"),
        ("   1975", PartialDate(1975), "1975"),
        ("   JAN 1971", PartialDate(1971, 1), "1971-01"),  # blank day
        ("JAN 1971", PartialDate(1971, 1), "1971-01"),
        ("00 JAN 1971", PartialDate(1971, 1), "1971-01"),
        ("    MAART 1969", PartialDate(1969, 3), "1969-03"),
        ("01      1971", PartialDate(1971), "1971"),  # blank month: the day alone is no use
        ("00 00 1970", PartialDate(1970), "1970"),
    ],
)
def test_partial_dates(text: str, expected: PartialDate, iso: str) -> None:
    date = parse_birth_date(text)
    assert date == expected
    assert date is not None and date.iso() == iso


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "garbage",
        "31 FEB 1971",  # no such day
        "29 FEB 1999",
        "32 JAN 1971",
        "01 XYZ 1971",
        "01 JAN 71",  # two-digit year
        "01 JAN",
        "01 JAN 1971 extra",
        "13 13 1971",
        "0000",
        "1 2 3 4 5",
        "9" * 200,
        "01 JAN 19710",
        "\x00\x00\x00",
    ],
)
def test_garbage_is_none(text: str) -> None:
    assert parse_birth_date(text) is None


def test_not_a_string_is_none() -> None:
    assert parse_birth_date(None) is None  # type: ignore[arg-type]
    assert parse_birth_date(b"01 JAN 1971") is None  # type: ignore[arg-type]
