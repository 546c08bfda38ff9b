# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Invoices of services: posting, notices, staff payments, credit."""
import contextlib
import datetime as dt
import weakref
from collections import defaultdict
from decimal import Decimal
from itertools import groupby

from sql import For
from trytond import backend
from trytond.i18n import gettext
from trytond.model import Index, ModelView, Unique, dualmethod, fields
from trytond.modules.currency.fields import Monetary
from trytond.pool import Pool, PoolMeta
from trytond.pyson import Eval
from trytond.tools import grouped_slice
from trytond.transaction import (
    Transaction,
    TransactionError,
    without_check_access,
)
from trytond.wizard import Button, StateTransition, StateView, Wizard

from trytond.modules.isp_base.tenancy import (
    BranchOnChangeMixin,
    BranchWizardMixin,
)

from .configuration import PAYMENT_METHODS
from .exceptions import BillingError, PaymentError

KINDS = [
    (None, ""),
    ('recurring', "Recurring"),
    ('prorated', "Prorated"),
    ('setup', "Setup Fee"),
    ('discount', "Discount"),
    ('plan_credit', "Plan Change Credit"),
    ('plan_charge', "Plan Change Charge"),
    ('overage', "Usage Overage"),
    ]
METHOD_LABELS = {
    'cash': "Cash",
    'bank_transfer': "Bank transfer",
    'qris': "QRIS",
    'gateway': "Online payment",
    }
# the kinds of line that carry the period key (one per service and period)
PERIOD_KINDS = {'recurring', 'prorated'}
AMOUNT_CACHE = [
    'untaxed_amount_cache', 'tax_amount_cache', 'total_amount_cache']
# written on draft invoices without changing their taxes: the amounts cache
# and the number's search columns (written after each create)
TAX_NEUTRAL_FIELDS = set(AMOUNT_CACHE) | {'number_alnum', 'number_digit'}


#: The payments batch open in a database transaction
#: (`Invoice.isp_payments_batch`): what its payments left to do at its end.
_batches = weakref.WeakKeyDictionary()


def _format_amount(lang, amount, currency):
    return lang.currency(amount, currency, symbol=True, grouping=True)


