"""The gate's DuckDB fast path finds exactly the rows Great Expectations finds, rule by rule.

Every resource of the demo catalogue gets a table whose cells are drawn from pools of good,
bad and missing values for each field's rules. The compiled suite and the all-GX suite must name
the same rows for the same rules.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pyarrow as pa
import pytest

from expectations.identifiers import org_code_check_digit, resident_id_check_digit, uscc_check_digit
from sharehub.catalogue.loader import load_catalogue
from sharehub.catalogue.models import FieldSpec, Resource
from sharehub.pipeline.gate import ROW, compile_suite, gate_connection, validate_chunk
from sharehub.settings import REPO_ROOT

TODAY = date(2026, 11, 22)


def _id(body17: str) -> str:
    return body17 + resident_id_check_digit(body17)


def _uscc(head8: str, org8: str, org_check: str | None = None) -> str:
    body17 = head8 + org8 + (org_check or org_code_check_digit(org8))
    return body17 + uscc_check_digit(body17)


IDS = [
    _id("42280219800101001"),  # valid
    _id("42280219491231002"),  # valid, female
    _id("42282419800101003"),  # valid: a withdrawn region code (利川县 until 1985)
    _id("99010519491231002"),  # not a region
    _id("42280218591231001"),  # born before 1860
    _id("42280220991231001"),  # born in the future
    "42280219800230001X",  # 30 February
    _id("42280219800101001")[:-1] + "0",  # wrong check digit (the right one is not 0)
    "4228021980010100",  # too short
    "42280219800101001x",  # lower-case x
    "４22802198001010011",  # a full-width digit
    "",
    None,
]
USCCS = [
    _uscc("91422802", "MA4F0ABC"),
    _uscc("91422802", "31779000"),
    "91350100M000100Y44",  # wrong check digit
    "91350100M000100YI3",  # I is not in the alphabet
    "91350100m000100Y43",  # lower case
    _uscc("91422802", "MA4F0ABC", "Y"),  # right USCC check digit, wrong embedded organization code digit
    "9135010",
    None,
]
DIVISIONS = ["422802", "110105", "422824", "429999", "4228", "42280X", None]
PHONES = ["13800138000", "027-88886666", "0718-8221234", "12345678901", "1380013800", "phone", None]
SEX = ["男", "女", "未知", None]  # the first good ID number is a man's


def _pick(rng: random.Random, pool: list) -> object:
    """Mostly the pool's first (good) value, so that some rows pass every rule."""
    return pool[0] if rng.random() < 0.85 else rng.choice(pool)


def _pool(rng: random.Random, spec: FieldSpec) -> list:
    if spec.identifier == "resident_id":
        return IDS
    if spec.identifier == "uscc":
        return USCCS
    if spec.identifier == "division_code":
        return DIVISIONS
    if spec.identifier == "phone":
        return PHONES
    if spec.values:
        return [*spec.values, "其他", None]
    arrow = spec.arrow_type
    if pa.types.is_date(arrow):
        # The first good ID number encodes 1980-01-01, so that date agrees with it and comes after birth.
        some_day = date(1900, 1, 1) + timedelta(days=rng.randrange(0, 46_000))
        return [date(1980, 1, 1), date(1949, 12, 31), date(1949, 12, 30), date(2030, 1, 1), TODAY, some_day, None]
    if pa.types.is_timestamp(arrow):
        return [datetime(2026, 1, 1, tzinfo=UTC), datetime(2031, 1, 1, tzinfo=UTC), None]
    if pa.types.is_decimal(arrow):
        return [Decimal("12.50"), Decimal("-1.00"), None]
    if pa.types.is_integer(arrow):
        return [0, 7, -3, None]
    if spec.matches_id:
        return SEX
    return ["张三", "", " ", None]


def _table(resource: Resource, rows: int, seed: int) -> pa.Table:
    rng = random.Random(seed)
    data: list[dict] = []
    for _ in range(rows):
        row: dict = {}
        for spec in resource.fields:
            row[spec.name] = _pick(rng, _pool(rng, spec))
        data.append(row)
    table = pa.Table.from_pylist(data, schema=resource.arrow_schema)
    return table.append_column(ROW, pa.array(range(rows), pa.int64()))


@pytest.mark.parametrize("resource_id", sorted(load_catalogue(REPO_ROOT / "catalogue").resources))
def test_duckdb_and_great_expectations_name_the_same_rows(resource_id: str) -> None:
    resource = load_catalogue(REPO_ROOT / "catalogue").resource(resource_id)
    table = _table(resource, 3_000, seed=len(resource_id))
    fast, slow = compile_suite(resource, "duckdb", TODAY), compile_suite(resource, "gx", TODAY)
    assert fast.sql, f"{resource_id}: nothing compiled to SQL"
    assert fast.gx_rest is None, f"{resource_id}: left to GX: {fast.gx_rest}"
    con = gate_connection()
    fast_check, slow_check = validate_chunk(resource, fast, table, con), validate_chunk(resource, slow, table, con)
    fast_reasons, fast_tallies = fast_check.reasons, fast_check.tallies
    slow_reasons, slow_tallies = slow_check.reasons, slow_check.tallies
    con.close()
    assert {r: sorted(v) for r, v in fast_reasons.items()} == {r: sorted(v) for r, v in slow_reasons.items()}
    assert {n: (t.elements, t.unexpected) for n, t in fast_tallies.items()} == {
        n: (t.elements, t.unexpected) for n, t in slow_tallies.items()
    }
    # The pools must exercise the rules: every rule finds some rows, and some rows pass every rule.
    assert all(t.unexpected for t in slow_tallies.values()), slow_tallies
    assert len(slow_reasons) < table.num_rows
