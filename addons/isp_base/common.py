# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
from trytond.modules.company.model import CompanyMultiValueMixin
from trytond.pyson import Bool, Eval, If


def set_branch_context(cls, company_field):
    """Open the per-company values reached from a record of `cls` in the
    record's branch (`company_field`), or the user's company when empty.

    Subscribers and plans belong to a branch but live in shared models
    (party, product template): their contacts, variants, accounts... must be
    read in that branch.  Called from `__post_setup__`.
    """
    company = If(Bool(Eval(company_field)),
        Eval(company_field, -1), Eval('context', {}).get('company', -1))
    for field in cls._fields.values():
        if not hasattr(field, 'get_target') or 'company' in field.context:
            continue
        try:
            target = field.get_target()
        except AttributeError:
            # a Many2Many whose relation model is not set up yet
            continue
        if issubclass(target, CompanyMultiValueMixin):
            field.context = {**field.context, 'company': company}
            field.depends = field.depends | {company_field}


def rec_name_domain(clause, names):
    """Return the domain searching `clause` (a rec_name clause) on each field
    of `names`: any of them matches, or none for a negative operator."""
    _, operator, operand, *extra = clause
    if operator.startswith('!') or operator.startswith('not '):
        bool_op = 'AND'
    else:
        bool_op = 'OR'
    return [bool_op, *((name, operator, operand, *extra) for name in names)]