class Invoice(metaclass=PoolMeta):
    __name__ = 'account.invoice'

    isp_services = fields.Function(fields.Many2Many(
            'isp.service', None, None, "Services"), 'get_isp_services')
    isp_customer_id = fields.Function(
        fields.Char("Customer ID"), 'get_isp_customer_id')

    def get_isp_services(self, name):
        return sorted({line_.isp_service.id for line_ in self.lines
                if getattr(line_, 'isp_service', None)})

    def get_isp_customer_id(self, name):
        ids = sorted({line_.isp_service.customer_id for line_ in self.lines
                if getattr(line_, 'isp_service', None)
                and line_.isp_service.customer_id})
        return ', '.join(ids) or None

    @property
    def is_isp(self):
        return any(getattr(line_, 'isp_service', None) for line_ in self.lines)

    # -- posting --

    @classmethod
    def isp_post(cls, invoices):
        """Post `invoices` the stock way (numbering, taxes, moves), use the
        subscribers' credit on them, then queue the 'invoice issued'
        notices.

        The sequences are locked first (`isp_lock_numbering`), then draft
        invoices are validated and get their draft move (`isp_validate`),
        and the stock `post` numbers them and posts their moves."""
        cls.isp_lock_numbering(invoices)
        cls._isp_post(invoices)

    @classmethod
    def _isp_post(cls, invoices):
        cls.isp_validate(invoices)
        invoices = cls.browse(sorted(invoices, key=lambda i: (
                    i.company.id, i.id)))
        with Transaction().set_context(_skip_warnings=True):
            # one company at a time: account.move's post fails on moves of
            # several companies at once (trytond 8.0)
            for _, c_invoices in groupby(invoices, key=lambda i: i.company):
                cls.post(list(c_invoices))
        invoices = cls.browse(invoices)
        cls.isp_apply_credit(invoices)
        cls.isp_notify(invoices, 'invoice_issued')

    @classmethod
    def _store_cache(cls, invoices):
        """Store the amounts cache in one write when nothing is cached yet,
        and keep it at posting when it was stored at validation.

        The stock method clears the cache then stores the computed amounts
        (two writes, each revalidating the invoice and, on a draft,
        recomputing its taxes), and runs at validation and again at
        posting.  A validated invoice cannot change (its lines and taxes
        are read-only until it goes back to draft, which clears the
        cache), so the amounts it cached are still the computed ones."""
        invoices = list(invoices)

        def cached(invoice):
            return [getattr(invoice, name) is not None
                for name in AMOUNT_CACHE]
        kept, fresh, others = [], [], []
        for invoice in invoices:
            state = cached(invoice)
            if all(state) and invoice.state == 'validated':
                kept.append(invoice)
            elif not any(state):
                fresh.append(invoice)
            else:
                others.append(invoice)
        if fresh:
            values = [(invoice.untaxed_amount, invoice.tax_amount,
                    invoice.total_amount) for invoice in fresh]
            for invoice, (untaxed, tax, total) in zip(
                    fresh, values, strict=True):
                invoice.untaxed_amount_cache = untaxed
                invoice.tax_amount_cache = tax
                invoice.total_amount_cache = total
            if Transaction().context.get('_isp_move_at_validation'):
                # isp_validate: the draft move in the same write
                cls._isp_create_moves(
                    [i for i in fresh if i.type == 'out' and not i.move])
            cls.save(fresh)
        if others:
            super()._store_cache(others)

    @classmethod
    def preprocess_values(cls, mode, values):
        values = super().preprocess_values(mode, values)
        if mode == 'write' and values.get('number'):
            # the number's search columns in the same write as the number
            # (stock computes them after it and writes them again)
            values.update(cls(number=values['number']).compute_fields(
                    field_names={'number'}))
        return values

    def compute_fields(self, field_names=None):
        values = super().compute_fields(field_names=field_names)
        if self.id is not None and self.id >= 0:
            # keep only what changes: each write of an invoice revalidates
            # it (created without a number, its number's search columns
            # are empty already; numbered, they were written with it)
            values = {name: value for name, value in values.items()
                if getattr(self, name) != value}
        return values

    @classmethod
    def on_modification(cls, mode, invoices, field_names=None):
        # the stock method recomputes the taxes of draft invoices after
        # any write; a write of fields that change no tax needs none
        if (mode == 'write' and field_names
                and set(field_names) <= TAX_NEUTRAL_FIELDS):
            with Transaction().set_context(_isp_taxes_unchanged=True):
                super().on_modification(
                    mode, invoices, field_names=field_names)
        else:
            super().on_modification(mode, invoices, field_names=field_names)

    @dualmethod
    def update_taxes(cls, invoices, exception=False):
        if (not exception
                and Transaction().context.get('_isp_taxes_unchanged')):
            return
        super().update_taxes(invoices, exception=exception)

    @classmethod
    def isp_post_batch(cls, invoices):
        """Queue task of the billing run: post the invoices a billing batch
        validated (those still validated), as `isp_post` does.

        It waits for the numbering sequences first: posting is the only
        part of the billing run that workers cannot do at the same time."""
        invoices = [i for i in cls.browse(invoices)
            if i.state == 'validated']
        if invoices:
            # the tasks it queues (the notices to send) come after the
            # billing batches queued before: the run goes first
            with without_check_access(), Transaction().set_context(
                    queue_expected_at=dt.timedelta(0)):
                cls.isp_lock_numbering(invoices, wait=True)
                cls._isp_post(invoices)

    @classmethod
    def isp_validate(cls, invoices):
        """Validate the draft `invoices` with the stock Validate step (the
        tax and similar-invoice checks, the amounts cache) and create their
        draft move with the stock `get_move`, as that step does for
        supplier invoices: `post` then only numbers and posts them.  The
        journal periods' table is locked first when a journal has no
        period yet (as creating the move would)."""
        drafts = [i for i in invoices if i.state == 'draft']
        unmoved = [i for i in invoices
            if i.state == 'validated' and not i.move]
        if not drafts and not unmoved:
            return
        cls._isp_lock_journal_periods(drafts + unmoved)
        with Transaction().set_context(
                _skip_warnings=True, _isp_move_at_validation=True):
            if drafts:
                # the moves are saved with the amounts cache (_store_cache)
                cls.validate_invoice(drafts)
            if unmoved:
                cls._isp_create_moves(unmoved)
                cls.save(unmoved)

    @classmethod
    def _isp_lock_journal_periods(cls, invoices):
        "Lock the journal periods' table when a journal has no period yet"
        pool = Pool()
        JournalPeriod = pool.get('account.journal.period')
        Period = pool.get('account.period')
        pairs, periods = set(), {}
        for invoice in invoices:
            date = invoice.accounting_date or invoice.invoice_date
            key = (invoice.company.id, date)
            if key not in periods:
                periods[key] = Period.find(invoice.company, date=date)
            pairs.add((invoice.journal.id, periods[key].id))
        existing = {(p.journal.id, p.period.id)
            for p in JournalPeriod.search([
                    ('journal', 'in', list({j for j, _ in pairs})),
                    ('period', 'in', list({p for _, p in pairs})),
                    ])}
        if pairs - existing:
            cls._isp_lock(JournalPeriod, wait=True)

    @classmethod
    def _isp_create_moves(cls, invoices):
        "Create and link the draft moves of `invoices` (stock `get_move`)"
        Move = Pool().get('account.move')
        moves = []
        for invoice in invoices:
            invoice.move = invoice.get_move()
            moves.append(invoice.move)
        Move.save(moves)

    @classmethod
    def isp_lock_numbering(cls, invoices, wait=False):
        """Lock the strict sequences that number `invoices` and their moves
        (`wait`: waiting until they are free).

        Stock code asks for these locks when it reaches the numbering: the
        transaction fails with a TransactionError and runs again from the
        start with them taken at once (NOWAIT).  A billing batch ran up to
        five times that way (services, invoice sequence, journal periods,
        move sequence); asked for here, before any work, the restart is
        cheap and happens once."""
        pool = Pool()
        SequenceStrict = pool.get('ir.sequence.strict')
        Period = pool.get('account.period')
        sequences, seen = set(), set()
        for invoice in invoices:
            if invoice.state in {'posted', 'paid', 'cancelled'}:
                continue
            date = invoice.accounting_date or invoice.invoice_date
            # the sequences depend on the company, type and date: read
            # them once per key (a billing batch shares one)
            key = (invoice.company.id, invoice.type, date,
                invoice.number or invoice.sequence_type)
            if key in seen:
                continue
            seen.add(key)
            if not invoice.number:
                sequence, _ = invoice._number_sequence()
                sequences.add(sequence.id)
            period = Period.find(invoice.company, date=date)
            sequences.add(period.move_sequence_used.id)
        if sequences:
            cls._isp_lock(SequenceStrict, sorted(sequences), wait=wait)

    @classmethod
    def _isp_lock(cls, Model, ids=None, wait=False):
        """The stock `Model.lock` of the records `ids` (or of the table):
        when the transaction does not hold the lock yet, it raises the
        TransactionError that restarts the transaction with it (taken at
        once, NOWAIT, with a snapshot that sees the work of the previous
        holder).  `wait` (PostgreSQL): first wait until the lock is free,
        so that the restart finds it free instead of failing (a worker
        then queues the task again to run seconds later)."""
        records = Model.browse(ids) if ids is not None else None
        try:
            Model.lock(records)
        except TransactionError:
            if wait and backend.name == 'postgresql':
                table = Model.__table__()
                cursor = Transaction().connection.cursor()
                if ids is None:
                    from psycopg.sql import SQL, Identifier
                    cursor.execute(SQL('LOCK {} IN EXCLUSIVE MODE').format(
                            Identifier(Model._table)))
                else:
                    cursor.execute(*table.select(table.id,
                            where=table.id.in_(list(ids)),
                            for_=For('UPDATE')))
            raise

    @dualmethod
    def print_invoice(cls, invoices):
        # the PDF of a service invoice is rendered when first printed, not
        # at posting: a billing run must not render thousands of PDFs
        invoices = [i for i in invoices if not i.is_isp]
        if invoices:
            super().print_invoice(invoices)

    def isp_pay_url(self):
        "The payment link of the invoice (the payments module may override)"
        pool = Pool()
        Configuration = pool.get('isp.billing.configuration')
        pattern = Configuration.get_value(self.company, 'pay_url')
        if not pattern:
            return ''
        return pattern.format_map(defaultdict(str, {
                    'number': self.number or '',
                    'invoice': self.id,
                    'customer_id': self.isp_customer_id or '',
                    'company': self.company.id,
                    'token': getattr(self, 'isp_pay_token', None) or '',
                    'database': Transaction().database.name,
                    }))

    def isp_notice_values(self, lang):
        return {
            'invoice_number': self.number or '',
            'amount': _format_amount(
                lang, self.total_amount, self.currency),
            'due_date': lang.strftime(self.isp_due_date)
            if self.isp_due_date else '',
            'pay_url': self.isp_pay_url(),
            }

    @property
    def isp_due_date(self):
        dates = [line_.maturity_date for line_ in self.lines_to_pay
            if line_.maturity_date]
        return min(dates) if dates else self.payment_term_date

    @classmethod
    def isp_notify(cls, invoices, event, extra=None):
        """Queue `event` for the subscribers of `invoices` (bulk)"""
        pool = Pool()
        Message = pool.get('isp.message')
        if Transaction().context.get('_isp_no_notices'):
            # a sale paid at once (the e-voucher shop sends its own)
            return
        requests = []
        langs = {}
        for invoice in invoices:
            party = invoice.party
            # the language the notice's template is chosen in
            key = (party.lang, invoice.company)
            if key not in langs:
                langs[key] = Message.notice_language(party, invoice.company)
            values = invoice.isp_notice_values(langs[key])
            if extra:
                values.update(extra.get(invoice.id, {}))
            requests.append({
                    'event': event, 'party': party, 'values': values,
                    'company': invoice.company, 'origin': invoice,
                    })
        if requests:
            Message.send_events(requests)

    # -- cancellation --

    @classmethod
    def cancel(cls, invoices):
        super().cancel(invoices)
        cls.isp_release_periods(invoices)

    @classmethod
    def draft(cls, invoices):
        cancelled = [i for i in invoices if i.state == 'cancelled']
        super().draft(invoices)
        if cancelled:
            cls.isp_claim_periods(cancelled)

    @classmethod
    def isp_release_periods(cls, invoices):
        """Make the periods of cancelled service invoices billable again.

        Their lines give up the period key (the database refuses a second
        invoice line of a service for a period), and a service billed up to
        the end of cancelled periods is billed again from their start by
        the next run (with its setup fee when its first invoice is
        cancelled).  A cancelled period followed by periods billed on other
        invoices stays unbilled: the next runs do not go back before
        them."""
        pool = Pool()
        Line = pool.get('account.invoice.line')
        Service = pool.get('isp.service')
        lines = [line_ for invoice in cls.browse(invoices)
            if invoice.state == 'cancelled'
            for line_ in invoice.lines
            if getattr(line_, 'isp_period_key', None)]
        if not lines:
            return
        with without_check_access():
            Line.write(lines, {'isp_period_key': None})
            spans = defaultdict(dict)
            for line_ in lines:
                spans[line_.isp_service][line_.isp_period_end] = (
                    line_.isp_period_start)
            to_write = []
            for service, starts in spans.items():
                until = service.billed_until
                while until in starts:
                    until = starts[until] - dt.timedelta(days=1)
                if until == service.billed_until:
                    continue
                if (service.activation_date
                        and until < service.activation_date):
                    until = None
                to_write.extend(([service], {'billed_until': until}))
            if to_write:
                Service.write(*to_write)

    @classmethod
    def isp_claim_periods(cls, invoices):
        """Give the period lines of service invoices back their period
        key (a cancelled invoice set back to draft): the database refuses
        it when the period was billed again meanwhile; the services count
        the periods as billed again."""
        pool = Pool()
        Line = pool.get('account.invoice.line')
        Service = pool.get('isp.service')
        lines = [line_ for invoice in cls.browse(invoices)
            for line_ in invoice.lines
            if getattr(line_, 'isp_kind', None) in PERIOD_KINDS
            and not line_.isp_period_key and line_.isp_period_start]
        if not lines:
            return
        with without_check_access():
            to_write, ends = [], defaultdict(list)
            for line_ in lines:
                to_write.extend(([line_], {
                            'isp_period_key': line_.isp_period_start}))
                ends[line_.isp_service].append(line_.isp_period_end)
            Line.write(*to_write)
            to_write = []
            for service, service_ends in ends.items():
                until = max(service_ends)
                if not service.billed_until or service.billed_until < until:
                    to_write.extend(([service], {'billed_until': until}))
            if to_write:
                Service.write(*to_write)

    # -- credit --

    @classmethod
    def isp_apply_credit(cls, invoices):
        """Use each subscriber's credit (unreconciled receivable credit lines
        not yet attached to an invoice: overpayments, credit notes) on their
        new invoices, reconciling the invoices it pays in full"""
        pool = Pool()
        MoveLine = pool.get('account.move.line')
        invoices = [i for i in invoices
            if i.type == 'out' and i.state == 'posted']
        if not invoices:
            return
        domain_parties = defaultdict(set)
        for invoice in invoices:
            domain_parties[invoice.account.id].add(invoice.party.id)
        credits = defaultdict(list)
        for account, party_ids in domain_parties.items():
            for sub_ids in grouped_slice(list(party_ids), 1000):
                for line in MoveLine.search([
                            ('account', '=', account),
                            ('party', 'in', list(sub_ids)),
                            ('reconciliation', '=', None),
                            ('move.state', '=', 'posted'),
                            ('invoice_payment', '=', None),
                            ['OR',
                                ('credit', '>', 0),
                                ('debit', '<', 0)],
                            ], order=[('date', 'ASC'), ('id', 'ASC')]):
                    credits[(account, line.party.id)].append(line)
        if not credits:
            return
        for invoice in invoices:
            lines = credits.get((invoice.account.id, invoice.party.id))
            while lines and invoice.amount_to_pay > 0:
                line = lines.pop(0)
                invoice._isp_use_credit_line(line)
                invoice = cls(invoice.id)

    def _isp_use_credit_line(self, line):
        "Attach the credit `line` to the invoice, splitting it when larger"
        pool = Pool()
        MoveLine = pool.get('account.move.line')
        Move = pool.get('account.move')
        Period = pool.get('account.period')
        Configuration = pool.get('isp.billing.configuration')
        available = line.credit - line.debit
        to_pay = self.amount_to_pay
        if available <= to_pay:
            self.add_payment_lines({self: [line]})
        else:
            # a move that consumes the whole credit line and gives back the
            # rest as a new credit line: Tryton reconciles whole lines only
            journal = Configuration.get_value(
                self.company, 'credit_journal')
            if not journal:
                raise BillingError(gettext(
                        'isp_billing.msg_billing_no_credit_journal',
                        company=self.company.rec_name))
            date = max(line.date, self.invoice_date or line.date)
            move = Move(
                journal=journal, company=self.company, date=date,
                period=Period.find(self.company, date=date),
                origin=self,
                description=gettext('isp_billing.msg_credit_applied',
                    invoice=self.rec_name),
                lines=[
                    MoveLine(account=line.account, party=line.party,
                        debit=available, credit=0),
                    MoveLine(account=line.account, party=line.party,
                        debit=0, credit=to_pay),
                    MoveLine(account=line.account, party=line.party,
                        debit=0, credit=available - to_pay),
                    ])
            move.save()
            Move.post([move])
            consume, use, _ = move.lines
            MoveLine.reconcile([consume, line])
            self.add_payment_lines({self: [use]})
        invoice = self.__class__(self.id)
        if invoice.currency.is_zero(invoice.amount_to_pay):
            MoveLine.reconcile([line_ for line_ in
                    invoice.lines_to_pay + invoice.payment_lines
                    if not line_.reconciliation])

    # -- staff and gateway payments --

    @classmethod
    def isp_record_payment(cls, invoice, amount, date=None, method='cash',
            reference=None, journal=None, to_pay=None):
        """Record a payment of `amount` (invoice currency) for `invoice` with
        Tryton's own pay-invoice mechanism and return the posted payment move.

        method: cash, bank_transfer, qris or gateway (the branch's payment
        method of that name; `journal` may give another
        `account.invoice.payment.method`, or an `account.journal` of one).
        A partial payment is added to the invoice; the payment that
        completes it reconciles it (the invoice becomes paid); an
        overpayment, or a payment of an invoice already paid, stays on the
        subscriber's receivable as credit, used by the next invoice.
        The 'payment received' notice is queued, and so is the reactivation
        of the subscriber's services isolated for non-payment once nothing
        is left overdue.  Within `isp_payments_batch` all that is done at
        its end, for all its payments at once (the payment moves too, of
        the payments of part or all of what is left to pay: then None is
        returned).  Callers check who may record payments: this method
        runs without access checks.  `to_pay`: what is left to pay on the
        invoice as the caller has just read it (locked)."""
        pool = Pool()
        Date = pool.get('ir.date')
        MoveLine = pool.get('account.move.line')
        amount = Decimal(amount)
        batch = _batches.get(Transaction())
        with without_check_access():
            invoice = cls(int(invoice))
            cls.lock([invoice])
            if invoice.currency.is_zero(amount) or amount < 0:
                raise PaymentError(gettext(
                        'isp_billing.msg_payment_amount_positive',
                        invoice=invoice.rec_name))
            if invoice.type != 'out' or invoice.state not in {
                    'posted', 'paid'}:
                raise PaymentError(gettext(
                        'isp_billing.msg_payment_invoice_not_posted',
                        invoice=invoice.rec_name))
            if batch is not None and invoice.id in batch['paying']:
                # a second payment of the invoice in the batch
                cls._isp_pay_deferred(batch)
                invoice = cls(invoice.id)
            with Transaction().set_context(company=invoice.company.id):
                if date is None:
                    date = Date.today()
                payment_method = cls._isp_payment_method(
                    invoice.company, method, journal)
                description = reference or METHOD_LABELS.get(method, method)
                if to_pay is None or invoice.state != 'posted':
                    to_pay = (invoice.amount_to_pay
                        if invoice.state == 'posted' else Decimal(0))
                move = None
                if (batch is not None and 0 < amount <= to_pay
                        and invoice.currency == invoice.company.currency):
                    # moved in bulk at the end of the batch
                    batch['paying'][invoice.id] = (
                        amount, payment_method, date, description)
                elif to_pay <= 0:
                    move = invoice._isp_credit_move(
                        amount, payment_method, date, description)
                else:
                    overpayment = max(amount - to_pay, Decimal(0))
                    lines = invoice.pay_invoice(
                        amount, payment_method, date, description,
                        overpayment)
                    move = lines[0].move
                    invoice = cls(invoice.id)
                    if invoice.currency.is_zero(invoice.amount_to_pay):
                        lines = [line_ for line_ in
                            invoice.lines_to_pay + invoice.payment_lines
                            if not line_.reconciliation]
                        if batch is None:
                            MoveLine.reconcile(lines)
                        else:
                            batch['reconcile'].append(
                                [line_.id for line_ in lines])
            invoice = cls(invoice.id)
            if Transaction().context.get('_isp_no_notices'):
                # a sale paid at once: its module sends its own message
                pass
            elif batch is None:
                cls.isp_notify_payment(invoice, amount, date)
                cls._isp_reactivate_after_payment(
                    {(invoice.company.id, invoice.party.id)})
            else:
                batch['events'].append(
                    cls._isp_payment_event(invoice, amount, date))
                batch['parties'].add((invoice.company.id, invoice.party.id))
        return move

    @classmethod
    @contextlib.contextmanager
    def isp_payments_batch(cls):
        """Within it, `isp_record_payment` leaves to the end of the block
        what it does for each payment besides the payment move: the
        reconciliations (one `MoveLine.reconcile`, so one invoice
        processing queued for all), the 'payment received' notices (one
        `send_events`) and the reactivation (one task for every service
        of the paying subscribers).  Used by the online payments' batch
        (`isp.payment.transaction.apply_queued`); nested: the outer one
        does it."""
        transaction = Transaction()
        if transaction in _batches:
            yield
            return
        batch = _batches[transaction] = {
            'paying': {}, 'reconcile': [], 'events': [], 'parties': set()}
        try:
            yield
            cls._isp_end_payments_batch(batch)
        finally:
            _batches.pop(transaction, None)

    @classmethod
    def _isp_end_payments_batch(cls, batch):
        pool = Pool()
        MoveLine = pool.get('account.move.line')
        Message = pool.get('isp.message')
        with without_check_access():
            cls._isp_pay_deferred(batch)
            groups = [[line_ for line_ in MoveLine.browse(lines)
                    if not line_.reconciliation]
                for lines in batch['reconcile']]
            groups = [lines for lines in groups if lines]
            if groups:
                MoveLine.reconcile(*groups)
            if batch['events']:
                Message.send_events(batch['events'])
            cls._isp_reactivate_after_payment(batch['parties'])

    @classmethod
    def isp_payments_due(cls, invoice):
        """Record now the payments of the open batch when one of them is of
        `invoice` (before reading what is left to pay on it)"""
        batch = _batches.get(Transaction())
        if batch is not None and int(invoice) in batch['paying']:
            with without_check_access():
                cls._isp_pay_deferred(batch)

    @classmethod
    def _isp_pay_deferred(cls, batch):
        """Record the payments of the batch left for the end (each paying
        part or all of what is left on its invoice, in the company's
        currency) as `pay_invoice` does, but in bulk: one save and one
        posting of their moves, one write of the invoices' payment lines;
        the invoices paid off are reconciled with the batch"""
        pool = Pool()
        Move = pool.get('account.move')
        MoveLine = pool.get('account.move.line')
        Period = pool.get('account.period')
        paying, batch['paying'] = batch['paying'], {}
        if not paying:
            return
        invoices = cls.browse(list(paying))
        moves = []
        for invoice in invoices:
            amount, method, date, description = paying[invoice.id]
            lines = [
                MoveLine(account=invoice.account, debit=0, credit=amount),
                MoveLine(account=method.debit_account.current(date=date),
                    debit=amount, credit=0),
                ]
            for line in lines:
                if line.account.party_required:
                    line.party = invoice.party
            moves.append(Move(journal=method.journal,
                    period=Period.find(invoice.company, date=date),
                    date=date, origin=invoice, description=description,
                    company=invoice.company, lines=lines))
        Move.save(moves)
        Move.post(moves)
        cls.add_payment_lines({invoice: [line_ for line_ in move.lines
                    if line_.account == invoice.account]
                for invoice, move in zip(invoices, moves, strict=True)})
        for invoice in cls.browse(list(paying)):
            if invoice.currency.is_zero(invoice.amount_to_pay):
                batch['reconcile'].append([line_.id for line_ in
                        invoice.lines_to_pay + invoice.payment_lines
                        if not line_.reconciliation])

    @classmethod
    def _isp_reactivate_after_payment(cls, parties):
        """Queue one reactivation task for the services isolated for
        non-payment of `parties` ({(company id, party id)})"""
        pool = Pool()
        Service = pool.get('isp.service')
        if not parties:
            return
        services = []
        for sub_parties in grouped_slice(sorted(parties), 500):
            sub_parties = list(sub_parties)
            services += [s for s in Service.search([
                        ('company', 'in',
                            list({c for c, _ in sub_parties})),
                        ('subscriber', 'in',
                            list({p for _, p in sub_parties})),
                        ('state', '=', 'isolated'),
                        ('isolated_by_billing', '=', True),
                        ], order=[('id', 'ASC')])
                if (s.company.id, s.subscriber.id) in parties]
        if services:
            Service.__queue__.isp_reactivate_paid(services)

    @classmethod
    def _isp_payment_method(cls, company, method, journal=None):
        pool = Pool()
        Configuration = pool.get('isp.billing.configuration')
        PaymentMethod = pool.get('account.invoice.payment.method')
        Journal = pool.get('account.journal')
        if isinstance(journal, PaymentMethod):
            return journal
        if isinstance(journal, Journal):
            methods = PaymentMethod.search([
                    ('company', '=', company.id),
                    ('journal', '=', journal.id),
                    ], limit=1)
            if methods:
                return methods[0]
        if method not in PAYMENT_METHODS:
            raise PaymentError(gettext(
                    'isp_billing.msg_payment_method_unknown', method=method))
        payment_method = Configuration.get_value(
            company, 'payment_method_%s' % method)
        if not payment_method:
            raise PaymentError(gettext(
                    'isp_billing.msg_payment_method_missing',
                    method=METHOD_LABELS[method], company=company.rec_name))
        return payment_method

    def _isp_credit_move(self, amount, payment_method, date, description):
        "Record `amount` received as the subscriber's credit"
        pool = Pool()
        Move = pool.get('account.move')
        MoveLine = pool.get('account.move.line')
        Period = pool.get('account.period')
        move = Move(
            journal=payment_method.journal, company=self.company, date=date,
            period=Period.find(self.company, date=date), origin=self,
            description=description,
            lines=[
                MoveLine(account=payment_method.debit_account.current(
                        date=date), debit=amount, credit=0),
                MoveLine(account=self.account, party=self.party,
                    debit=0, credit=amount),
                ])
        move.save()
        Move.post([move])
        return move

    @classmethod
    def isp_notify_payment(cls, invoice, amount, date):
        pool = Pool()
        Message = pool.get('isp.message')
        Message.send_events([cls._isp_payment_event(invoice, amount, date)])

    @classmethod
    def _isp_payment_event(cls, invoice, amount, date):
        "The 'payment received' notice of `amount` paid on `invoice`"
        pool = Pool()
        Message = pool.get('isp.message')
        party = invoice.party
        lang = Message.notice_language(party, invoice.company)
        return {
            'event': 'payment_received', 'party': party,
            'company': invoice.company, 'origin': invoice,
            'values': {
                'amount': _format_amount(lang, amount, invoice.currency),
                'invoice_number': invoice.number or '',
                'payment_date': lang.strftime(date),
                },
            }

    @classmethod
    def isp_overdue_parties(cls, company, parties, date):
        """The ids of `parties` with a receivable line of `company` still
        unpaid after its due date (before `date`)"""
        pool = Pool()
        MoveLine = pool.get('account.move.line')
        overdue = set()
        for sub_ids in grouped_slice([int(p) for p in parties], 1000):
            lines = MoveLine.search([
                    ('move.company', '=', int(company)),
                    ('account.type.receivable', '=', True),
                    ('party', 'in', list(sub_ids)),
                    ('reconciliation', '=', None),
                    ('maturity_date', '<', date),
                    ('move.state', '=', 'posted'),
                    ['OR', ('debit', '>', 0), ('credit', '<', 0)],
                    ])
            overdue.update(line_.party.id for line_ in lines)
        return overdue


