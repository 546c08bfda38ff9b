# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Helpers of the helpdesk tests: branches with a business calendar, a
category with its SLA and team, staff users of the ISP groups, and acting
as one of them with the access checks of an RPC call."""
import datetime as dt
from contextlib import contextmanager

from trytond.pool import Pool
from trytond.transaction import Transaction

from trytond.modules.isp_base.tests.portal_tools import (
    create_branch,
    create_subscriber,
)

GROUPS = [
    'group_isp_customer_service', 'group_isp_technician',
    'group_isp_finance', 'group_isp_branch_admin']


def create_user(login, group, companies):
    pool = Pool()
    User = pool.get('res.user')
    ModelData = pool.get('ir.model.data')
    user, = User.create([{
                'name': login, 'login': login,
                'groups': [('add', [ModelData.get_id('isp_base', group)])],
                'companies': [('add', [c.id for c in companies])],
                'company': companies[0].id,
                }])
    return user


@contextmanager
def as_user(user, company, now=None):
    """Act as `user` in `company` (the context a client sends), with the
    access checks; `now`: the helpdesk's clock (naive UTC)"""
    transaction = Transaction()
    context = {'_check_access': True, 'company': company.id}
    if now:
        context['_isp_helpdesk_now'] = now
    with transaction.set_user(user.id), transaction.set_context(context):
        yield


def hours(*intervals):
    "Interval values of a weekday: ('0', '08:00', '12:00')..."
    return [{
            'weekday': day,
            'start_time': dt.time(*map(int, start.split(':'))),
            'end_time': dt.time(*map(int, end.split(':'))),
            } for day, start, end in intervals]


def office_hours():
    "Monday-Friday 08:00-12:00 and 13:00-17:00, Saturday 08:00-12:00"
    result = []
    for day in '01234':
        result += [(day, '08:00', '12:00'), (day, '13:00', '17:00')]
    result.append(('5', '08:00', '12:00'))
    return hours(*result)


def create_helpdesk_branch(name, domain, timezone, code, intervals,
        holidays=(), lang=None, whatsapp=None):
    """A branch in `timezone` with a calendar, a category "Internet" with
    SLA targets, two technicians in its team, a subscriber, and a user of
    each branch group"""
    pool = Pool()
    Calendar = pool.get('isp.helpdesk.calendar')
    Category = pool.get('isp.helpdesk.category')
    company = create_branch(name, domain, lang=lang)
    company.timezone = timezone
    company.save()
    with Transaction().set_context(company=company.id):
        calendar, = Calendar.create([{
                    'company': company.id,
                    'name': "%s office" % name,
                    'timezone': timezone,
                    'intervals': [('create', intervals)],
                    'holidays': [('create', [
                                {'date': d, 'name': "Holiday"}
                                for d in holidays])],
                    }])
        users = {group: create_user('%s-%s' % (code, group), group,
                [company]) for group in GROUPS}
        second = create_user('%s-tech2' % code, 'group_isp_technician',
            [company])
        other = create_user('%s-tech3' % code, 'group_isp_technician',
            [company])
        internet, billing = Category.create([{
                    'company': company.id,
                    'name': "Internet",
                    'team': [('add', [
                                users['group_isp_technician'].id,
                                second.id])],
                    'slas': [('create', [{
                                    'priority': 'normal',
                                    'first_response': 60,
                                    'resolution': 8 * 60,
                                    }, {
                                    'priority': 'urgent',
                                    'first_response': 15,
                                    'resolution': 120,
                                    }])],
                    }, {
                    'company': company.id,
                    'name': "Billing",
                    'team': [('add', [other.id])],
                    'slas': [('create', [{
                                    'priority': 'normal',
                                    'first_response': 120,
                                    'resolution': 16 * 60,
                                    }])],
                    }])
        subscriber, _ = create_subscriber(company, "Subscriber %s" % code,
            email='%s@example.com' % code.lower(), whatsapp=whatsapp,
            lang=lang, portal=False)
    return {
        'company': company, 'calendar': calendar, 'internet': internet,
        'billing': billing, 'subscriber': subscriber, 'users': users,
        'tech2': second, 'tech3': other,
        }


def two_branches():
    "Bandung (WIB, office hours, a holiday) and Nairobi (07:00-19:00)"
    bandung = create_helpdesk_branch("Bandung", 'bandung.test',
        'Asia/Jakarta', 'BDG', office_hours(),
        holidays=[dt.date(2026, 12, 25)], lang='id',
        whatsapp='+6281234500001')
    nairobi = create_helpdesk_branch("Nairobi", 'nairobi.test',
        'Africa/Nairobi', 'NBO',
        hours(*[(d, '07:00', '19:00') for d in '012345']), lang='en',
        whatsapp='+254712000001')
    return {'bdg': bandung, 'nbo': nairobi}


def local(zone, *args):
    "Naive UTC of a wall-clock time of a zone"
    from zoneinfo import ZoneInfo
    return dt.datetime(*args, tzinfo=ZoneInfo(zone)).astimezone(
        dt.UTC).replace(tzinfo=None)
