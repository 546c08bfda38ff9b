# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Benchmark of the helpdesk's SLA clock and escalation cron.

    BENCH helpdesk_sla_deadlines_per_s <n> /s   the pure deadline function
                                                (sla.deadline) over random
                                                starts, targets of 1 h to
                                                3 days, with and without
                                                pauses, in WIB office hours,
                                                WITA 24/7 and Nairobi
                                                07:00-19:00 calendars (each
                                                calendar built once, as the
                                                cron does)
    BENCH helpdesk_escalation_<n>_s <s> s       the escalation cron
                                                (Ticket.escalate, committed)
                                                over <n> open tickets in 3
                                                branches with those
                                                calendars, PostgreSQL
    BENCH helpdesk_escalation_again_<n>_s <s> s the next run (nothing new to
                                                raise or notify)

    .venv/bin/python bench/bench_helpdesk.py [--steps deadlines,escalation]
        [--tickets 100000] [--uri postgresql://...]

The tickets are copies of one ticket the ORM made per branch (bench/bulk.py:
COPY), opened over the 3 days before the cron's instant (Monday 10:00 WIB:
Bandung and Makassar open, Nairobi not yet), their deadlines and at-risk
instants computed by the SLA clock, a few paused.  Without --uri a private
cluster is started (scripts/lib.sh).  Never asserts a time.
"""
import argparse
import datetime as dt
import os
import pathlib
import random
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
VENV = pathlib.Path(os.environ.get('ISP_VENV', ROOT / '.venv'))
BIN = VENV / 'bin'

from bench.bench_notify import Stack as _Stack  # noqa: E402
from bench.bench_notify import private_cluster  # noqa: E402

H = 60
#: (branch, timezone, weekly hours or None for 24/7, holidays)
BRANCHES = [
    ("Bandung", 'Asia/Jakarta',
        [[(8 * H, 12 * H), (13 * H, 17 * H)]] * 5 + [[(8 * H, 12 * H)], []],
        [dt.date(2026, 12, 25)]),
    ("Makassar", 'Asia/Makassar', None, []),
    ("Nairobi", 'Africa/Nairobi', [[(7 * H, 19 * H)]] * 6 + [[]], []),
    ]
#: the cron's instant: Monday 2026-12-07 10:00 WIB
NOW = dt.datetime(2026, 12, 7, 3, 0)
TARGETS = [(15, 120), (60, 480), (120, 960), (240, 4320)]


def sla_calendars():
    from trytond.modules.isp_helpdesk.sla import Calendar
    return [Calendar(zone, week, holidays, always_open=week is None)
        for _, zone, week, holidays in BRANCHES]


def step_deadlines(options):
    "Deadlines per second of the pure function"
    from trytond.modules.isp_helpdesk.sla import deadline
    calendars = sla_calendars()
    rnd = random.Random(42)
    cases = []
    for _ in range(options.deadlines):
        start = NOW - dt.timedelta(minutes=rnd.randrange(30 * 24 * 60))
        pauses = []
        if rnd.random() < 0.2:
            begin = start + dt.timedelta(minutes=rnd.randrange(600))
            pauses.append((begin, begin + dt.timedelta(
                        minutes=rnd.randrange(1, 2000))))
        cases.append((start, rnd.choice([60, 240, 480, 960, 4320]),
                rnd.choice(calendars), pauses))
    began = time.perf_counter()
    for start, minutes, calendar, pauses in cases:
        deadline(start, minutes, calendar, pauses)
    elapsed = time.perf_counter() - began
    return [('helpdesk_sla_deadlines_per_s', '%.0f' % (len(cases) / elapsed),
            '/s')]


class Stack(_Stack):
    "A database with isp_helpdesk activated"

    def __init__(self, uri, name='isp_helpdesk_bench'):
        super().__init__(uri, name=name, workers=0)

    def create_database(self):
        template = self.module_template('isp_helpdesk')
        self._sql('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % self.name,
            'CREATE DATABASE "%s" TEMPLATE "%s"' % (self.name, template))


def setup_branches(count):
    """The 3 branches (calendar, category with SLA and 5 technicians, a
    branch administrator, a subscriber) and `count` open tickets"""
    from trytond.pool import Pool

    from bench import bulk
    from trytond.modules.isp_helpdesk.sla import deadline
    pool = Pool()
    Company = pool.get('company.company')
    Currency = pool.get('currency.currency')
    Party = pool.get('party.party')
    User = pool.get('res.user')
    ModelData = pool.get('ir.model.data')
    Calendar = pool.get('isp.helpdesk.calendar')
    Category = pool.get('isp.helpdesk.category')
    Ticket = pool.get('isp.helpdesk.ticket')
    currency, = Currency.create([{'name': 'Rupiah', 'code': 'IDR',
                'symbol': 'Rp', 'digits': 0, 'rounding': 1}])
    technician = ModelData.get_id('isp_base', 'group_isp_technician')
    admin = ModelData.get_id('isp_base', 'group_isp_branch_admin')
    clocks = sla_calendars()
    rnd = random.Random(7)
    per_branch = [count // 3 + (1 if i < count % 3 else 0)
        for i in range(3)]
    for (name, zone, week, holidays), clock, n in zip(
            BRANCHES, clocks, per_branch, strict=True):
        party, = Party.create([{'name': name}])
        company, = Company.create([{'party': party.id,
                    'currency': currency.id, 'timezone': zone}])
        intervals = [{'weekday': str(d),
                'start_time': dt.time(s // 60, s % 60),
                'end_time': dt.time((e // 60) % 24, e % 60)}
            for d, day in enumerate(week or []) for s, e in day]
        calendar, = Calendar.create([{'company': company.id,
                    'name': name, 'timezone': zone,
                    'always_open': week is None,
                    'intervals': [('create', intervals)],
                    'holidays': [('create', [{'date': h}
                                for h in holidays])]}])
        users = User.create([{
                    'name': '%s %s %d' % (name, kind, i),
                    'login': '%s-%s-%d' % (name.lower(), kind, i),
                    'groups': [('add', [group])],
                    'companies': [('add', [company.id])],
                    'company': company.id,
                    } for kind, group, k in [
                    ('tech', technician, 5), ('admin', admin, 1)]
                for i in range(k)])
        techs = [u for u in users if 'tech' in u.login]
        category, = Category.create([{'company': company.id,
                    'name': 'Internet',
                    'team': [('add', [u.id for u in techs])],
                    'slas': [('create', [{'priority': p,
                                    'first_response': r,
                                    'resolution': s}
                                for p, (r, s) in zip(
                                    ['low', 'normal', 'high', 'urgent'],
                                    reversed(TARGETS), strict=True)])]}])
        subscriber, = Party.create([{'name': '%s subscriber' % name,
                    'is_subscriber': True, 'isp_company': company.id}])
        ticket, = Ticket.create([{'company': company.id,
                    'subscriber': subscriber.id, 'category': category.id,
                    'subject': 'No internet', 'channel': 'phone'}])
        targets = dict(zip(['low', 'normal', 'high', 'urgent'],
                reversed(TARGETS), strict=True))
        rows = []
        share = 0.75
        for i in range(n - 1):
            opened = NOW - dt.timedelta(minutes=rnd.randrange(3 * 24 * 60))
            priority = rnd.choice(list(targets))
            response, resolution = targets[priority]
            responded = rnd.random() < 0.5
            row = {
                'number': 'B-%s-%d' % (name[:3], i),
                'opened_at': opened,
                'priority': priority,
                'state': rnd.choice(['assigned', 'in_progress']),
                'assignee': rnd.choice(techs).id,
                'assigned_at': opened,
                'first_response_at': opened + dt.timedelta(minutes=5)
                if responded else None,
                'response_target': response,
                'resolution_target': resolution,
                }
            for clock_name, minutes in [('response', response),
                    ('resolution', resolution)]:
                row[clock_name + '_deadline'] = deadline(
                    opened, minutes, clock)
                row[clock_name + '_risk_at'] = deadline(
                    opened, int(minutes * share), clock)
            rows.append(row)
        pattern, = bulk.read_rows('isp_helpdesk_ticket', 'id', ticket.id)
        bulk.insert_copies('isp_helpdesk_ticket', pattern, rows)


def step_escalation(options):
    "The escalation cron over the open tickets"
    stack = Stack(options.uri)
    stack.create_database()
    stack.init_pool()
    from trytond.pool import Pool
    from trytond.transaction import Transaction
    with stack.transaction() as transaction:
        setup_branches(options.tickets)
        transaction.commit()
    with stack.transaction() as transaction:
        cursor = transaction.connection.cursor()
        cursor.execute('ANALYZE')
    results = []
    for label in ['', 'again_']:
        with stack.transaction(_isp_helpdesk_now=NOW) as transaction:
            Ticket = Pool().get('isp.helpdesk.ticket')
            began = time.perf_counter()
            Ticket.escalate()
            transaction.commit()
            elapsed = time.perf_counter() - began
        results.append(('helpdesk_escalation_%s%d_s' % (
                    label, options.tickets), '%.2f' % elapsed, 's'))
    with stack.transaction() as transaction:
        cursor = Transaction().connection.cursor()
        cursor.execute('SELECT response_escalation, resolution_escalation, '
            'COUNT(*) FROM isp_helpdesk_ticket GROUP BY 1, 2 ORDER BY 1, 2')
        for row in cursor:
            print('escalation: %s' % (row,), file=sys.stderr)
        cursor.execute('SELECT COUNT(*) FROM res_notification')
        print('notifications: %s' % cursor.fetchone(), file=sys.stderr)
    stack.drop_database()
    return results


STEPS = {'deadlines': step_deadlines, 'escalation': step_escalation}


def run(options):
    for name in options.steps.split(','):
        if name not in STEPS:
            raise SystemExit('unknown step %r (%s)' % (
                    name, ', '.join(STEPS)))
        for bench, value, unit in STEPS[name](options):
            print('BENCH %s %s %s' % (bench, value, unit), flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--steps', default='deadlines,escalation')
    parser.add_argument('--tickets', type=int, default=100000)
    parser.add_argument('--deadlines', type=int, default=100000,
        help="deadlines computed by the deadlines step")
    parser.add_argument('--uri', default=os.environ.get('ISP_TEST_PG_URI'))
    options = parser.parse_args(argv)
    if 'escalation' in options.steps and not options.uri:
        with private_cluster() as uri:
            options.uri = uri
            run(options)
    else:
        run(options)


if __name__ == '__main__':
    main()
