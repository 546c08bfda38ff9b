# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Expenses: categories of a branch mapped to its expense accounts, supplier
invoices (Tryton's account_invoice) carrying a category, and the quick
expense entry wizard (a posted supplier invoice, paid at once when a payment
method is given, with the receipt attached)."""
from trytond.i18n import gettext
from trytond.model import DeactivableMixin, ModelSQL, ModelView, fields
from trytond.modules.currency.fields import Monetary
from trytond.pool import Pool, PoolMeta
from trytond.pyson import Eval, PYSONEncoder
from trytond.transaction import Transaction
from trytond.wizard import (
    Button,
    StateAction,
    StateTransition,
    StateView,
    Wizard,
)

from trytond.modules.isp_base.tenancy import (
    BranchValuesMixin,
    BranchWizardMixin,
    check_companies,
)

from .exceptions import ExpenseError


class Category(BranchValuesMixin, DeactivableMixin, ModelSQL, ModelView):
    "ISP Expense Category"
    __name__ = 'isp.expense.category'

    company = fields.Many2One(
        'company.company', "Branch", required=True, ondelete='CASCADE')
    name = fields.Char("Name", required=True)
    code = fields.Char("Code", help="A short code, e.g. BW for bandwidth.")
    account = fields.Many2One(
        'account.account', "Account", required=True,
        domain=[
            ('company', '=', Eval('company', -1)),
            ('type.expense', '=', True),
            ('closed', '!=', True),
            ],
        help="The expense account the category's expenses are booked on.")

    _branch_fields = ('company', 'account')

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._order = [('name', 'ASC'), ('id', 'ASC')]

    @classmethod
    def default_company(cls):
        return Transaction().context.get('company')


class Invoice(metaclass=PoolMeta):
    __name__ = 'account.invoice'

    isp_expense_category = fields.Many2One(
        'isp.expense.category', "Expense Category", ondelete='RESTRICT',
        domain=[('company', '=', Eval('company', -1))],
        states={
            'invisible': Eval('type') != 'in',
            'required': (Eval('type') == 'in')
            & ~Eval('state').in_(['draft', 'cancelled']),
            'readonly': Eval('state') != 'draft',
            },
        help="What the supplier invoice is spent on (upstream bandwidth, "
        "electricity, salaries, tower rent, equipment...).")

    @classmethod
    def _check_isp_expense_category(cls, invoices):
        "A supplier invoice goes on with a category only"
        for invoice in invoices:
            if invoice.type == 'in' and not invoice.isp_expense_category:
                raise ExpenseError(gettext(
                        'isp_finance.msg_expense_category_required',
                        invoice=invoice.rec_name))

    @classmethod
    def validate_invoice(cls, invoices):
        cls._check_isp_expense_category(invoices)
        super().validate_invoice(invoices)

    @classmethod
    def post(cls, invoices):
        cls._check_isp_expense_category(invoices)
        super().post(invoices)


class EnterStart(ModelView):
    "Enter Expense"
    __name__ = 'isp.expense.enter.start'

    company = fields.Many2One('company.company', "Branch", readonly=True)
    currency = fields.Many2One('currency.currency', "Currency", readonly=True)
    category = fields.Many2One(
        'isp.expense.category', "Category", required=True,
        domain=[('company', '=', Eval('company', -1))])
    supplier = fields.Many2One(
        'party.party', "Supplier", required=True,
        context={'company': Eval('company', -1)}, depends={'company'})
    date = fields.Date("Date", required=True)
    amount = Monetary(
        "Amount", currency='currency', digits='currency', required=True)
    description = fields.Char("Description", required=True)
    payment_method = fields.Many2One(
        'account.invoice.payment.method', "Paid With",
        domain=[('company', '=', Eval('company', -1))],
        help="Paid at once from this cash or bank account; empty: to pay.")
    receipt = fields.Binary("Receipt", filename='receipt_name')
    receipt_name = fields.Char("Receipt File Name")

    @classmethod
    def default_company(cls):
        return Transaction().context.get('company')

    @classmethod
    def default_currency(cls):
        Company = Pool().get('company.company')
        company = Transaction().context.get('company')
        return Company(company).currency.id if company else None

    @classmethod
    def default_date(cls):
        return Pool().get('ir.date').today()


class Enter(BranchWizardMixin, Wizard):
    """Book an expense: a posted supplier invoice on the category's account,
    paid at once from a payment method when one is given, with the receipt
    attached; nothing is written when anything is refused"""
    __name__ = 'isp.expense.enter'

    start = StateView('isp.expense.enter.start',
        'isp_finance.expense_enter_start_view_form', [
            Button("Cancel", 'end', 'tryton-cancel'),
            Button("Book", 'book', 'tryton-ok', default=True),
            ])
    book = StateTransition()
    open_ = StateAction('account_invoice.act_invoice_in_form')

    def _check(self):
        start = self.start
        if not start.category:
            raise ExpenseError(gettext(
                    'isp_finance.msg_expense_category_missing'))
        if start.amount is None or start.amount <= 0:
            raise ExpenseError(gettext(
                    'isp_finance.msg_expense_amount_positive'))
        company = start.category.company
        if ((start.payment_method
                    and start.payment_method.company != company)
                or company.id != Transaction().context.get('company')):
            raise ExpenseError(gettext(
                    'isp_finance.msg_expense_other_branch'))
        check_companies([start.category, start.supplier,
                start.payment_method])

    def transition_book(self):
        pool = Pool()
        Attachment = pool.get('ir.attachment')
        self._check()
        invoice = create_expense_invoices([self.start])[0]
        if self.start.receipt:
            Attachment.create([{
                        'resource': str(invoice),
                        'name': self.start.receipt_name or 'receipt',
                        'data': self.start.receipt,
                        }])
        self._invoice_id = invoice.id
        return 'open_'

    def do_open_(self, action):
        action['pyson_domain'] = PYSONEncoder().encode(
            [('id', '=', self._invoice_id)])
        return action, {}


def create_expense_invoices(entries):
    """Posted supplier invoices of `entries` (objects with company-checked
    category, supplier, date, amount, description and payment_method), each
    paid when it has a payment method"""
    pool = Pool()
    Invoice = pool.get('account.invoice')
    Journal = pool.get('account.journal')
    invoices = []
    journals = {}
    for entry in entries:
        company = entry.category.company
        if company.id not in journals:
            with Transaction().set_context(company=company.id):
                journals[company.id], = Journal.search(
                    [('type', '=', 'expense')], limit=1)
        invoice = Invoice(
            type='in', company=company, party=entry.supplier,
            currency=company.currency, journal=journals[company.id],
            invoice_date=entry.date, accounting_date=entry.date,
            isp_expense_category=entry.category,
            description=entry.description)
        invoice.on_change_party()
        invoice.lines = [{
                'type': 'line', 'company': company,
                'currency': company.currency,
                'quantity': 1, 'unit_price': entry.amount,
                'account': entry.category.account,
                'description': entry.description,
                }]
        invoices.append(invoice)
    Invoice.save(invoices)
    Invoice.post(invoices)
    for invoice, entry in zip(invoices, entries, strict=True):
        if entry.payment_method:
            pay_invoice(invoice, entry.payment_method, entry.date,
                entry.description)
    return invoices



def pay_invoice(invoice, payment_method, date, description=None):
    """Pay what is left to pay of the posted `invoice` from `payment_method`
    (a posted move on its account) and reconcile the invoice with it"""
    MoveLine = Pool().get('account.move.line')
    lines = invoice.pay_invoice(
        invoice.amount_to_pay, payment_method, date, description)
    to_reconcile = [*invoice.lines_to_pay, *lines]
    if not sum(line.debit - line.credit for line in to_reconcile):
        MoveLine.reconcile(to_reconcile)
