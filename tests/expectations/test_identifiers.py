"""National identifiers: check digits of GB 11643, GB 32100 and GB 11714, and the demo's use of them."""

from __future__ import annotations

import pytest

from expectations.identifiers import resident_id_problem, uscc_problem
from sharehub.demo.world import build_world


# 422824 (利川县) was withdrawn in 1985; an ID issued there before keeps its code for life.
@pytest.mark.parametrize(
    "good", ["11010519491231002X", "440524188001010014", "11010119900307803X", "422824198001010018"]
)
def test_valid_resident_ids(good: str) -> None:
    assert resident_id_problem(good) is None


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ("110105194912310021", "wrong check digit"),
        ("11010519491331002X", "birth date does not exist"),
        ("11010520991231002X", "impossible"),
        ("1101051949123100", "not 17 digits"),
        ("11010519491231002x", "not 17 digits"),
        ("１1010519491231002X", "not 17 digits"),  # a full-width digit
        # A correct check digit, but 990105 is no division code at all.
        ("990105194912310023", "region code"),
    ],
)
def test_invalid_resident_ids(bad: str, why: str) -> None:
    assert why in (resident_id_problem(bad) or "")


@pytest.mark.parametrize("good", ["91350100M000100Y43", "91110000802100433B", "12100000400000624D"])
def test_valid_uscc(good: str) -> None:
    assert uscc_problem(good) is None


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ("91350100M000100Y44", "wrong check digit"),
        ("91350100M000100YI3", "alphabet"),
        ("9135010", "alphabet"),
    ],
)
def test_invalid_uscc(bad: str, why: str) -> None:
    assert why in (uscc_problem(bad) or "")


def test_demo_world_is_valid_except_for_what_it_plants() -> None:
    world = build_world(persons=3000, entities=600, seed=1)
    rows = world.tables["gongan.population"]
    bad = sum(1 for r in rows if r["id_number"] and resident_id_problem(r["id_number"]))
    assert bad == world.planted["gongan.population"]["bad_check_digit"]
    codes = world.tables["scjg.legal_entity"]
    bad_codes = sum(1 for r in codes if uscc_problem(r["uscc"]))
    assert bad_codes == world.planted["scjg.legal_entity"]["bad_check_digit"]
    assert world.planted["rsj.insurance_enrolment"]["name_disagrees_with_gongan"] > 0
