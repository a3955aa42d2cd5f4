"""Working days under China's public-holiday calendar, with 调休, and deadlines counted as the law counts.

The State Council announces each year's arrangement late, so a local override file can add holidays
and make-up working days (and covers years the `chinese-calendar` package does not know yet).
Civil Code article 201: the day a period starts is not counted; a period of N working days ends at
24:00 of the Nth working day after that day.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import chinese_calendar
import yaml
from pydantic import BaseModel, ConfigDict

from sharehub.metadata.models import as_utc

log = logging.getLogger(__name__)
CHINA = ZoneInfo("Asia/Shanghai")


class Overrides(BaseModel):
    """The override file: dates that are holidays, and weekend dates that are working days (调休)."""

    model_config = ConfigDict(extra="forbid")
    holidays: list[date] = []
    workdays: list[date] = []


@dataclass
class WorkCalendar:
    """Which days are working days: the override file first, then chinese-calendar, then weekdays."""

    holidays: set[date] = field(default_factory=set)
    workdays: set[date] = field(default_factory=set)

    @classmethod
    def load(cls, override_file: Path | None) -> WorkCalendar:
        """The calendar with the override file applied (a missing file means no overrides)."""
        if override_file is None or not Path(override_file).exists():
            return cls()
        data = Overrides.model_validate(yaml.safe_load(Path(override_file).read_text(encoding="utf-8")) or {})
        clash = set(data.holidays) & set(data.workdays)
        if clash:
            raise ValueError(f"{override_file}: dates listed both as holiday and as workday: {sorted(clash)}")
        return cls(set(data.holidays), set(data.workdays))

    def is_workday(self, day: date) -> bool:
        """Whether `day` is a working day."""
        if day in self.workdays:
            return True
        if day in self.holidays:
            return False
        try:
            return bool(chinese_calendar.is_workday(day))
        except NotImplementedError:
            log.warning("no official holiday arrangement for %s yet; counting weekdays (add overrides)", day.year)
            return day.weekday() < 5

    def add_working_days(self, start: date, n: int) -> date:
        """The Nth working day after `start` (the start day itself is not counted); n=0 is `start`."""
        day = start
        counted = 0
        while counted < n:
            day += timedelta(days=1)
            if self.is_workday(day):
                counted += 1
        return day

    def deadline(self, starts: datetime, working_days: int) -> datetime:
        """The moment a period of `working_days` working days that starts at `starts` ends (24:00, China time)."""
        local = starts.astimezone(CHINA)
        last = self.add_working_days(local.date(), working_days)
        return datetime.combine(last + timedelta(days=1), time(0), tzinfo=CHINA)

    def working_days_between(self, start: date, end: date) -> int:
        """How many working days lie after `start` up to and including `end`."""
        return sum(1 for i in range(1, (end - start).days + 1) if self.is_workday(start + timedelta(days=i)))


def due_text(deadline: datetime) -> str:
    """A deadline as notices and listings write it: `2026-11-27 24:00`, the day (China time) at whose
    24:00 it falls. `deadline()` gives that moment as 00:00 of the next day, whose own date is one late."""
    return china_time(deadline - timedelta(microseconds=1), "%Y-%m-%d 24:00")


def china_time(moment: datetime, form: str = "%Y-%m-%d") -> str:
    """A stored moment as people here read it: in China time (a naive moment is UTC)."""
    return as_utc(moment).astimezone(CHINA).strftime(form)
