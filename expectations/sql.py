"""A suite's row-level expectations compiled to DuckDB SQL: the gate's fast path.

Each supported expectation becomes one predicate that is true exactly when Great Expectations
would count the row as unexpected: map expectations skip nulls (except `not_be_null`), and pair
expectations skip rows where either value is missing. `tests/expectations/test_gate_engines.py` checks every
compiled predicate against Great Expectations' own result on the same rows. An expectation this
module does not know returns None, and the gate runs it through Great Expectations instead.

No predicate can raise on bad input: digits are read with `ascii() - 48` and dates with
`try_strptime`, because DuckDB does not promise to short-circuit `AND`.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from expectations.identifiers import ID_CHECK, ID_WEIGHTS, ORG_ALPHABET, ORG_WEIGHTS, USCC_ALPHABET, USCC_WEIGHTS

# The table of GB/T 2260 codes (code, current) that the gate registers under this name.
CODES_TABLE = "gbt2260"


def ident(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def literal(value: Any) -> str:
    """A SQL literal for a value of a suite's kwargs."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, datetime):
        return f"TIMESTAMPTZ '{value.isoformat()}'"
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    return "'" + str(value).replace("'", "''") + "'"


def _digit(col: str, pos: int) -> str:
    return f"(ascii(substr({col}, {pos}, 1)) - 48)"


def _index(alphabet: str, col: str, pos: int) -> str:
    return f"(instr('{alphabet}', substr({col}, {pos}, 1)) - 1)"


def id_birth(col: str) -> str:
    """The birth date an ID number encodes, or NULL (as `identifiers.resident_id_birth`)."""
    return (
        f"CASE WHEN length({col}) = 18 AND regexp_full_match(substr({col}, 1, 14), '[0-9]{{14}}') "
        f"THEN CAST(try_strptime(substr({col}, 7, 8), '%Y%m%d') AS DATE) END"
    )


def id_sex(col: str) -> str:
    """男 or 女 from an ID number's 17th digit, or NULL (as `identifiers.resident_id_sex`)."""
    return (
        f"CASE WHEN length({col}) = 18 AND regexp_full_match(substr({col}, 17, 1), '[0-9]') "
        f"THEN CASE WHEN {_digit(col, 17)} % 2 = 1 THEN '男' ELSE '女' END END"
    )


def _weighted_digits(col: str, weights: tuple[int, ...]) -> str:
    """Σ digit × weight over the first len(weights) characters, as one vectorised list product.

    `rpad` keeps the list as long as the weights (a shorter list would raise); a non-digit only
    spoils the sum of a value that the format check already refuses.
    """
    n = len(weights)
    chars = f"string_split(rpad(substr({col}, 1, {n}), {n}, '0'), '')"
    vector = "[" + ", ".join(str(w) for w in weights) + "]::DOUBLE[]"
    return f"CAST(list_dot_product(list_transform({chars}, c -> CAST(ascii(c) - 48 AS DOUBLE)), {vector}) AS BIGINT)"


def valid_resident_id(col: str, today: date) -> str:
    """True for a valid GB 11643 number (as `identifiers.resident_id_problem` is None)."""
    born = f"CAST(try_strptime(substr({col}, 7, 8), '%Y%m%d') AS DATE)"
    return (
        f"(regexp_full_match({col}, '[0-9]{{17}}[0-9X]')"
        f" AND substr({col}, 1, 6) IN (SELECT code FROM {CODES_TABLE})"
        f" AND {born} BETWEEN DATE '1860-01-01' AND {literal(today)}"
        f" AND substr('{ID_CHECK}', {_weighted_digits(col, ID_WEIGHTS)} % 11 + 1, 1) = substr({col}, 18, 1))"
    )


def valid_uscc(col: str) -> str:
    """True for a valid GB 32100 code with a valid embedded GB 11714 code (as `uscc_problem` is None)."""
    total = " + ".join(f"{_index(USCC_ALPHABET, col, i + 1)} * {w}" for i, w in enumerate(USCC_WEIGHTS))
    org = " + ".join(f"{_index(ORG_ALPHABET, col, i + 9)} * {w}" for i, w in enumerate(ORG_WEIGHTS))
    org_check = f"(11 - ({org}) % 11)"
    return (
        f"(regexp_full_match({col}, '[{USCC_ALPHABET}]{{18}}')"
        f" AND substr('{USCC_ALPHABET}', (31 - ({total}) % 31) % 31 + 1, 1) = substr({col}, 18, 1)"
        f" AND (CASE {org_check} WHEN 10 THEN 'X' WHEN 11 THEN '0' ELSE CAST({org_check} AS VARCHAR) END)"
        f" = substr({col}, 17, 1))"
    )


def _column_map(kind: str, col: str, kwargs: dict[str, Any], today: date) -> str | None:
    """The failing condition of a single-column map expectation, for a non-null value."""
    if kind == "expect_column_values_to_be_in_set":
        return f"{col} NOT IN ({', '.join(literal(v) for v in kwargs['value_set'])})"
    if kind == "expect_column_values_to_match_regex":
        return f"NOT regexp_matches(CAST({col} AS VARCHAR), {literal(kwargs['regex'])})"
    if kind == "expect_column_values_to_be_between":
        if kwargs.get("strict_min") or kwargs.get("strict_max"):
            return None
        bounds = []
        if kwargs.get("min_value") is not None:
            bounds.append(f"{col} < {literal(kwargs['min_value'])}")
        if kwargs.get("max_value") is not None:
            bounds.append(f"{col} > {literal(kwargs['max_value'])}")
        return " OR ".join(bounds) or "FALSE"
    if kind == "expect_column_values_to_be_valid_resident_id":
        return f"NOT coalesce({valid_resident_id(col, today)}, FALSE)"
    if kind == "expect_column_values_to_be_valid_uscc":
        return f"NOT coalesce({valid_uscc(col)}, FALSE)"
    if kind == "expect_column_values_to_be_valid_division_code":
        return f"{col} NOT IN (SELECT code FROM {CODES_TABLE} WHERE current)"
    return None


def unexpected(expectation: Any, column_types: dict[str, str], today: date) -> str | None:
    """A predicate true for each row the expectation finds unexpected, or None if it does not compile.

    `column_types` maps each column to its catalogue type (string, date, …); pair rules on a sex
    column and on a date column compile differently.
    """
    config = expectation.configuration
    kind, kwargs = config.type, config.kwargs
    if kwargs.get("row_condition") or kwargs.get("mostly", 1) != 1:
        return None
    if "column" in kwargs:
        col = ident(kwargs["column"])
        if kind == "expect_column_values_to_not_be_null":
            return f"{col} IS NULL"
        failing = _column_map(kind, col, kwargs, today)
        return None if failing is None else f"coalesce({col} IS NOT NULL AND ({failing}), FALSE)"
    if "column_A" in kwargs and kwargs.get("ignore_row_if", "either_value_is_missing") == "either_value_is_missing":
        a, b = ident(kwargs["column_A"]), ident(kwargs["column_B"])
        if kind == "expect_column_pair_values_to_agree_with_resident_id":
            derived = id_sex(a) if column_types.get(kwargs["column_B"]) == "string" else id_birth(a)
            failing = f"{derived} <> {b}"
        elif kind == "expect_column_pair_values_to_be_after_birth":
            failing = f"CAST({b} AS DATE) < {id_birth(a)}"
        else:
            return None
        return f"coalesce({a} IS NOT NULL AND {b} IS NOT NULL AND ({failing}), FALSE)"
    return None
