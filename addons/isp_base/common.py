# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
from trytond.i18n import gettext
from trytond.model import fields
from trytond.modules.company.model import CompanyMultiValueMixin
from trytond.pyson import Bool, Eval, If

from .exceptions import InputValidationError
from .validation import input_bounds, input_problem

MAX_BIGINT = 2 ** 63 - 1


def _input_kind(field):
    """The kind of input_problem checking a field, or None (read-only
    fields: only the system writes them)"""
    if isinstance(field, fields.Function) and not field.setter:
        return None
    if field.readonly is True:
        return None
    field = getattr(field, '_field', field)
    if isinstance(field, fields.Numeric):
        return 'numeric'
    if isinstance(field, fields.Float):
        return 'float'
    if isinstance(field, fields.Integer):
        return 'integer'
    if isinstance(field, fields.Text):
        return 'text'
    if isinstance(field, fields.Char):
        return 'char'
    return None


def check_input(Model, values):
    """Return `values` with the numbers given as text converted; raise
    InputValidationError naming the field for a value that is not a number
    or not finite, out of its bounds, too long or holding NULs.

    Bounds: `Model._input_bounds()`, else what the database holds (numbers)
    and MAX_CHAR (one-line texts)."""
    bounds = Model._input_bounds()
    values = values.copy()
    for name, value in values.items():
        field = Model._fields.get(name)
        kind = _input_kind(field) if field is not None else None
        if kind is None or value is None:
            continue
        minimum, maximum = bounds.get(name, (None, None))
        if getattr(field, '_sql_type', None) == 'BIGINT':
            minimum = -MAX_BIGINT if minimum is None else minimum
            maximum = MAX_BIGINT if maximum is None else maximum
        value, problem = input_problem(kind, value, minimum, maximum)
        if problem:
            minimum, maximum = input_bounds(kind, minimum, maximum)
            shown = str(values[name])
            raise InputValidationError(gettext(
                    'isp_base.msg_input_%s' % problem,
                    **Model.__names__(name),
                    value=shown[:40] + ('...' if len(shown) > 40 else ''),
                    length=len(shown), minimum=minimum, maximum=maximum))
        values[name] = value
    return values


class InputGuardMixin:
    """Refuse bad input before it reaches the database: numbers given as
    text that is not a number, infinite or NaN, out of bounds; texts that
    are too long or hold NUL characters (see check_input)."""
    __slots__ = ()

    @classmethod
    def _input_bounds(cls):
        """Return {field name: (minimum, maximum)}: the bounds of a number,
        or (None, the most characters) of a text; None is the default"""
        return {}

    @classmethod
    def preprocess_values(cls, mode, values):
        return check_input(cls, super().preprocess_values(mode, values))


class SecretDefaultsMixin:
    """Fields whose default is a random secret: every record gets its own.

    Tryton computes the defaults once per `create` call and shares them
    between the records of the call (and of an import), so two records
    created together would share one secret; and `copy` calls a callable
    default with the copied values.  `_secret_defaults` names the fields
    and the function giving a new value; `create` fills each record that
    has none and `copy` gives each copy a new one.
    """
    __slots__ = ()

    @classmethod
    def _secret_defaults(cls):
        "Return {field name: function returning a new secret}"
        return {}

    @classmethod
    def create(cls, vlist):
        factories = cls._secret_defaults()
        vlist = [{
                **{n: f() for n, f in factories.items() if n not in values},
                **values} for values in vlist]
        return super().create(vlist)

    @classmethod
    def copy(cls, records, default=None):
        default = default.copy() if default is not None else {}
        for name, factory in cls._secret_defaults().items():
            default.setdefault(name, lambda data, factory=factory: factory())
        return super().copy(records, default=default)


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
