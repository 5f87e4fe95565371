"""Korean time and holidays: dates as Koreans write them, in KST, with the coming public holidays.

The weekday table is fixed here rather than taken from an OS locale, which slim containers lack.
Holidays come from the maintained ``holidays`` package because they change by law (제헌절 returned
in 2026) and by decree (임시공휴일), and lunar dates need a table.
"""

from __future__ import annotations

import functools
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import holidays

__all__ = ["KST", "format_date_ko", "format_kst", "upcoming_holidays"]

KST = ZoneInfo("Asia/Seoul")

_WEEKDAYS = "월화수목금토일"  # date.weekday(): Monday is 0


def format_date_ko(day: date) -> str:
    """A date as Koreans write it in running text: ``3월 5일 (수)``."""
    return f"{day.month}월 {day.day}일 ({_WEEKDAYS[day.weekday()]})"


def format_kst(moment: datetime) -> str:
    """A moment in Korean local time: ``2025년 3월 5일 (수) 오후 2:10``.

    Aware datetimes are converted to KST; naive ones are taken to be KST already.
    The clock follows CLDR's Korean short time (``a h:mm``), so just after midnight
    reads ``오전 12:05`` and just after noon ``오후 12:05``.
    """
    local = moment.astimezone(KST) if moment.tzinfo is not None else moment
    period = "오전" if local.hour < 12 else "오후"
    hour = local.hour % 12 or 12
    return f"{local.year}년 {format_date_ko(local.date())} {period} {hour}:{local.minute:02d}"


@functools.cache
def _holidays_of(year: int) -> tuple[tuple[date, str], ...]:
    # Building the table costs tens of milliseconds (lunar conversion); a prompt needs it
    # on every request, so each year is built once per process.
    table = holidays.country_holidays("KR", years=year, language="ko")
    days: list[tuple[date, str]] = []
    for day in sorted(table):
        # The package says "대체 휴일"; the legal and everyday term is 대체공휴일.
        names = [name.replace("대체 휴일", "대체공휴일") for name in table.get_list(day)]
        days.append((day, ", ".join(names)))
    return tuple(days)


def upcoming_holidays(today: date, *, days: int = 42) -> list[tuple[date, str]]:
    """Korean public holidays from ``today`` through ``today + days``, oldest first.

    Includes 대체공휴일, election days and 임시공휴일 that the ``holidays`` package knows;
    a day with two holidays (어린이날 and 부처님오신날) has both names, comma-separated.
    """
    end = today + timedelta(days=days)
    found: list[tuple[date, str]] = []
    for year in range(today.year, end.year + 1):
        found.extend((day, name) for day, name in _holidays_of(year) if today <= day <= end)
    return found
