# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""The SLA clock: business minutes in a branch's calendar, without the ORM.

Instants are naive UTC datetimes (as Tryton stores timestamps) or aware
ones (converted to UTC); results are naive UTC.  A calendar is a timezone
and, per weekday, intervals of opening minutes of the local day (several a
day allowed, 0 <= start < end <= 1440), plus holidays (local dates, closed
all day); or always open (24/7: holidays do not apply).

    deadline(start, minutes, calendar, pauses)   the instant the clock has
        counted `minutes` business minutes from `start`, or None when a
        pause without end stops it before
    elapsed(start, end, calendar, pauses)        the business minutes
        between two instants, the paused time left out

A pause is (start, end) in UTC, end None while it lasts (waiting on the
customer).  The deadline of a positive target always falls inside opening
hours (its end included: 17:00 for a day closing at 17:00), and
elapsed(start, deadline(start, m)) == m.
"""
import datetime as dt
from bisect import bisect_right
from zoneinfo import ZoneInfo

UTC = dt.UTC
DAY_MINUTES = 1440
_MINUTE = dt.timedelta(minutes=1)
_DAY = dt.timedelta(days=1)
#: the farthest a calendar is searched for open time (about 10 years)
MAX_DAYS = 3660


class CalendarError(ValueError):
    "A calendar's intervals are inverted or overlap, or it is never open"

    def __init__(self, kind, weekday, interval):
        super().__init__(kind, weekday, interval)
        self.kind = kind  # 'inverted', 'overlap' or 'closed'
        self.weekday = weekday
        self.interval = interval


def check_intervals(week):
    """Raise CalendarError on an inverted, empty or out-of-day interval or
    on two overlapping intervals of a weekday (touching ones are fine)"""
    for weekday, intervals in enumerate(week):
        previous = None
        for start, end in sorted(intervals):
            if not (0 <= start < end <= DAY_MINUTES):
                raise CalendarError('inverted', weekday, (start, end))
            if previous and start < previous[1]:
                raise CalendarError('overlap', weekday, (start, end))
            previous = (start, end)


class Calendar:
    """A business-hours calendar.

    timezone: an IANA name (Asia/Jakarta for WIB, Asia/Makassar WITA,
    Asia/Jayapura WIT, Africa/Nairobi); week: 7 lists (Monday first) of
    (start, end) minutes of the local day; holidays: local dates;
    always_open: 24/7."""
    __slots__ = ('zone', 'week', 'holidays', 'always_open', '_cache')

    def __init__(self, timezone='UTC', week=None, holidays=(),
            always_open=False):
        self.zone = ZoneInfo(timezone or 'UTC')
        self.always_open = bool(always_open)
        week = [list(d) for d in (week or [()] * 7)]
        if len(week) != 7:
            raise ValueError("a week has 7 days")
        check_intervals(week)
        self.week = tuple(tuple(sorted(d)) for d in week)
        self.holidays = frozenset(holidays)
        if not self.always_open and not any(self.week):
            raise CalendarError('closed', None, None)
        # {local date: ((utc start, utc end), ...)}
        self._cache = {}

    def windows(self, day):
        "The opening windows of a local date as naive UTC pairs"
        try:
            return self._cache[day]
        except KeyError:
            pass
        if self.always_open:
            intervals = ((0, DAY_MINUTES),)
        elif day in self.holidays:
            intervals = ()
        else:
            intervals = self.week[day.weekday()]
        zone = self.zone
        midnight = dt.datetime(day.year, day.month, day.day)
        result = []
        for start, end in intervals:
            # wall-clock times of the local day, then to UTC (a DST gap or
            # fold moves them as zoneinfo says)
            utc_start = (midnight + start * _MINUTE).replace(
                tzinfo=zone).astimezone(UTC).replace(tzinfo=None)
            utc_end = (midnight + end * _MINUTE).replace(
                tzinfo=zone).astimezone(UTC).replace(tzinfo=None)
            if result and result[-1][1] == utc_start:
                result[-1] = (result[-1][0], utc_end)
            elif utc_end > utc_start:
                result.append((utc_start, utc_end))
        result = tuple(result)
        if len(self._cache) > 4096:
            self._cache.clear()
        self._cache[day] = result
        return result

    def local_date(self, instant):
        "The local date of a naive UTC instant"
        return instant.replace(tzinfo=UTC).astimezone(self.zone).date()

    def iter_windows(self, start, end=None):
        """Yield the opening windows (UTC) meeting [start, end), clipped to
        it, in order; end None: without end (at most MAX_DAYS days)"""
        day = self.local_date(start) - _DAY  # windows may cross midnight
        last = self.local_date(end) if end is not None else (
            day + MAX_DAYS * _DAY)
        while day <= last:
            for w_start, w_end in self.windows(day):
                if w_end <= start:
                    continue
                if end is not None and w_start >= end:
                    return
                yield max(w_start, start), (
                    w_end if end is None else min(w_end, end))
            day += _DAY

    def is_open(self, instant):
        "Whether a naive UTC instant is inside opening hours"
        instant = to_utc(instant)
        day = self.local_date(instant)
        return any(s <= instant < e
            for d in (day - _DAY, day) for s, e in self.windows(d))


def to_utc(instant):
    "A naive UTC datetime from a naive UTC or an aware one"
    if instant.tzinfo is not None:
        instant = instant.astimezone(UTC).replace(tzinfo=None)
    return instant


def merge_pauses(pauses):
    """Sorted, merged pauses as (starts, ends) lists, naive UTC; an open
    pause ends at datetime.max"""
    merged = []
    for start, end in sorted(
            (to_utc(s), to_utc(e) if e is not None else dt.datetime.max)
            for s, e in pauses or ()):
        if end <= start:
            continue
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1][1] = end
        else:
            merged.append([start, end])
    return [m[0] for m in merged], [m[1] for m in merged]


def _unpaused(w_start, w_end, starts, ends):
    "Yield the parts of [w_start, w_end) outside the merged pauses"
    i = bisect_right(ends, w_start)
    while w_start < w_end:
        if i >= len(starts) or starts[i] >= w_end:
            yield w_start, w_end
            return
        if starts[i] > w_start:
            yield w_start, starts[i]
        w_start = max(w_start, ends[i])
        i += 1


def deadline(start, minutes, calendar, pauses=()):
    """The naive UTC instant at which `minutes` business minutes have run
    from `start` in `calendar`, the pauses left out; None when a pause
    without end stops the clock before, or the calendar has no open time
    in MAX_DAYS days"""
    start = to_utc(start)
    if minutes < 0:
        raise ValueError("minutes must not be negative")
    remaining = dt.timedelta(minutes=minutes)
    if not remaining:
        return start
    starts, ends = merge_pauses(pauses)
    for w_start, w_end in calendar.iter_windows(start):
        for p_start, p_end in _unpaused(w_start, w_end, starts, ends):
            length = p_end - p_start
            if length >= remaining:
                return p_start + remaining
            remaining -= length
        if starts and ends[-1] == dt.datetime.max and w_end >= starts[-1]:
            return None
    return None


def elapsed(start, end, calendar, pauses=()):
    "The business minutes (a float) between two instants, pauses left out"
    return elapsed_delta(start, end, calendar, pauses) / _MINUTE


def elapsed_delta(start, end, calendar, pauses=()):
    "The business time between two instants as a timedelta"
    start, end = to_utc(start), to_utc(end)
    total = dt.timedelta()
    if end <= start:
        return total
    starts, ends = merge_pauses(pauses)
    for w_start, w_end in calendar.iter_windows(start, end):
        for p_start, p_end in _unpaused(w_start, w_end, starts, ends):
            total += p_end - p_start
    return total
