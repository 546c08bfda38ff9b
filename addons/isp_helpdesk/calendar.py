# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Business-hours calendars of the branches: the SLA clock's hours."""
from trytond.i18n import gettext
from trytond.model import Index, ModelSQL, ModelView, fields
from trytond.modules.company.company import TIMEZONES
from trytond.pool import Pool
from trytond.pyson import Eval
from trytond.transaction import Transaction

from trytond.modules.isp_base.tenancy import BranchValuesMixin

from . import sla
from .exceptions import CalendarValidationError

WEEKDAYS = [
    ('0', "Monday"), ('1', "Tuesday"), ('2', "Wednesday"),
    ('3', "Thursday"), ('4', "Friday"), ('5', "Saturday"), ('6', "Sunday"),
    ]


def time_minutes(value, end=False):
    "Minutes of the day of a time; an end at 00:00 is midnight (1440)"
    minutes = value.hour * 60 + value.minute
    if end and not minutes:
        return sla.DAY_MINUTES
    return minutes


class Calendar(BranchValuesMixin, ModelSQL, ModelView):
    "ISP Helpdesk Business Calendar"
    __name__ = 'isp.helpdesk.calendar'
    _branch_fields = ('company',)

    company = fields.Many2One(
        'company.company', "Company", required=True, ondelete='CASCADE',
        help="The branch whose hours these are.")
    name = fields.Char("Name", required=True)
    timezone = fields.Selection(
        TIMEZONES, "Timezone", required=True, translate=False,
        help="The zone of the hours and holidays: Asia/Jakarta (WIB), "
        "Asia/Makassar (WITA), Asia/Jayapura (WIT), Africa/Nairobi...")
    always_open = fields.Boolean(
        "24/7", help="Open every minute of every day, holidays included.")
    intervals = fields.One2Many(
        'isp.helpdesk.calendar.interval', 'calendar', "Opening Hours",
        states={'invisible': Eval('always_open', False)})
    holidays = fields.One2Many(
        'isp.helpdesk.calendar.holiday', 'calendar', "Holidays",
        states={'invisible': Eval('always_open', False)})

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_indexes.add(Index(t, (t.company, Index.Equality())))

    @staticmethod
    def default_company():
        return Transaction().context.get('company')

    @classmethod
    def default_timezone(cls):
        pool = Pool()
        Company = pool.get('company.company')
        company = Transaction().context.get('company')
        if company and company > 0:
            return Company(company).timezone or 'UTC'
        return 'UTC'

    @classmethod
    def default_always_open(cls):
        return False

    @classmethod
    def preprocess_values(cls, mode, values):
        """Refuse a new calendar's bad hours before anything is inserted
        (its later changes are checked by validate)"""
        values = super().preprocess_values(mode, values)
        if mode == 'create':
            week = [[] for _ in range(7)]
            for action in values.get('intervals') or []:
                if action[0] == 'create':
                    for interval in action[1]:
                        week[int(interval['weekday'])].append((
                                time_minutes(interval['start_time']),
                                time_minutes(interval['end_time'], True)))
            try:
                sla.Calendar(values.get('timezone'), week,
                    always_open=values.get('always_open'))
            except sla.CalendarError as error:
                raise CalendarValidationError(cls._error_message(
                        error, values.get('name'))) from error
        return values

    @classmethod
    def validate(cls, calendars):
        super().validate(calendars)
        cls.check_hours(calendars)

    @classmethod
    def check_hours(cls, calendars):
        "Refuse inverted or overlapping hours, and a calendar never open"
        for calendar in calendars:
            try:
                calendar.sla_calendar()
            except sla.CalendarError as error:
                raise CalendarValidationError(cls._error_message(
                        error, calendar.rec_name)) from error

    @classmethod
    def _error_message(cls, error, name):
        weekday = dict(WEEKDAYS).get(str(error.weekday), '')
        hours = ''
        if error.interval:
            hours = '%02d:%02d-%02d:%02d' % (
                error.interval[0] // 60, error.interval[0] % 60,
                error.interval[1] // 60, error.interval[1] % 60)
        message = {
            'inverted': 'isp_helpdesk.msg_calendar_interval_inverted',
            'overlap': 'isp_helpdesk.msg_calendar_interval_overlap',
            'closed': 'isp_helpdesk.msg_calendar_never_open',
            }[error.kind]
        return gettext(message, calendar=name or '', weekday=weekday,
            hours=hours)

    def sla_calendar(self):
        "The calendar as the SLA clock's pure Calendar"
        week = [[] for _ in range(7)]
        for interval in self.intervals:
            week[int(interval.weekday)].append(interval.minutes)
        return sla.Calendar(self.timezone, week,
            [h.date for h in self.holidays], self.always_open)

    @classmethod
    def sla_calendars(cls, calendars):
        "{id: sla.Calendar}"
        return {c.id: c.sla_calendar() for c in calendars}

    @classmethod
    def for_companies(cls, company_ids):
        """{company id: its calendar}: the first of the branch's calendars,
        None when it has none"""
        result = dict.fromkeys(company_ids)
        for calendar in cls.search([
                    ('company', 'in', list(company_ids))],
                order=[('id', 'DESC')]):
            result[calendar.company.id] = calendar
        return result


class CalendarInterval(ModelSQL, ModelView):
    "ISP Helpdesk Calendar Opening Hours"
    __name__ = 'isp.helpdesk.calendar.interval'

    calendar = fields.Many2One(
        'isp.helpdesk.calendar', "Calendar", required=True,
        ondelete='CASCADE')
    weekday = fields.Selection(WEEKDAYS, "Weekday", required=True,
        sort=False)
    start_time = fields.Time("Opens", required=True, format='%H:%M')
    end_time = fields.Time("Closes", required=True, format='%H:%M',
        help="00:00 closes at midnight (the end of the day).")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._order.insert(0, ('weekday', 'ASC'))
        cls._order.insert(1, ('start_time', 'ASC'))

    @property
    def minutes(self):
        return (time_minutes(self.start_time),
            time_minutes(self.end_time, end=True))

    @classmethod
    def validate(cls, intervals):
        pool = Pool()
        Calendar = pool.get('isp.helpdesk.calendar')
        super().validate(intervals)
        Calendar.check_hours(Calendar.browse(
                list({i.calendar.id for i in intervals})))


class CalendarHoliday(ModelSQL, ModelView):
    "ISP Helpdesk Calendar Holiday"
    __name__ = 'isp.helpdesk.calendar.holiday'

    calendar = fields.Many2One(
        'isp.helpdesk.calendar', "Calendar", required=True,
        ondelete='CASCADE')
    date = fields.Date("Date", required=True)
    name = fields.Char("Name")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._order.insert(0, ('date', 'ASC'))

