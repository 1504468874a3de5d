"""format_us and parse_us: exact round trips, at any date the columns hold."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from app.db.timestamps import format_us, parse_us

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _reference(micros: int) -> str:
    moment = EPOCH + timedelta(microseconds=micros)
    return f"{moment.year:04d}-{moment:%m-%dT%H:%M:%S}.{moment.microsecond:06d}Z"


@pytest.mark.parametrize(
    "micros",
    [
        0,
        -1,
        1,
        86_400_000_000 - 1,
        86_400_000_000,
        -86_400_000_000,
        951_782_400_000_000,  # 2000-02-29, a leap day
        -62_135_596_800_000_000,  # 0001-01-01, the smallest
        253_402_300_799_999_999,
    ],
)  # 9999-12-31T23:59:59.999999
def test_edges_format_like_datetime(micros):
    assert format_us(micros) == _reference(micros)
    assert parse_us(format_us(micros)) == micros


def test_random_instants_round_trip():
    rng = random.Random(7)
    for _ in range(20_000):
        micros = rng.randrange(-62_135_596_800_000_000, 253_402_300_800_000_000)
        text = format_us(micros)
        assert text == _reference(micros)
        assert parse_us(text) == micros


@pytest.mark.parametrize(
    "value",
    [
        None,
        5,
        ["2020-01-01T00:00:00Z"],
        {"at": "2020-01-01T00:00:00Z"},
        "2020-02-30T00:00:00Z",
        "2020-01-01T24:00:00Z",
        "2020-01-01T00:00:60Z",
        "2020-01-01 00:00:00Z",
        "2020-01-01T00:00:00Z\n",
    ],
)
def test_what_is_not_a_timestamp_is_a_value_error(value):
    # A JSON list or object must not reach the parse cache (unhashable: a TypeError, so a 500).
    with pytest.raises(ValueError):
        parse_us(value)
