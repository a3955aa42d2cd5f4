"""Check digits of China's national identifiers: GB 11643, GB 32100 and GB 11714."""

from __future__ import annotations

from datetime import date

from expectations.gbt2260 import known_codes

ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
ORG_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def digits(text: str) -> bool:
    """Whether `text` is ASCII digits only (str.isdigit also takes full-width and other scripts' digits)."""
    return text.isascii() and text.isdigit()


def resident_id_check_digit(body17: str) -> str:
    """The 18th character of a resident ID number whose first 17 digits are `body17` (GB 11643)."""
    total = sum(int(c) * w for c, w in zip(body17, ID_WEIGHTS, strict=True))
    return ID_CHECK[total % 11]


def resident_id_problem(value: str | None) -> str | None:
    """Why `value` is not a valid 18-character resident ID number, or None if it is."""
    if value is None:
        return None
    if len(value) != 18 or not digits(value[:17]) or not (digits(value[17]) or value[17] == "X"):
        return "not 17 digits followed by a digit or X"
    if value[:6] not in known_codes():
        return "region code is not a GB/T 2260 division code"
    try:
        born = date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return "embedded birth date does not exist"
    if born > date.today() or born.year < 1860:
        return "embedded birth date is impossible"
    if resident_id_check_digit(value[:17]) != value[17]:
        return "wrong check digit"
    return None


def resident_id_birth(value: str | None) -> date | None:
    """The birth date embedded in a resident ID number, if it has a real one."""
    if value is None or len(value) != 18 or not digits(value[:14]):
        return None
    try:
        return date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return None


def resident_id_sex(value: str | None) -> str | None:
    """男 or 女 from the 17th digit of a resident ID number (odd for men)."""
    if value is None or len(value) != 18 or not digits(value[16]):
        return None
    return "男" if int(value[16]) % 2 else "女"


def org_code_check_digit(body8: str) -> str:
    """The 9th character of an organization code whose first 8 characters are `body8` (GB 11714)."""
    total = sum(ORG_ALPHABET.index(c) * w for c, w in zip(body8, ORG_WEIGHTS, strict=True))
    check = 11 - total % 11
    return {10: "X", 11: "0"}.get(check, str(check))


def uscc_check_digit(body17: str) -> str:
    """The 18th character of a unified social credit code whose first 17 characters are `body17` (GB 32100)."""
    total = sum(USCC_ALPHABET.index(c) * w for c, w in zip(body17, USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def uscc_problem(value: str | None) -> str | None:
    """Why `value` is not a valid unified social credit code, or None if it is."""
    if value is None:
        return None
    if len(value) != 18 or any(c not in USCC_ALPHABET for c in value):
        return "not 18 characters of the GB 32100 alphabet"
    if uscc_check_digit(value[:17]) != value[17]:
        return "wrong check digit"
    org = value[8:17]
    if all(c in ORG_ALPHABET for c in org[:8]) and org_code_check_digit(org[:8]) != org[8]:
        return "embedded organization code has a wrong check digit"
    return None
