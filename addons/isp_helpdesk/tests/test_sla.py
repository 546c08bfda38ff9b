# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""The SLA clock (sla.py) without the ORM: examples in WIB, WITA, WIT and
Nairobi, and properties over random calendars, starts, targets and pauses
checked against a minute-by-minute count."""
import datetime as dt
import os
import tempfile
import unittest
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from trytond.modules.isp_helpdesk.sla import (
    Calendar,
    CalendarError,
    deadline,
    elapsed,
)

ZONES = ['Asia/Jakarta', 'Asia/Makassar', 'Asia/Jayapura', 'Africa/Nairobi']
H = 60


def office(timezone, holidays=()):
    "Monday-Friday 08:00-12:00 and 13:00-17:00, Saturday 08:00-12:00"
    day = [(8 * H, 12 * H), (13 * H, 17 * H)]
    return Calendar(timezone, [day] * 5 + [[(8 * H, 12 * H)], []],
        holidays)


def utc(zone, *args):
    "Naive UTC of a local wall-clock time"
    return dt.datetime(*args, tzinfo=ZoneInfo(zone)).astimezone(
        dt.UTC).replace(tzinfo=None)


def brute_minutes(start, end, calendar, pauses=()):
    "Open, unpaused minutes counted one by one (start on a whole minute)"
    count = 0
    t = start
    while t < end:
        paused = any(s <= t < (e or dt.datetime.max) for s, e in pauses)
        if not paused and calendar.is_open(t):
            count += 1
        t += dt.timedelta(minutes=1)
    return count


class SlaExamplesTestCase(unittest.TestCase):
    "Hand-checked deadlines"

    def test_same_rules_each_zone(self):
        "Friday 16:30 local + 60 min = Saturday 08:30 local, in every zone"
        for zone in ZONES:
            with self.subTest(zone=zone):
                calendar = office(zone)
                start = utc(zone, 2026, 12, 4, 16, 30)  # a Friday
                end = deadline(start, 60, calendar)
                self.assertEqual(end, utc(zone, 2026, 12, 5, 8, 30))
                self.assertEqual(elapsed(start, end, calendar), 60)

    def test_timezones_differ(self):
        "The same UTC instant is open in Jayapura and closed in Jakarta"
        instant = dt.datetime(2026, 12, 7, 0, 30)  # Monday 07:30 WIB
        self.assertFalse(office('Asia/Jakarta').is_open(instant))
        self.assertTrue(office('Asia/Jayapura').is_open(instant))  # 09:30

    def test_weekend_and_holiday(self):
        "Saturday noon + 30 min skips Sunday and the Monday holiday"
        zone = 'Asia/Makassar'
        calendar = office(zone, holidays=[dt.date(2026, 12, 7)])
        start = utc(zone, 2026, 12, 5, 11, 45)
        self.assertEqual(deadline(start, 30, calendar),
            utc(zone, 2026, 12, 8, 8, 15))

    def test_lunch_break_and_midnight(self):
        zone = 'Africa/Nairobi'
        calendar = office(zone)
        start = utc(zone, 2026, 12, 7, 11, 50)
        self.assertEqual(deadline(start, 20, calendar),
            utc(zone, 2026, 12, 7, 13, 10))
        night = Calendar(zone, [[(22 * H, 24 * H), (0, 2 * H)]] * 7)
        start = utc(zone, 2026, 12, 7, 23, 30)
        self.assertEqual(deadline(start, 60, night),
            utc(zone, 2026, 12, 8, 0, 30))

    def test_ends_at_closing(self):
        "A target that runs out at closing time ends at closing time"
        zone = 'Asia/Jakarta'
        start = utc(zone, 2026, 12, 7, 16, 0)
        self.assertEqual(deadline(start, 60, office(zone)),
            utc(zone, 2026, 12, 7, 17, 0))

    def test_always_open(self):
        calendar = Calendar('Asia/Jayapura', always_open=True,
            holidays=[dt.date(2026, 12, 25)])
        start = dt.datetime(2026, 12, 24, 20, 0)
        self.assertEqual(deadline(start, 24 * H, calendar),
            dt.datetime(2026, 12, 25, 20, 0))

    def test_pause_and_resume(self):
        "Waiting on the customer from 09:00 to 11:00 (and lunch) moves it"
        zone = 'Asia/Jakarta'
        calendar = office(zone)
        start = utc(zone, 2026, 12, 7, 8, 0)
        pause = (utc(zone, 2026, 12, 7, 9, 0), utc(zone, 2026, 12, 7, 11, 0))
        self.assertEqual(deadline(start, 180, calendar, [pause]),
            utc(zone, 2026, 12, 7, 14, 0))
        self.assertIsNone(deadline(start, 120, calendar, [(pause[0], None)]))
        self.assertEqual(deadline(start, 60, calendar, [(pause[0], None)]),
            utc(zone, 2026, 12, 7, 9, 0))

    def test_aware_instants(self):
        zone = ZoneInfo('Asia/Jakarta')
        start = dt.datetime(2026, 12, 7, 8, 0, tzinfo=zone)
        self.assertEqual(deadline(start, 30, office('Asia/Jakarta')),
            dt.datetime(2026, 12, 7, 1, 30))

    def test_bad_calendars(self):
        for week, kind in [
                ([[(9 * H, 8 * H)]] + [[]] * 6, 'inverted'),
                ([[(8 * H, 12 * H), (11 * H, 13 * H)]] + [[]] * 6,
                    'overlap'),
                ([[(0, 25 * H)]] + [[]] * 6, 'inverted'),
                ([[]] * 7, 'closed')]:
            with self.subTest(week=week):
                with self.assertRaises(CalendarError) as cm:
                    Calendar('Asia/Jakarta', week)
                self.assertEqual(cm.exception.kind, kind)
        with self.assertRaises(ValueError):
            deadline(dt.datetime(2026, 1, 1), -1, office('Asia/Jakarta'))


@st.composite
def calendars(draw):
    "Random calendars: 0-3 intervals a day, holidays, some 24/7"
    zone = draw(st.sampled_from(ZONES))
    if draw(st.integers(0, 9)) == 0:
        return Calendar(zone, always_open=True)
    week = []
    for _ in range(7):
        cuts = sorted(draw(st.sets(
                    st.integers(0, 48).map(lambda x: x * 30),
                    max_size=6)))
        cuts = cuts[:len(cuts) // 2 * 2]
        week.append(list(zip(cuts[::2], cuts[1::2], strict=True)))
    if not any(week):
        week[0] = [(9 * H, 17 * H)]
    holidays = draw(st.sets(
            st.dates(dt.date(2026, 12, 1), dt.date(2026, 12, 20)),
            max_size=4))
    return Calendar(zone, week, holidays)


# hypothesis's caches out of the checkout
set_hypothesis_home_dir(os.path.join(tempfile.gettempdir(), 'isp-hypothesis'))
#: deterministic examples (the same on every run and backend), no example
#: database written in the checkout
QUICK = {'deadline': None, 'database': None, 'derandomize': True}

starts = st.datetimes(dt.datetime(2026, 12, 1), dt.datetime(2026, 12, 12))
whole_minutes = starts.map(lambda d: d.replace(second=0, microsecond=0))


@st.composite
def pauses(draw, start):
    result = []
    for _ in range(draw(st.integers(0, 3))):
        begin = start + dt.timedelta(minutes=draw(st.integers(-120, 6000)))
        length = draw(st.one_of(st.none(), st.integers(1, 3000)))
        if length is not None:
            result.append((begin, begin + dt.timedelta(minutes=length)))
        elif draw(st.booleans()):
            result.append((begin, None))
    return result


class SlaPropertiesTestCase(unittest.TestCase):
    "Properties of the clock over random calendars"

    @settings(max_examples=120, **QUICK)
    @given(calendars(), starts, st.integers(0, 5000), st.data())
    def test_round_trip(self, calendar, start, minutes, data):
        "elapsed(start, deadline(start, m)) == m, the deadline open"
        ps = data.draw(pauses(start))
        end = deadline(start, minutes, calendar, ps)
        if end is None:
            self.assertTrue(any(e is None for _, e in ps))
            self.assertLess(elapsed(start, dt.datetime(2040, 1, 1),
                    calendar, ps), minutes)
            return
        self.assertEqual(elapsed(start, end, calendar, ps), minutes)
        self.assertGreaterEqual(end, start)
        if minutes:
            # inside opening hours, its closing instant included
            self.assertTrue(calendar.is_open(end - dt.timedelta(
                        microseconds=1)))
            # the last microsecond counted is not paused
            tick = end - dt.timedelta(microseconds=1)
            self.assertFalse(any(s <= tick < (e or dt.datetime.max)
                    for s, e in ps))

    @settings(max_examples=80, **QUICK)
    @given(calendars(), starts, st.integers(0, 3000),
        st.integers(0, 3000), st.data())
    def test_monotonic(self, calendar, start, m1, m2, data):
        "More minutes never give an earlier deadline"
        ps = data.draw(pauses(start))
        low, high = sorted([m1, m2])
        d_low = deadline(start, low, calendar, ps)
        d_high = deadline(start, high, calendar, ps)
        if d_high is not None:
            self.assertIsNotNone(d_low)
            self.assertLessEqual(d_low, d_high)
            if low < high:
                self.assertLess(d_low, d_high)

    @settings(max_examples=40, **QUICK,
        suppress_health_check=[HealthCheck.too_slow])
    @given(calendars(), whole_minutes, st.integers(0, 3 * 1440), st.data())
    def test_elapsed_counts_minutes(self, calendar, start, span, data):
        "elapsed matches a minute-by-minute count (midnight, holidays...)"
        ps = [(s.replace(second=0, microsecond=0),
                e.replace(second=0, microsecond=0) if e else None)
            for s, e in data.draw(pauses(start))]
        end = start + dt.timedelta(minutes=span)
        self.assertEqual(elapsed(start, end, calendar, ps),
            brute_minutes(start, end, calendar, ps))

    @settings(max_examples=60, **QUICK)
    @given(calendars(), starts, st.integers(0, 2000), st.integers(0, 2000))
    def test_additive(self, calendar, start, m1, m2):
        "Counting m1 then m2 more is counting m1 + m2"
        first = deadline(start, m1, calendar)
        self.assertEqual(deadline(first, m2, calendar),
            deadline(start, m1 + m2, calendar))

    @settings(max_examples=60, **QUICK)
    @given(calendars(), starts, st.integers(1, 2000), st.data())
    def test_pause_only_delays(self, calendar, start, minutes, data):
        "A pause (then resume) never brings the deadline earlier"
        ps = [p for p in data.draw(pauses(start)) if p[1] is not None]
        plain = deadline(start, minutes, calendar)
        paused = deadline(start, minutes, calendar, ps)
        self.assertLessEqual(plain, paused)
