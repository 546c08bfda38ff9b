# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""The reminder and isolation ladder on account_dunning, and reconnection
once nothing is overdue."""
import datetime as dt
from collections import defaultdict
from itertools import groupby

from trytond.model import fields
from trytond.pool import Pool, PoolMeta
from trytond.transaction import Transaction, without_check_access

from .configuration import DEFAULT_LADDER, ladder_levels

ACTIONS = [
    (None, ""),
    ('reminder', "Reminder before the due date"),
    ('overdue', "Overdue reminder"),
    ('isolate', "Isolate the services"),
    ]


class Procedure(metaclass=PoolMeta):
    __name__ = 'account.dunning.procedure'

    @classmethod
    def isp_ladder_values(cls, name, ladder=DEFAULT_LADDER):
        "The values of a new reminder and isolation procedure"
        return {
            'name': name,
            'levels': [('create', ladder_levels(ladder))],
            }


class Level(metaclass=PoolMeta):
    __name__ = 'account.dunning.level'

    isp_action = fields.Selection(ACTIONS, "ISP Action",
        help="What the level does for subscribers: a WhatsApp reminder "
        "before the due date (negative overdue), an overdue reminder, or "
        "the isolation of the subscriber's services.")

    def test(self, line, date):
        """A level of the ladder applies only while no later level does: a
        run that missed days goes straight to the current step, and each
        step acts once"""
        result = super().test(line, date)
        if result and self.isp_action:
            levels = list(self.procedure.levels)
            for later in levels[levels.index(self) + 1:]:
                if (later.isp_action and later.overdue is not None
                        and (date - line.maturity_date) >= later.overdue):
                    return False
        return result


class Dunning(metaclass=PoolMeta):
    __name__ = 'account.dunning'

    @classmethod
    def _isp_lead(cls):
        "How long before the due date the first reminder may come"
        pool = Pool()
        Level = pool.get('account.dunning.level')
        levels = Level.search([('isp_action', '!=', None)])
        return max((-level.overdue for level in levels
                if level.overdue is not None), default=dt.timedelta(0))

    @classmethod
    def _overdue_line_domain(cls, date):
        domain = super()._overdue_line_domain(date)
        lead = cls._isp_lead()

        def look_ahead(domain):
            if isinstance(domain, tuple):
                if domain[:2] == ('maturity_date', '<='):
                    return ('maturity_date', '<=', date + lead)
                return domain
            if isinstance(domain, list):
                return [look_ahead(clause) for clause in domain]
            return domain
        domain = look_ahead(domain) if lead else domain
        company = Transaction().context.get('_isp_dunning_company')
        if company is not None:
            domain = [domain, ('account.company', '=', company)]
        return domain

    @classmethod
    def search(cls, domain, *args, **kwargs):
        # isp_run: the stock generate_dunnings moves the waiting dunnings
        # of every company; each branch moves its own on its own date
        company = Transaction().context.get('_isp_dunning_company')
        if company is not None:
            domain = [domain, ('company', '=', company)]
        return super().search(domain, *args, **kwargs)

    @classmethod
    def isp_run(cls, date=None):
        """Cron (per company): move the dunnings along the ladder and act on
        the steps reached (reminders, isolation), with the date of the
        context company (or of each company).  Each step acts once: a
        processed dunning waits at its level."""
        pool = Pool()
        Date = pool.get('ir.date')
        Company = pool.get('company.company')
        company = Transaction().context.get('company')
        companies = [Company(company)] if company else Company.search([])
        for company in companies:
            with Transaction().set_context(company=company.id):
                today = date or Date.today()
                with Transaction().set_context(
                        _isp_dunning_company=company.id):
                    cls.generate_dunnings(date=today)
                dunnings = cls.search([
                        ('company', '=', company.id),
                        ('state', '=', 'draft'),
                        ('blocked', '=', False),
                        ('level.isp_action', '!=', None),
                        ])
                if dunnings:
                    with Transaction().set_context(isp_dunning_date=today):
                        cls.process(dunnings)

    @classmethod
    def process(cls, dunnings):
        to_act = [d for d in dunnings
            if not d.blocked and d.state == 'draft' and d.level.isp_action]
        super().process(dunnings)
        if to_act:
            cls.isp_act(to_act)

    @classmethod
    def isp_act(cls, dunnings):
        "Send the reminders and isolate, for dunnings that reached a step"
        pool = Pool()
        Invoice = pool.get('account.invoice')
        Service = pool.get('isp.service')
        Date = pool.get('ir.date')
        by_event = defaultdict(list)
        extra = {}
        to_isolate = defaultdict(list)
        for dunning in dunnings:
            invoice = dunning.line.move.origin
            if not isinstance(invoice, Invoice) or invoice.state != 'posted':
                continue
            with Transaction().set_context(company=dunning.company.id):
                date = Transaction().context.get(
                    'isp_dunning_date') or Date.today()
            due = dunning.line.maturity_date
            action = dunning.level.isp_action
            if action == 'reminder':
                by_event['invoice_reminder'].append(invoice)
                extra[invoice.id] = {'days': str((due - date).days)}
            elif action == 'overdue':
                by_event['invoice_overdue'].append(invoice)
                extra[invoice.id] = {'days_overdue': str((date - due).days)}
            elif action == 'isolate':
                to_isolate[dunning.company].append(invoice)
        for event, invoices in by_event.items():
            Invoice.isp_notify(invoices, event, extra=extra)
        for company, invoices in to_isolate.items():
            Service.isp_isolate_unpaid(company, invoices)


class MoveLine(metaclass=PoolMeta):
    __name__ = 'account.move.line'

    @property
    def dunning_procedure(self):
        "The party's own procedure, else the branch's ladder"
        pool = Pool()
        Configuration = pool.get('isp.billing.configuration')
        procedure = super().dunning_procedure
        if not procedure and self.party and getattr(
                self.party, 'is_subscriber', False):
            procedure = Configuration.get_value(
                self.move.company, 'dunning_procedure')
        return procedure


class Service(metaclass=PoolMeta):
    __name__ = 'isp.service'

    @classmethod
    def isp_isolate_unpaid(cls, company, invoices):
        """Isolate the active services of the subscribers of `invoices`
        (through the network module) and tell them"""
        pool = Pool()
        Invoice = pool.get('account.invoice')
        parties = {i.party.id: i for i in invoices}
        services = cls.search([
                ('company', '=', company.id),
                ('subscriber', 'in', list(parties)),
                ('state', '=', 'active'),
                ])
        if not services:
            return []
        cls.write(services, {'isolated_by_billing': True})
        cls.isolate(services)
        notified = {}
        for service in services:
            invoice = parties[service.subscriber.id]
            notified.setdefault(invoice.id, (invoice, service.plan.rec_name))
        Invoice.isp_notify(
            [i for i, _ in notified.values()], 'service_isolated',
            extra={i.id: {'plan': plan} for i, plan in notified.values()})
        return services

    @classmethod
    def isp_reactivate_paid(cls, services):
        """Queue task: reactivate the services isolated for non-payment whose
        subscriber has nothing left overdue, and tell them"""
        with without_check_access():
            return cls._isp_reactivate_paid(services)

    @classmethod
    def _isp_reactivate_paid(cls, services):
        pool = Pool()
        Invoice = pool.get('account.invoice')
        Message = pool.get('isp.message')
        Date = pool.get('ir.date')
        services = [s for s in cls.browse([s.id for s in services])
            if s.state == 'isolated' and s.isolated_by_billing]
        to_reactivate = []
        services.sort(key=lambda s: s.company.id)
        for company, c_services in groupby(
                services, key=lambda s: s.company):
            c_services = list(c_services)
            with Transaction().set_context(company=company.id):
                today = Date.today()
            overdue = Invoice.isp_overdue_parties(
                company, {s.subscriber.id for s in c_services}, today)
            to_reactivate.extend(s for s in c_services
                if s.subscriber.id not in overdue)
        if not to_reactivate:
            return []
        cls.write(to_reactivate, {'isolated_by_billing': False})
        cls.reactivate(to_reactivate)
        Message.send_events([{
                    'event': 'service_reconnected', 'party': s.subscriber,
                    'company': s.company, 'origin': s.subscriber,
                    'values': {'plan': s.plan.rec_name},
                    } for s in to_reactivate])
        return to_reactivate
