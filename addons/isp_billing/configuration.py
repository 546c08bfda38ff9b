# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
import datetime as dt

from trytond.cache import Cache
from trytond.i18n import gettext
from trytond.model import (
    Model,
    ModelSingleton,
    ModelSQL,
    ModelView,
    fields,
)
from trytond.pool import Pool
from trytond.pyson import Eval
from trytond.transaction import Transaction

from trytond.modules.isp_base.configuration import (
    BranchMultiValueMixin,
    BranchValueMixin,
    check_value_company,
)

from . import qris
from .exceptions import BillingError

PAYMENT_METHODS = ['cash', 'bank_transfer', 'qris', 'gateway']
# the reminder and isolation ladder: (days from the due date, action)
DEFAULT_LADDER = [
    (-7, 'reminder'), (-3, 'reminder'), (-1, 'reminder'),
    (3, 'overdue'), (7, 'overdue'), (10, 'isolate'),
    ]


def _company():
    return Eval('context', {}).get('company', -1)


def _payment_method(string, company):
    return fields.Many2One(
        'account.invoice.payment.method', string,
        domain=[('company', '=', company)],
        help="The journal and account that receive these payments.")


class _Fields:
    "The per-company billing values (shared by the singleton and its values)"

    @classmethod
    def _fields(cls, company):
        return {
            'billing_day': fields.Integer(
                "Billing Day",
                domain=['OR',
                    ('billing_day', '=', None),
                    [('billing_day', '>=', 1), ('billing_day', '<=', 28)]],
                help="The default day of the month (1-28) new services are "
                "invoiced on."),
            'due_days': fields.Integer(
                "Due Days",
                domain=['OR',
                    ('due_days', '=', None), ('due_days', '>=', 0)],
                help="The days between the start of a period and the due "
                "date of its invoice."),
            'revenue_account': fields.Many2One(
                'account.account', "Revenue Account",
                domain=[
                    ('company', '=', company),
                    ('type.revenue', '=', True),
                    ('closed', '!=', True),
                    ],
                help="Used for plans without an account category and for "
                "setup fees."),
            'tax': fields.Many2One(
                'account.tax', "Tax",
                domain=[
                    ('company', '=', company),
                    ('parent', '=', None),
                    ['OR',
                        ('group', '=', None),
                        ('group.kind', 'in', ['sale', 'both'])],
                    ],
                help="The tax of plans without an account category "
                "(e.g. PPN 11 %)."),
            'journal': fields.Many2One(
                'account.journal', "Invoice Journal",
                domain=[('type', '=', 'revenue')],
                help="Leave empty for the default revenue journal."),
            'dunning_procedure': fields.Many2One(
                'account.dunning.procedure', "Reminder Procedure",
                help="The reminder and isolation ladder of the branch's "
                "subscribers (a subscriber's own procedure wins)."),
            'payment_method_cash': _payment_method("Cash", company),
            'payment_method_bank_transfer': _payment_method(
                "Bank Transfer", company),
            'payment_method_qris': _payment_method("QRIS", company),
            'payment_method_gateway': _payment_method(
                "Online Gateway", company),
            'credit_journal': fields.Many2One(
                'account.journal', "Credit Journal",
                domain=[('type', '=', 'general')],
                help="The journal of the moves that apply a subscriber's "
                "credit to a new invoice (default: Miscellaneous)."),
            'pay_url': fields.Char(
                "Payment Link",
                help="The link sent with invoices and printed on them; "
                "{number}, {invoice}, {customer_id}, {company}, {database} "
                "and {token} are replaced.  The product's own payment page: "
                "https://<server>/{database}/isp_billing/pay/{token}"),
            'loyalty_months': fields.Integer(
                "Loyalty After",
                help="Months of service after which the loyalty discount "
                "applies (empty: none)."),
            'loyalty_discount': fields.Numeric(
                "Loyalty Discount", digits=(16, 4),
                domain=['OR',
                    ('loyalty_discount', '=', None),
                    [('loyalty_discount', '>=', 0),
                        ('loyalty_discount', '<=', 1)]],
                help="The share of the plan's price taken off (0.05 = 5 %)."),
            'qris_payload': fields.Char(
                "QRIS Merchant Payload",
                help="The branch's static QRIS payload (EMVCo); the "
                "invoice's amount is added to it on the PDF. Leave empty to "
                "print the payment link as QR code."),
            }


# the per-company values: name -> target model of a Many2One (else None)
VALUE_FIELDS = {name: getattr(field, 'model_name', None)
    for name, field in _Fields._fields(-1).items()}


