"""Why a row was quarantined, in words a department clerk understands.

The gate records each reason as its rule's name (`expect_column_values_to_be_valid_resident_id(id_number)`,
or `birth_date: value is not a valid date` for a cell that does not fit its type): disputes and waivers
match on that name. Everything a person reads (notices, `sharehub runs show`, the API, the quarantine
Parquet) gives a Chinese sentence with the field's title, and keeps the rule's name beside it.
"""

from __future__ import annotations

import re

from sharehub.catalogue.models import Resource

# What each rule asks of a value: the fault, then what a correct value looks like.
RULES: dict[str, tuple[str, str]] = {
    "expect_column_values_to_not_be_null": ("为空", "此项必填"),
    "expect_column_values_to_be_valid_resident_id": (
        "不是有效的公民身份号码",
        "应为18位，末位是前17位按 GB 11643 算出的校验码，出生日期真实、地区码曾在 GB/T 2260 公布，"
        "例如 11010519491231002X",
    ),
    "expect_column_values_to_be_valid_uscc": (
        "不是有效的统一社会信用代码",
        "应为18位，校验码按 GB 32100 正确，例如 91350100M000100Y43",
    ),
    "expect_column_values_to_be_valid_division_code": (
        "不是现行有效的行政区划代码",
        "应为 GB/T 2260 现行代码，例如 422802（利川市）",
    ),
    "expect_column_values_to_match_regex": (
        "不是有效的电话号码",
        "应为手机号（如 13812345678）或固定电话（如 0718-1234567）",
    ),
    "expect_column_values_to_be_in_set": ("不在目录规定的取值范围内", "应为目录列出的取值之一"),
    "expect_column_values_to_be_between": ("是将来的日期", "不应晚于检查当日"),
    "expect_compound_columns_to_be_unique": (
        "主键重复",
        "同一主键只能有一行；同键的各行都已隔离，哪一行正确由提供部门确定",
    ),
    "expect_column_pair_values_to_agree_with_resident_id": (
        "与公民身份号码不一致",
        "性别和出生日期应与身份号码所含的一致（第17位为奇数是男性）",
    ),
    "expect_column_pair_values_to_be_after_birth": ("早于身份号码所含的出生日期", "应在出生日期当日或之后"),
}
TYPES = {
    "date": "日期（如 2024-03-01）",
    "timestamp": "时间（如 2024-03-01 08:30:00）",
    "timestamptz": "时间（如 2024-03-01 08:30:00）",
    "integer": "整数",
    "float": "数值",
    "boolean": "是/否值",
    "string": "文本",
}
_RULE = re.compile(r"^(?P<rule>[a-z_]+)\((?P<field>[a-z0-9_,]+)\)$")
_CAST = re.compile(r"^(?P<field>[a-z0-9_]+): value is not a valid (?P<type>.+)$")
MISSING = "〈缺失〉"


def _title(resource: Resource | None, name: str) -> str:
    found = {f.name: f.title for f in resource.fields} if resource else {}
    return f"「{found[name]}」（{name}）" if name in found else f"「{name}」"


def is_rule(reason: str) -> bool:
    """Whether a reason names a suite rule (which a dispute may waive), not a value of the wrong type."""
    return _RULE.match(reason) is not None


def field_of(reason: str) -> str | None:
    """The one field a reason is about, if it is about one."""
    m = _RULE.match(reason) or _CAST.match(reason)
    return m.group("field") if m and "," not in m.group("field") else None


def expected(reason: str, resource: Resource | None) -> str:
    """What a correct value looks like, in Chinese."""
    m = _RULE.match(reason)
    if m and m.group("rule") in RULES:
        rule, field = m.group("rule"), m.group("field")
        if rule == "expect_column_values_to_be_in_set" and resource and field in {f.name for f in resource.fields}:
            return "应为以下之一：" + " / ".join(resource.field(field).values or [])
        return RULES[rule][1]
    m = _CAST.match(reason)
    if m:
        kind = m.group("type")
        return f"应为有效的{TYPES.get(kind, kind)}"
    return reason


def explain(reason: str, resource: Resource | None) -> str:
    """One sentence for a clerk, with the field's title and the rule's name beside it."""
    m = _RULE.match(reason)
    if m and m.group("rule") in RULES:
        fields = "、".join(_title(resource, f) for f in m.group("field").split(","))
        return f"{fields}{RULES[m.group('rule')][0]}：{expected(reason, resource)}。〔规则 {reason}〕"
    m = _CAST.match(reason)
    if m:
        return f"{_title(resource, m.group('field'))}的值无法识别：{expected(reason, resource)}。〔规则 {reason}〕"
    return f"{reason}。" if not reason.endswith("。") else reason


def key_text(key: tuple, row_number: int) -> str:
    """The row key as recorded; a missing part is shown as missing, with the row's place in its batch."""
    if all(v is not None and str(v) != "" for v in key):
        return "|".join(str(v) for v in key)[:400]
    parts = [MISSING if v is None or str(v) == "" else str(v) for v in key]
    return ("|".join(parts) + f"（第{row_number + 1}行，无主键）")[:400]


def is_missing(key: str) -> bool:
    """Whether a recorded row key lacks a part."""
    return MISSING in key
