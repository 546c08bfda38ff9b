# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""What a branch needs to bill: its chart of accounts (from a template,
through the account module's own wizard), a fiscal year with its periods,
move, invoice and credit-note sequences, payment methods and its billing
values.  One implementation for the onboarding wizard (isp_multicompany),
the demo and the tests' `create_branch`.

Each function runs inside the caller's transaction (as the root user or
with access checks off), the context company set to the branch, and reuses
what exists: run again, it creates nothing."""
from trytond.pool import Pool
from trytond.transaction import Transaction

#: The default chart template (account module: the minimal chart)
DEFAULT_CHART = ('account', 'account_template_root_en')
#: The codes of the cash and sales tax accounts in the account module's
#: minimal charts (en, de, es, fr share them)
CASH_CODE = '1.1.1'
TAX_CODE = '6.3.6'
#: The payment methods of a branch: configuration suffix, name
PAYMENT_METHODS = [
    ('cash', "Cash"),
    ('bank_transfer', "Bank Transfer"),
    ('qris', "QRIS"),
    ('gateway', "Online Payment"),
    ]


def chart_template(company):
    """The template the chart of `company` was created from (its root
    account's), None without a chart"""
    Account = Pool().get('account.account')
    roots = Account.search([
            ('company', '=', company.id), ('parent', '=', None),
            ], limit=1)
    return roots[0].template if roots else None


def create_chart(company, template=None):
    """The chart of accounts of `company` from `template` (an
    account.account.template root; default the minimal English chart) with
    its default receivable, payable, revenue and expense accounts, through
    `account.create_chart`; False when the company has a chart already"""
    pool = Pool()
    Account = pool.get('account.account')
    AccountTemplate = pool.get('account.account.template')
    ModelData = pool.get('ir.model.data')
    CreateChart = pool.get('account.create_chart', type='wizard')
    if Account.search([('company', '=', company.id)], limit=1):
        return False
    if template is None:
        template = AccountTemplate(ModelData.get_id(*DEFAULT_CHART))
    session_id, _, _ = CreateChart.create()
    wizard = CreateChart(session_id)
    wizard.account.account_template = template
    wizard.account.company = company
    wizard.transition_create_account()
    properties = wizard.properties
    defaults = wizard.states['properties'].get_defaults(
        wizard, 'properties', list(properties._fields))
    for name, value in defaults.items():
        if name in properties._fields:
            setattr(properties, name, value)
    for name, kind, party in [
            ('account_receivable', 'receivable', True),
            ('account_payable', 'payable', True),
            ('category_account_revenue', 'revenue', False),
            ('category_account_expense', 'expense', False)]:
        if name not in properties._fields or getattr(properties, name, None):
            continue
        domain = [('type.%s' % kind, '=', True),
            ('company', '=', company.id), ('closed', '!=', True)]
        if party:
            domain.append(('party_required', '=', True))
        setattr(properties, name, Account.search(domain, limit=1)[0])
    wizard.transition_create_properties()
    CreateChart.delete(session_id)
    return True


def overlapping_fiscal_years(company, start, end):
    "The fiscal years of `company` overlapping [start, end]"
    FiscalYear = Pool().get('account.fiscalyear')
    return FiscalYear.search([
            ('company', '=', company.id),
            ('start_date', '<=', end),
            ('end_date', '>=', start),
            ])


def create_fiscal_year(company, start, end, name=None, prefix=None,
        credit_note_prefix=None, supplier_prefix=None):
    """The fiscal year [start, end] of `company` with its monthly periods,
    its move sequence and its invoice sequences: invoices numbered
    `prefix` + number, credit notes `credit_note_prefix` + number (their own
    sequence; without it they share the invoices'); supplier invoices and
    credit notes have a sequence of their own, `supplier_prefix` + number
    (default "IN-" + `prefix`), so that booking an expense never takes a
    number of the customers' invoices; the existing one when a fiscal year
    of these dates exists"""
    pool = Pool()
    FiscalYear = pool.get('account.fiscalyear')
    Sequence = pool.get('ir.sequence.strict')
    ModelData = pool.get('ir.model.data')
    existing = FiscalYear.search([
            ('company', '=', company.id),
            ('start_date', '=', start),
            ('end_date', '=', end),
            ], limit=1)
    if existing:
        return existing[0]
    name = name or (str(start.year) if start.year == end.year
        else '%s-%s' % (start.year, end.year))
    invoice_type = ModelData.get_id(
        'account_invoice', 'sequence_type_account_invoice')
    vlist = [{
            'name': "%s moves" % name,
            'sequence_type': ModelData.get_id(
                'account', 'sequence_type_account_move'),
            'company': company.id,
            }, {
            'name': "%s invoices" % name,
            'sequence_type': invoice_type,
            'company': company.id,
            'prefix': prefix,
            'padding': 5 if prefix else 0,
            }]
    if credit_note_prefix:
        vlist.append({
                'name': "%s credit notes" % name,
                'sequence_type': invoice_type,
                'company': company.id,
                'prefix': credit_note_prefix,
                'padding': 5,
                })
    if supplier_prefix is None:
        supplier_prefix = 'IN-%s' % (prefix or '')
    vlist.append({
            'name': "%s supplier invoices" % name,
            'sequence_type': invoice_type,
            'company': company.id,
            'prefix': supplier_prefix,
            'padding': 5,
            })
    moves, invoices, *credit_notes, supplier = Sequence.create(vlist)
    credit_notes = credit_notes[0] if credit_notes else invoices
    fiscalyear, = FiscalYear.create([{
                'name': name,
                'company': company.id,
                'start_date': start,
                'end_date': end,
                'move_sequence': moves.id,
                'invoice_sequences': [('create', [{
                                'out_invoice_sequence': invoices.id,
                                'out_credit_note_sequence': credit_notes.id,
                                'in_invoice_sequence': supplier.id,
                                'in_credit_note_sequence': supplier.id,
                                }])],
                }])
    FiscalYear.create_period([fiscalyear])
    return fiscalyear


def account_by_code(company, code):
    "The account `code` of `company`'s chart, None when it has none"
    Account = Pool().get('account.account')
    accounts = Account.search([
            ('company', '=', company.id), ('code', '=', code),
            ], limit=1)
    return accounts[0] if accounts else None


def create_payment_methods(company, methods=PAYMENT_METHODS):
    """{configuration suffix: payment method} of `company`: each of
    `methods` ((suffix, name)) on the cash journal and account, found by its
    name or created"""
    pool = Pool()
    Journal = pool.get('account.journal')
    PaymentMethod = pool.get('account.invoice.payment.method')
    cash = account_by_code(company, CASH_CODE)
    journal, = Journal.search([('type', '=', 'cash')], limit=1)
    result = {}
    for key, name in methods:
        found = PaymentMethod.search([
                ('company', '=', company.id), ('name', '=', name),
                ], limit=1)
        if found:
            result[key], = found
            continue
        result[key], = PaymentMethod.create([{
                    'name': name, 'company': company.id,
                    'journal': journal.id,
                    'credit_account': cash.id, 'debit_account': cash.id,
                    }])
    return result


def create_sales_tax(company, name, rate):
    """The percentage sales tax `name` of `company` (on the chart's tax
    account), found by its name or created; its rate brought up to date"""
    Tax = Pool().get('account.tax')
    taxes = Tax.search([
            ('company', '=', company.id), ('name', '=', name),
            ], limit=1)
    if taxes:
        tax, = taxes
        if tax.rate != rate:
            Tax.write([tax], {'rate': rate})
        return tax
    account = account_by_code(company, TAX_CODE)
    tax, = Tax.create([{
                'name': name, 'description': name,
                'type': 'percentage', 'rate': rate,
                'company': company.id,
                'invoice_account': account.id,
                'credit_note_account': account.id,
                }])
    return tax


def revenue_account(company):
    "The first open revenue account of `company`'s chart"
    Account = Pool().get('account.account')
    account, = Account.search([
            ('company', '=', company.id),
            ('type.revenue', '=', True),
            ('closed', '!=', True),
            ], limit=1)
    return account


def configure_billing(company, methods, **values):
    """Write the billing values of `company`: its revenue account, the
    payment methods of `methods` ({suffix: method}) and `values`"""
    Configuration = Pool().get('isp.billing.configuration')
    values['revenue_account'] = revenue_account(company).id
    for key, method in methods.items():
        values['payment_method_%s' % key] = method.id
    with Transaction().set_context(company=company.id):
        Configuration.write([Configuration(1)], values)


def setup_accounting(company, start, end, template=None, methods=None,
        name=None, prefix=None, credit_note_prefix=None, **values):
    """The chart, the fiscal year [start, end], the payment methods
    (`methods`: (suffix, name) pairs, default all four) and the billing
    values of `company`; return (fiscal year, {suffix: payment method})"""
    with Transaction().set_context(company=company.id):
        create_chart(company, template)
        fiscalyear = create_fiscal_year(company, start, end, name=name,
            prefix=prefix, credit_note_prefix=credit_note_prefix)
        methods = create_payment_methods(
            company, PAYMENT_METHODS if methods is None else methods)
        configure_billing(company, methods, **values)
    return fiscalyear, methods