class Configuration(BranchMultiValueMixin, ModelSingleton, ModelSQL,
        ModelView):
    "ISP Billing Configuration"
    __name__ = 'isp.billing.configuration'

    locals().update({name: fields.MultiValue(field)
            for name, field in _Fields._fields(_company()).items()})
    # get_values per company (a billing run reads them for every invoice)
    _values_cache = Cache(
        'isp.billing.configuration.get_values', context=False)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._buttons.update({
                'create_ladder': {},
                })

    @classmethod
    def multivalue_model(cls, field):
        pool = Pool()
        if field in VALUE_FIELDS:
            return pool.get('isp.billing.configuration.company')
        return super().multivalue_model(field)

    @classmethod
    def default_billing_day(cls, **pattern):
        return 1

    @classmethod
    def default_due_days(cls, **pattern):
        return 10

    @classmethod
    def default_dunning_procedure(cls, **pattern):
        return cls.multivalue_model(
            'dunning_procedure').default_dunning_procedure()

    @classmethod
    def default_credit_journal(cls, **pattern):
        return cls.multivalue_model(
            'credit_journal').default_credit_journal()

    @classmethod
    def _stored_values(cls, company):
        "{name: value or record id} of `company`, cached"
        company = int(company)
        values = cls._values_cache.get(company)
        if values is None:
            config = cls(1)
            values = {}
            for name in VALUE_FIELDS:
                value = config.get_multivalue(name, company=company)
                values[name] = (
                    value.id if isinstance(value, Model) else value)
            cls._values_cache.set(company, values)
        return values

    @classmethod
    def get_value(cls, company, name):
        "The billing value `name` of `company`"
        value = cls._stored_values(company)[name]
        if VALUE_FIELDS[name] and value is not None:
            value = Pool().get(VALUE_FIELDS[name])(value)
        return value

    @classmethod
    def get_values(cls, company):
        "Return the billing values of `company` as a plain dictionary"
        return {name: cls.get_value(company, name) for name in VALUE_FIELDS}

    @classmethod
    @ModelView.button
    def create_ladder(cls, configurations):
        """Give the context company its own copy of the default reminder
        and isolation ladder (its days can then be changed)"""
        pool = Pool()
        Procedure = pool.get('account.dunning.procedure')
        Company = pool.get('company.company')
        company = Transaction().context.get('company')
        if not company:
            return
        check_value_company(company)
        company = Company(company)
        procedure, = Procedure.create([
                Procedure.isp_ladder_values(
                    "Reminders and isolation (%s)" % company.rec_name)])
        config = cls(1)
        config.dunning_procedure = procedure
        config.save()


class ConfigurationCompany(ModelSQL, BranchValueMixin):
    "ISP Billing Configuration per Company"
    __name__ = 'isp.billing.configuration.company'

    locals().update(_Fields._fields(Eval('company', -1)))

    @classmethod
    def on_modification(cls, mode, records, field_names=None):
        super().on_modification(mode, records, field_names=field_names)
        Pool().get('isp.billing.configuration')._values_cache.clear()

    @classmethod
    def default_billing_day(cls):
        return 1

    @classmethod
    def default_due_days(cls):
        return 10

    @classmethod
    def default_dunning_procedure(cls):
        pool = Pool()
        ModelData = pool.get('ir.model.data')
        try:
            return ModelData.get_id('isp_billing', 'dunning_procedure_isp')
        except KeyError:
            return None

    @classmethod
    def default_credit_journal(cls):
        pool = Pool()
        ModelData = pool.get('ir.model.data')
        try:
            return ModelData.get_id('account', 'journal_miscellaneous')
        except KeyError:
            return None

    @classmethod
    def validate_fields(cls, records, field_names):
        super().validate_fields(records, field_names)
        if field_names is None or 'qris_payload' in field_names:
            cls.check_qris_payload(records)

    @classmethod
    def check_qris_payload(cls, records):
        "Refuse a QRIS payload that is not a complete EMVCo payload"
        for record in records:
            if not record.qris_payload:
                continue
            try:
                qris.check(record.qris_payload)
            except qris.QRISError as exception:
                raise BillingError(gettext(
                        'isp_billing.msg_qris_payload_invalid',
                        company=(record.company.rec_name
                            if record.company else ''),
                        error=str(exception))) from exception


def ladder_levels(ladder=DEFAULT_LADDER):
    "The values of the dunning levels of a ladder"
    return [{
            'sequence': i,
            'overdue': dt.timedelta(days=days),
            'isp_action': action,
            } for i, (days, action) in enumerate(ladder)]
