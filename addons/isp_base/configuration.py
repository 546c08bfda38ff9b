# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
from trytond.model import ModelSingleton, ModelSQL, ModelView, fields
from trytond.modules.company.model import (
    CompanyMultiValueMixin,
    CompanyValueMixin,
)
from trytond.pool import Pool
from trytond.pyson import Eval, Id


def _sequence_domain(company):
    return [
        ('company', 'in', [company, None]),
        ('sequence_type', '=',
            Id('isp_base', 'sequence_type_subscriber')),
        ]


class Configuration(
        ModelSingleton, ModelSQL, ModelView, CompanyMultiValueMixin):
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


class ConfigurationSequence(ModelSQL, CompanyValueMixin):
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
