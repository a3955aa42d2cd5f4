"""Deadlines in working days across the 2026 Spring Festival and its 调休 Saturdays, and the profiles."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from sharehub.profiles import DEADLINES, load_profile
from sharehub.workdays import CHINA, WorkCalendar, due_text

CAL = WorkCalendar()


def at(y: int, m: int, d: int, h: int = 10) -> datetime:
    return datetime(y, m, d, h, tzinfo=CHINA)


@pytest.mark.parametrize(
    ("starts", "days", "ends"),
    [
        # Friday before the festival: Saturday 14 Feb is a make-up working day, then nine days off.
        (at(2026, 2, 13), 1, at(2026, 2, 15, 0)),
        (at(2026, 2, 13), 2, at(2026, 2, 25, 0)),
        # Starting on the 调休 Saturday itself: that day is not counted (Civil Code art. 201).
        (at(2026, 2, 14), 1, at(2026, 2, 25, 0)),
        # Starting inside the holiday: Tue 24 … Fri 27, then Saturday 28 Feb is a working day.
        (at(2026, 2, 18), 5, at(2026, 3, 1, 0)),
        (at(2026, 2, 18), 6, at(2026, 3, 3, 0)),
        # Zero days: the end of the start day.
        (at(2026, 2, 13), 0, at(2026, 2, 14, 0)),
    ],
)
def test_deadlines_cross_the_spring_festival(starts: datetime, days: int, ends: datetime) -> None:
    assert CAL.deadline(starts, days) == ends


def test_a_deadline_is_written_as_24_00_of_its_last_working_day() -> None:
    """The deadline is stored as the moment it ends (00:00 of the next day); notices name the day it ends."""
    ends = CAL.deadline(datetime(2026, 11, 25, 14, 37, tzinfo=UTC), 2)  # Wednesday 22:37 in Beijing
    assert ends == at(2026, 11, 28, 0)
    assert due_text(ends) == "2026-11-27 24:00"  # Friday's end, not "Saturday 24:00"
    assert due_text(ends.astimezone(UTC).replace(tzinfo=None)) == "2026-11-27 24:00"  # as SQLite hands it back
    assert due_text(CAL.deadline(at(2026, 2, 13), 1)) == "2026-02-14 24:00"  # the 调休 Saturday


def test_start_day_is_the_china_date_of_the_moment() -> None:
    # 17:30 UTC on 12 Feb is already 01:30 on Friday 13 Feb in China.
    assert CAL.deadline(datetime(2026, 2, 12, 17, 30, tzinfo=UTC), 1) == at(2026, 2, 15, 0)
    assert CAL.deadline(datetime(2026, 2, 12, 15, 30, tzinfo=UTC), 1) == at(2026, 2, 14, 0)


def test_override_file_moves_days_and_covers_unannounced_years(tmp_path: Path) -> None:
    path = tmp_path / "holidays.yaml"
    path.write_text("holidays: [2031-01-01, 2026-03-02]\nworkdays: [2031-01-04]\n", encoding="utf-8")
    cal = WorkCalendar.load(path)
    assert not cal.is_workday(date(2031, 1, 1)) and cal.is_workday(date(2031, 1, 4))
    assert cal.is_workday(date(2031, 1, 2)) and not cal.is_workday(date(2031, 1, 5))
    # An announced extra holiday moves a deadline that would have ended on it.
    assert CAL.deadline(at(2026, 2, 27), 1) == at(2026, 3, 1, 0)
    assert cal.deadline(at(2026, 2, 27), 2) == at(2026, 3, 4, 0)
    path.write_text("holidays: [2031-01-01]\nworkdays: [2031-01-01]\n", encoding="utf-8")
    with pytest.raises(ValueError, match="both as holiday and as workday"):
        WorkCalendar.load(path)


@pytest.mark.parametrize(
    ("profile", "kind", "days", "article"),
    [
        ("lichuan", "application_review", 2, "第十九条"),
        ("lichuan", "provider_decision", 2, "第二十条"),
        ("lichuan", "notify_applicant", 1, "第二十条"),
        ("zhejiang", "provider_decision", 5, "第二十六条"),
        ("zhejiang", "feedback", 5, "第二十八条"),
        ("hengyang", "conditional_delivery", 10, "第十七条"),
        ("fushun", "open_application", 5, "第二十二条"),
    ],
)
def test_profiles_cite_the_articles_that_set_their_deadlines(profile: str, kind: str, days: int, article: str) -> None:
    d = load_profile(profile).deadlines[kind]
    assert d.working_days == days and d.from_regulation and d.basis.startswith(article)


def test_every_profile_declares_every_deadline_and_marks_defaults() -> None:
    for pid in ("lichuan", "fushun", "zhejiang", "hengyang", "zhongshan"):
        p = load_profile(pid)
        assert set(p.deadlines) == set(DEADLINES)
        assert all(d.from_regulation or d.basis.startswith("平台默认") for d in p.deadlines.values())
    assert not any(d.from_regulation for d in load_profile("zhongshan").deadlines.values())
    with pytest.raises(ValueError, match="unknown jurisdiction profile 'atlantis'"):
        load_profile("atlantis")
