# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Bank and cash statements (Tryton's account_statement) of a branch: its
bank and cash statement journals, the gateways' clearing account, and
statement lines matched with the payments booked on a clearing account (a
gateway's settlement) so that validating the statement reconciles them."""
from trytond.model import fields
from trytond.pool import Pool, PoolMeta
from trytond.pyson import Bool, Eval, If

from .asset import branch_account, sibling_account

#: The accounts of the branch's chart (minimal chart codes): the counter's
#: cash, the bank and the gateways' clearing account (created under 1.1.0)
CASH_CODE, BANK_CODE, CLEARING_CODE = '1.1.1', '1.1.5', '1.1.6'


class Statement(metaclass=PoolMeta):
    __name__ = 'account.statement'

    @classmethod
    def setup_statement_journals(cls, company):
        """The statement journals of `company` ({'bank', 'cash':
        account.statement.journal}) on its bank account (1.1.5) and the
        counter's cash account (1.1.1), balance validated; the gateway
        payment method's account becomes the reconcilable clearing account
        (1.1.6) that the bank statements settle.  Found or created: run it
        again at will (the onboarding and the demo do)."""
        pool = Pool()
        Journal = pool.get('account.journal')
        StatementJournal = pool.get('account.statement.journal')
        Configuration = pool.get('isp.billing.configuration')
        PaymentMethod = pool.get('account.invoice.payment.method')
        cash = branch_account(company, CASH_CODE, None, {}, "Cash")
        bank = sibling_account(company, BANK_CODE, "Bank", cash)
        clearing = sibling_account(company, CLEARING_CODE,
            "Gateway Clearing", cash, reconcile=True)
        method, *others = [
            Configuration.get_value(company, 'payment_method_%s' % key)
            for key in ['gateway', 'cash', 'bank_transfer', 'qris']]
        # a payment method the counter shares with the gateways keeps its
        # account
        if (method and method not in others
                and method.debit_account != clearing):
            PaymentMethod.write([method], {
                    'debit_account': clearing.id,
                    'credit_account': clearing.id})
        journal, = Journal.search([('type', '=', 'statement')], limit=1)
        result = {}
        for key, account in [('bank', bank), ('cash', cash)]:
            found = StatementJournal.search([
                    ('company', '=', company.id),
                    ('account', '=', account.id)], limit=1)
            if found:
                result[key], = found
                continue
            result[key], = StatementJournal.create([{
                        'name': '%s %s' % (
                            account.name, company.party.name),
                        'company': company.id, 'journal': journal.id,
                        'currency': company.currency.id,
                        'account': account.id, 'validation': 'balance'}])
        return result

    @classmethod
    def clearing_lines(cls, statement, date=None):
        """New (unsaved) lines of `statement` settling each payment still
        open on a reconcilable cash account of its branch (the gateways'
        clearing account) up to `date`, related to that payment's line:
        validating the statement reconciles them."""
        pool = Pool()
        MoveLine = pool.get('account.move.line')
        Line = pool.get('account.statement.line')
        Method = pool.get('account.invoice.payment.method')
        company = statement.company
        accounts = {a for m in Method.search([
                    ('company', '=', company.id)])
            for a in [m.debit_account, m.credit_account]
            if a and a.reconcile and a != statement.journal.account}
        taken = {line.related_to for line in Line.search([
                    ('statement.company', '=', company.id),
                    ('statement.state', '!=', 'cancelled'),
                    ('related_to', 'like', 'account.move.line,%'),
                    ])}
        domain = [
            ('account', 'in', [a.id for a in accounts]),
            ('reconciliation', '=', None),
            ('move.state', '=', 'posted'),
            ]
        if date:
            domain.append(('date', '<=', date))
        lines = []
        for move_line in MoveLine.search(domain, order=[('date', 'ASC')]):
            if move_line in taken:
                continue
            lines.append(Line(statement=statement,
                    date=date or move_line.date,
                    amount=move_line.debit - move_line.credit,
                    account=move_line.account, party=move_line.party,
                    description=move_line.description
                    or move_line.move.description,
                    related_to=move_line))
        return lines


class StatementLine(metaclass=PoolMeta):
    __name__ = 'account.statement.line'

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.related_to.domain['account.move.line'] = [
            ('move.company', '=', Eval('company', -1)),
            ('account.reconcile', '=', True),
            If(Bool(Eval('account')),
                ('account', '=', Eval('account', -1)),
                ()),
            ('reconciliation', '=', None),
            ]

    @classmethod
    def _get_relations(cls):
        return super()._get_relations() + ['account.move.line']

    @property
    def isp_move_line(self):
        "The move line (a payment on a clearing account) the line settles"
        MoveLine = Pool().get('account.move.line')
        related_to = getattr(self, 'related_to', None)
        if isinstance(related_to, MoveLine) and related_to.id >= 0:
            return related_to

    @fields.depends('account', 'amount', 'related_to', 'party',
        methods=['invoice'])
    def on_change_related_to(self):
        super().on_change_related_to()
        move_line = self.isp_move_line
        if move_line:
            self.account = move_line.account
            if not self.amount:
                self.amount = move_line.debit - move_line.credit

    @classmethod
    def reconcile(cls, move_lines):
        "Each move line reconciled with the payment its line settles"
        MoveLine = Pool().get('account.move.line')
        super().reconcile(move_lines)
        pairs = []
        for move_line, line in move_lines:
            if line and line.isp_move_line:
                settled = line.isp_move_line
                if (settled.account == move_line.account
                        and not settled.reconciliation
                        and (settled.debit - settled.credit)
                        == (move_line.credit - move_line.debit)):
                    pairs.append([settled, move_line])
        if pairs:
            MoveLine.reconcile(*pairs)