class InvoiceLine(BranchOnChangeMixin, metaclass=PoolMeta):
    __name__ = 'account.invoice.line'

    isp_service = fields.Many2One(
        'isp.service', "Service", readonly=True, ondelete='RESTRICT',
        domain=[('company', '=', Eval('company', -1))])
    isp_kind = fields.Selection(KINDS, "Billing Kind", readonly=True)
    isp_period_start = fields.Date("Period Start", readonly=True)
    isp_period_end = fields.Date("Period End", readonly=True)
    isp_period_key = fields.Date(
        "Period Key", readonly=True,
        help="The start of the billed period for recurring lines: a "
        "service is never invoiced twice for the same period.")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        # the billing run's bookkeeping: released when the invoice is
        # cancelled (the period can be billed again)
        cls._check_modify_exclude |= {'isp_period_key'}
        t = cls.__table__()
        cls._sql_constraints += [
            ('isp_service_period_uniq',
                Unique(t, t.isp_service, t.isp_period_key),
                'isp_billing.msg_invoice_line_period_unique'),
            ]
        cls._sql_indexes.add(
            Index(t, (t.isp_service, Index.Range()),
                (t.isp_period_start, Index.Range())))

    @classmethod
    def copy(cls, lines, default=None):
        default = default.copy() if default is not None else {}
        default.setdefault('isp_period_key', None)
        return super().copy(lines, default=default)

    def _credit(self):
        line = super()._credit()
        for name in ['isp_service', 'isp_kind', 'isp_period_start',
                'isp_period_end']:
            setattr(line, name, getattr(self, name))
        return line

    @fields.depends('company', 'invoice', '_parent_invoice.company',
        'product', 'unit')
    def on_change_product(self):
        pool = Pool()
        Configuration = pool.get('isp.billing.configuration')
        template = self.product.template if self.product else None
        if template and template.isp_plan and not template.account_category:
            company = self.company or (
                self.invoice.company if self.invoice else None)
            if company:
                account = Configuration.get_value(company, 'revenue_account')
                tax = Configuration.get_value(company, 'tax')
                self.account = account
                self.taxes = [tax] if tax else []
                if not self.unit or (
                        self.unit.category
                        != self.product.default_uom.category):
                    self.unit = self.product.default_uom
                return
        super().on_change_product()


