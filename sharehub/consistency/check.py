"""The consistency check, as the rest of the hub calls it: comparing the copies (`compare`), the normalization
that decides what differs (`normalize`), and the conflicts, their notices and decisions (`conflicts`)."""

from sharehub.consistency.compare import CheckResult, Pairing, Scope, check, pairings
from sharehub.consistency.conflicts import OPEN, SAMPLE_CONFLICTS, decide, decide_many, list_conflicts, reply, verify
from sharehub.consistency.normalize import FULL_WIDTH, HALF_WIDTH, UDF, comparable, date_value, normalize_value

__all__ = [
    "FULL_WIDTH",
    "HALF_WIDTH",
    "OPEN",
    "SAMPLE_CONFLICTS",
    "UDF",
    "CheckResult",
    "Pairing",
    "Scope",
    "check",
    "comparable",
    "date_value",
    "decide",
    "decide_many",
    "list_conflicts",
    "normalize_value",
    "pairings",
    "reply",
    "verify",
]
