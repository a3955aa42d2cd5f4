"""The custom Great Expectations rules, each on known-good and known-bad values, through GX itself."""

from __future__ import annotations

from datetime import date

import great_expectations as gx
import pandas as pd
import pytest

from expectations.rules import (
    ExpectColumnPairValuesToAgreeWithResidentId,
    ExpectColumnPairValuesToBeAfterBirth,
    ExpectColumnValuesToBeValidDivisionCode,
    ExpectColumnValuesToBeValidResidentId,
    ExpectColumnValuesToBeValidUscc,
    raised,
)

ID_1949_MALE_X = "11010519491231002X"  # GB 11643's own example: born 1949-12-31, 17th digit 2 → 女


@pytest.fixture(scope="module")
def validate():
    ctx = gx.get_context(mode="ephemeral")
    batch_def = ctx.data_sources.add_pandas("t").add_dataframe_asset("a").add_batch_definition_whole_dataframe("b")

    def run(frame: pd.DataFrame, expectation) -> list[int]:
        frame = frame.assign(_row=range(len(frame)))
        result = batch_def.get_batch(batch_parameters={"dataframe": frame}).validate(
            expectation, result_format={"result_format": "COMPLETE", "unexpected_index_column_names": ["_row"]}
        )
        assert raised(result.exception_info) is None, result.exception_info
        return sorted(int(i["_row"]) for i in result.result.get("unexpected_index_list") or [])

    return run


def test_resident_id(validate) -> None:
    frame = pd.DataFrame({"id": [ID_1949_MALE_X, "110105194912310021", "11010519491331002X", None]})
    assert validate(frame, ExpectColumnValuesToBeValidResidentId(column="id")) == [1, 2]


def test_uscc(validate) -> None:
    frame = pd.DataFrame({"code": ["91350100M000100Y43", "91350100M000100Y44", "91350100M000100YI3"]})
    assert validate(frame, ExpectColumnValuesToBeValidUscc(column="code")) == [1, 2]


def test_division_code(validate) -> None:
    # 422824 was 利川县 until 1985, when it became 利川市 (422802); 429999 sits under a real province.
    frame = pd.DataFrame({"div": ["422802", "110105", "990000", "4228", "42280X", "422824", "429999"]})
    assert validate(frame, ExpectColumnValuesToBeValidDivisionCode(column="div")) == [2, 3, 4, 5, 6]


def test_sex_and_birth_agree_with_the_id(validate) -> None:
    frame = pd.DataFrame(
        {
            "id": [ID_1949_MALE_X, ID_1949_MALE_X, "440524188001010014", "440524188001010014", None],
            "sex": ["女", "男", "男", "女", "男"],
            "born": [date(1949, 12, 31), date(1949, 12, 30), date(1880, 1, 1), date(1880, 1, 1), date(2000, 1, 1)],
        }
    )
    assert validate(frame, ExpectColumnPairValuesToAgreeWithResidentId(column_A="id", column_B="sex")) == [1, 3]
    assert validate(frame, ExpectColumnPairValuesToAgreeWithResidentId(column_A="id", column_B="born")) == [1]


def test_dates_come_after_birth(validate) -> None:
    frame = pd.DataFrame(
        {
            "id": [ID_1949_MALE_X, ID_1949_MALE_X, ID_1949_MALE_X, None],
            "since": [date(1970, 1, 1), date(1949, 12, 31), date(1949, 12, 30), date(1900, 1, 1)],
        }
    )
    assert validate(frame, ExpectColumnPairValuesToBeAfterBirth(column_A="id", column_B="since")) == [2]


@pytest.mark.parametrize("engine", ["duckdb", "gx"])
def test_an_expectation_that_cannot_run_fails_the_run(make_hub, monkeypatch: pytest.MonkeyPatch, engine: str) -> None:
    import great_expectations.expectations as gxe

    from sharehub.demo.build import build_sources
    from sharehub.pipeline.run import run_resource
    from sharehub.pipeline.runs import last_runs

    hub = make_hub(gate_engine=engine)
    build_sources(hub.settings, hub.catalogue, 300, 60)

    def broken_suite(resource, today=None):
        return gx.ExpectationSuite(
            name=resource.suite, expectations=[gxe.ExpectColumnValuesToNotBeNull(column="no_such_column")]
        )

    monkeypatch.setattr("sharehub.pipeline.gate.build_suite", broken_suite)
    with pytest.raises(RuntimeError, match=r"expectation .*no_such_column.* could not run"):
        run_resource(hub, "scjg.legal_entity")
    (run,) = last_runs(hub, "scjg.legal_entity")
    assert run.status == "failed" and run.step == "gate"
    assert not hub.store.exists(hub.catalogue.resource("scjg.legal_entity").store_path)