class PayStart(ModelView):
    "Record Payment"
    __name__ = 'isp.invoice.pay.start'

    invoice = fields.Many2One('account.invoice', "Invoice", readonly=True)
    company = fields.Many2One('company.company', "Company", readonly=True)
    currency = fields.Many2One('currency.currency', "Currency", readonly=True)
    amount_to_pay = Monetary(
        "Amount to Pay", currency='currency', digits='currency',
        readonly=True)
    amount = Monetary(
        "Amount", currency='currency', digits='currency', required=True,
        domain=[('amount', '>', 0)],
        help="What the subscriber paid; above the amount to pay, the rest "
        "is kept as credit for the next invoice.")
    method = fields.Selection([
            ('cash', "Cash"),
            ('bank_transfer', "Bank Transfer"),
            ('qris', "QRIS"),
            ], "Method", required=True)
    date = fields.Date("Date", required=True)
    reference = fields.Char("Reference",
        help="The receipt or transfer reference.")


class Pay(BranchWizardMixin, Wizard):
    "Record Payment"
    __name__ = 'isp.invoice.pay'

    start = StateView('isp.invoice.pay.start',
        'isp_billing.invoice_pay_start_view_form', [
            Button("Cancel", 'end', 'tryton-cancel'),
            Button("Record", 'pay', 'tryton-ok', default=True),
            ])
    pay = StateTransition()

    def default_start(self, fields):
        pool = Pool()
        Date = pool.get('ir.date')
        invoice = self.record
        with Transaction().set_context(company=invoice.company.id):
            today = Date.today()
        return {
            'invoice': invoice.id,
            'company': invoice.company.id,
            'currency': invoice.currency.id,
            'amount_to_pay': invoice.amount_to_pay,
            'amount': invoice.amount_to_pay,
            'method': 'cash',
            'date': today,
            }

    def transition_pay(self):
        pool = Pool()
        Invoice = pool.get('account.invoice')
        Invoice.isp_record_payment(
            self.record, self.start.amount, date=self.start.date,
            method=self.start.method, reference=self.start.reference)
        return 'end'
