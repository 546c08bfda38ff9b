# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Assets (Tryton's account_asset: routers, ONTs, cables, towers), with
the checks an ISP's accountant needs on top of it, and the per-branch
setup of the asset products and their accounts."""
from trytond.i18n import gettext
from trytond.pool import Pool, PoolMeta
from trytond.transaction import Transaction

from trytond.modules.isp_base.tenancy import BranchWizardMixin

from .exceptions import AssetValueError, FinanceSetupError

#: The ISP asset products: (key, category and product name, months of
#: straight-line depreciation)
ASSET_KINDS = [
    ('router', "Routers", 60),
    ('ont', "ONTs", 36),
    ('cable', "Cables", 120),
    ('tower', "Towers", 240),
    ]

#: The accounts of the minimal chart (account_template_root_en) used, by
#: code: fixed asset, accumulated depreciation (created beside the fixed
#: asset account: the chart's 1.6.2 is not typed as a fixed asset),
#: depreciation expense
ASSET_CODE, DEPRECIATION_CODE, EXPENSE_CODE = '1.5.3', '1.5.9', '5.1.4'
#: ... and other income (installation, equipment sales, asset disposals)
OTHER_INCOME_CODE = '6.1.1'


def _flagged_type(account, name, flags):
    """`account` typed so that `flags` ({field: True}) hold: its type when
    it has them, else a child type `name` of it (created once per branch)
    given to this account only, so the chart's other accounts keep
    theirs"""
    pool = Pool()
    Account = pool.get('account.account')
    Type = pool.get('account.account.type')
    type_ = account.type
    if type_ and all(getattr(type_, f) for f in flags):
        return account
    types = Type.search([
            ('company', '=', account.company.id), ('name', '=', name),
            ], limit=1)
    if types:
        type_, = types
    else:
        type_, = Type.create([{
                    'name': name, 'company': account.company.id,
                    'parent': type_.id if type_ else None,
                    'statement': type_.statement if type_ else None,
                    **flags}])
    Account.write([account], {'type': type_.id, 'template_override': True})
    return account


def branch_account(company, code, kind, flags, name):
    """The open account `code` of `company`'s chart, else its first open
    account whose type has `kind` (e.g. 'fixed_asset'); given a type with
    `flags` (see `_flagged_type`, the new type named `name`).  Refused
    (FinanceSetupError) when the chart has neither."""
    Account = Pool().get('account.account')
    accounts = Account.search([
            ('company', '=', company.id), ('code', '=', code),
            ('closed', '!=', True)], limit=1)
    if not accounts and kind:
        accounts = Account.search([
                ('company', '=', company.id), ('type.%s' % kind, '=', True),
                ('closed', '!=', True)], order=[('code', 'ASC')], limit=1)
    if not accounts:
        raise FinanceSetupError(gettext(
                'isp_finance.msg_finance_chart_account_missing',
                company=company.rec_name, account=name, code=code))
    return _flagged_type(accounts[0], name, flags)


def sibling_account(company, code, name, beside, reconcile=False):
    """The open account `code` of `company`, else created beside the
    account `beside` (its parent and type)"""
    Account = Pool().get('account.account')
    found = Account.search([
            ('company', '=', company.id), ('code', '=', code),
            ('closed', '!=', True)], limit=1)
    if found:
        return found[0]
    account, = Account.create([{
                'company': company.id, 'code': code, 'name': name,
                'parent': beside.parent.id if beside.parent else None,
                'type': beside.type.id if beside.type else None,
                'reconcile': reconcile}])
    return account


def other_income_account(company):
    "The other income account of `company` (6.1.1), counted as revenue"
    return branch_account(company, OTHER_INCOME_CODE, 'revenue',
        {'revenue': True}, "Other Income")


def accounting_categories(names, company, accounts):
    """{name: product.category}: the shared accounting categories `names`
    (found by name or created) with `accounts` ({field: account}) as
    `company`'s accounts"""
    Category = Pool().get('product.category')
    categories = {c.name: c for c in Category.search([
                ('name', 'in', names), ('accounting', '=', True)])}
    with Transaction().set_context(company=company.id):
        categories.update((c.name, c) for c in Category.create([
                    {'name': name, 'accounting': True}
                    for name in names if name not in categories]))
        Category.write([categories[n] for n in names],
            {f: a.id for f, a in accounts.items()})
    return categories


def branch_products(company, specs):
    """{key: product.product} of `company`: each of `specs` ((key,
    template values with a name)) found by its name in the branch or
    created"""
    pool = Pool()
    Template = pool.get('product.template')
    Uom = pool.get('product.uom')
    unit, = Uom.search([('name', '=', 'Unit')], limit=1)
    names = [values['name'] for _, values in specs]
    existing = {t.name: t for t in Template.search([
                ('isp_company', '=', company.id), ('name', 'in', names)])}
    to_create = [{'isp_company': company.id, 'default_uom': unit.id,
            'products': [('create', [{}])], **values}
        for _, values in specs if values['name'] not in existing]
    with Transaction().set_context(company=company.id):
        existing.update((t.name, t) for t in Template.create(to_create))
    return {key: existing[values['name']].products[0]
        for key, values in specs}


class Asset(metaclass=PoolMeta):
    __name__ = 'account.asset'

    @classmethod
    def validate_fields(cls, assets, field_names):
        super().validate_fields(assets, field_names)
        if field_names and not (
                field_names & {'value', 'residual_value'}):
            return
        for asset in assets:
            for name in ['value', 'residual_value']:
                value = getattr(asset, name)
                if value is not None and value < 0:
                    raise AssetValueError(gettext(
                            'isp_finance.msg_asset_value_negative',
                            field=cls._fields[name].string, value=value))

    @classmethod
    def setup_asset_categories(cls, company):
        """The ISP asset products of `company` ({'router', 'ont', 'cable',
        'tower': product.product}): depreciable assets of a shared product
        category each (Routers, ONTs, Cables, Towers) whose accounts for
        `company` are the fixed asset account (1.5.3), the accumulated
        depreciation (1.5.9) and the depreciation expense (5.1.4, counted
        in profit and loss); straight-line monthly.  Found or created: run
        it again at will (the onboarding and the demo do)."""
        asset = branch_account(company, ASSET_CODE, 'fixed_asset',
            {'fixed_asset': True, 'assets': True}, "Fixed Assets")
        depreciation = sibling_account(
            company, DEPRECIATION_CODE, "Accumulated Depreciation", asset)
        expense = branch_account(company, EXPENSE_CODE, 'expense',
            {'expense': True}, "Depreciation Expense")
        categories = accounting_categories(
            [name for _, name, _ in ASSET_KINDS], company, {
                'account_asset': asset,
                'account_depreciation': depreciation,
                'account_expense': expense,
                'account_revenue': other_income_account(company),
                })
        specs = [(key, {'name': name[:-1], 'type': 'assets',
                    'depreciable': True, 'depreciation_duration': months,
                    'account_category': categories[name].id})
            for key, name, months in ASSET_KINDS]
        return branch_products(company, specs)


class UpdateAsset(BranchWizardMixin, metaclass=PoolMeta):
    """Tryton's Update Asset refuses the asset of another branch (its
    access check reads the active records) but not another branch's
    accounts sent for the revaluation move (their domain refused them only
    at the save, naming them): every record the forms hold is checked
    first"""
    __name__ = 'account.asset.update'
