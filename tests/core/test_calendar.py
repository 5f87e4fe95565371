from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from core.calendar import KST, format_date_ko, format_kst, upcoming_holidays


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2025, 3, 5, 14, 10, tzinfo=KST), "2025년 3월 5일 (수) 오후 2:10"),
        (datetime(2025, 3, 5, 9, 5, tzinfo=KST), "2025년 3월 5일 (수) 오전 9:05"),
        (datetime(2025, 3, 5, 0, 5, tzinfo=KST), "2025년 3월 5일 (수) 오전 12:05"),
        (datetime(2025, 3, 5, 12, 0, tzinfo=KST), "2025년 3월 5일 (수) 오후 12:00"),
        (datetime(2025, 3, 5, 23, 59, tzinfo=KST), "2025년 3월 5일 (수) 오후 11:59"),
        (datetime(2025, 12, 28, 11, 30, tzinfo=KST), "2025년 12월 28일 (일) 오전 11:30"),
        (datetime(2025, 3, 5, 14, 10), "2025년 3월 5일 (수) 오후 2:10"),  # naive: already KST
    ],
)
def test_format_kst(moment: datetime, expected: str) -> None:
    assert format_kst(moment) == expected


def test_format_kst_converts_utc_across_midnight() -> None:
    # 16:30 UTC on Tuesday is 01:30 on Wednesday in Seoul.
    assert format_kst(datetime(2025, 3, 4, 16, 30, tzinfo=UTC)) == "2025년 3월 5일 (수) 오전 1:30"
    new_york = timezone(timedelta(hours=-5))
    assert format_kst(datetime(2025, 12, 31, 10, 0, tzinfo=new_york)) == "2026년 1월 1일 (목) 오전 12:00"


def test_format_date_ko_covers_every_weekday() -> None:
    week = [format_date_ko(date(2025, 3, 3) + timedelta(days=n)) for n in range(7)]
    assert week == [
        "3월 3일 (월)",
        "3월 4일 (화)",
        "3월 5일 (수)",
        "3월 6일 (목)",
        "3월 7일 (금)",
        "3월 8일 (토)",
        "3월 9일 (일)",
    ]


def test_kst_is_utc_plus_nine_without_dst() -> None:
    assert datetime(2026, 7, 1, tzinfo=KST).utcoffset() == timedelta(hours=9)
    assert datetime(2026, 1, 1, tzinfo=KST).utcoffset() == timedelta(hours=9)


def test_chuseok_2026_and_its_substitute_holiday() -> None:
    found = dict(upcoming_holidays(date(2026, 9, 20), days=20))
    assert found[date(2026, 9, 24)] == "추석 전날"
    assert found[date(2026, 9, 25)] == "추석"
    assert found[date(2026, 9, 26)] == "추석 다음날"
    assert found[date(2026, 10, 3)] == "개천절"
    assert found[date(2026, 10, 5)] == "개천절 대체공휴일"
    assert found[date(2026, 10, 9)] == "한글날"
    assert date(2026, 10, 4) not in found  # an ordinary Sunday


def test_constitution_day_is_a_holiday_again_from_2026() -> None:
    assert (date(2026, 7, 17), "제헌절") in upcoming_holidays(date(2026, 7, 1), days=30)
    assert all(day != date(2025, 7, 17) for day, _ in upcoming_holidays(date(2025, 7, 1), days=30))


def test_window_crosses_the_year_boundary_in_order() -> None:
    found = upcoming_holidays(date(2026, 12, 20), days=20)
    assert found == [(date(2026, 12, 25), "기독탄신일"), (date(2027, 1, 1), found[1][1])]
    assert "신정" in found[1][1]


def test_two_holidays_on_one_day_are_both_named() -> None:
    found = dict(upcoming_holidays(date(2025, 5, 1), days=10))
    assert "어린이날" in found[date(2025, 5, 5)]
    assert "부처님오신날" in found[date(2025, 5, 5)]
    assert "대체공휴일" in found[date(2025, 5, 6)]


def test_window_bounds_are_inclusive_and_sorted() -> None:
    found = upcoming_holidays(date(2026, 9, 24), days=1)
    assert [day for day, _ in found] == [date(2026, 9, 24), date(2026, 9, 25)]
    six_weeks = upcoming_holidays(date(2026, 9, 1))
    assert [day for day, _ in six_weeks] == sorted(day for day, _ in six_weeks)
    assert six_weeks[-1][0] == date(2026, 10, 9)  # 10-13 is the window's last day
    assert upcoming_holidays(date(2026, 11, 1), days=20) == []
