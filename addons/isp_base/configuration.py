# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
from trytond.i18n import gettext
from trytond.model import ModelSingleton, ModelSQL, ModelView, fields
from trytond.model.exceptions import AccessError
from trytond.modules.company.model import (
    CompanyMultiValueMixin,
    CompanyValueMixin,
)
from trytond.pool import Pool
from trytond.pyson import Eval, Id
from trytond.transaction import Transaction, without_check_access


def _sequence_domain(company):
    return [
        ('company', 'in', [company, None]),
        ('sequence_type', '=',
            Id('isp_base', 'sequence_type_subscriber')),
        ]


def check_value_company(company):
    """Refuse (AccessError) the per-company values of a company that is not
    among the user's companies (as the record rules read them).  The root
    user (crons, workers, server code) may use every company; no company
    gives the shared values."""
    transaction = Transaction()
    if transaction.user == 0 or company is None:
        return
    User = Pool().get('res.user')
    if int(company) not in User.get_companies():
        raise AccessError(gettext('isp_base.msg_configuration_company'))


class BranchMultiValueMixin(CompanyMultiValueMixin):
    """Per-company values that follow the user's companies.

    The context's company is the client's word: Tryton reads and writes the
    values of whatever company it names, and the record rules do not apply
    to the values (the getters and setters run without access checks).
    Reading or writing them with access checks (an RPC call) for a company
    that is not among the user's is refused; buttons check the same with
    `check_value_company`.  Server code reads any company's values."""
    __slots__ = ()

    @classmethod
    def _company_value_fields(cls, names):
        for name in names or cls._fields:
            field = cls._fields.get(name)
            if isinstance(field, fields.MultiValue) and issubclass(
                    cls.multivalue_model(name), CompanyValueMixin):
                yield name

    @classmethod
    def _check_context_company(cls, names):
        transaction = Transaction()
        if (transaction.user and transaction.check_access
                and any(cls._company_value_fields(names))):
            check_value_company(transaction.context.get('company'))

    @classmethod
    def read(cls, ids, fields_names):
        cls._check_context_company(fields_names)
        return super().read(ids, fields_names)

    @classmethod
    def write(cls, *args):
        cls._check_context_company(
            {n for values in args[1::2] for n in values})
        super().write(*args)


class BranchValueMixin(CompanyValueMixin):
    """The values of every company, read by the configuration without
    access checks: their model is closed to RPC calls (no access), and the
    configuration refuses the values of another branch"""
    __slots__ = ()

    @classmethod
    def values(cls):
        # the records keep the context they are browsed in
        with without_check_access():
            return super().values()


class Configuration(
        BranchMultiValueMixin, ModelSingleton, ModelSQL, ModelView):
    "ISP Configuration"
    __name__ = 'isp.configuration'

    subscriber_sequence = fields.MultiValue(fields.Many2One(
            'ir.sequence', "Subscriber Sequence", required=True,
            domain=_sequence_domain(Eval('context', {}).get('company', -1)),
            help="The sequence that numbers the subscribers of the branch."))

    @classmethod
    def multivalue_model(cls, field):
        pool = Pool()
        if field == 'subscriber_sequence':
            return pool.get('isp.configuration.sequence')
        return super().multivalue_model(field)

    @classmethod
    def default_subscriber_sequence(cls, **pattern):
        return cls.multivalue_model(
            'subscriber_sequence').default_subscriber_sequence()


class ConfigurationSequence(ModelSQL, BranchValueMixin):
    "ISP Configuration Sequence"
    __name__ = 'isp.configuration.sequence'

    subscriber_sequence = fields.Many2One(
        'ir.sequence', "Subscriber Sequence", required=True,
        domain=_sequence_domain(Eval('company', -1)))

    @classmethod
    def default_subscriber_sequence(cls):
        pool = Pool()
        ModelData = pool.get('ir.model.data')
        try:
            return ModelData.get_id('isp_base', 'sequence_subscriber')
        except KeyError:
            return None
