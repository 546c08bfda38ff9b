# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Which services a branch takes from the head office and which are its
own, shown on the branch's form: the switch itself is the branch's own
active accounts (the onboarding wizard creates or deactivates them), so
what the form says is what serves the branch."""
from sql import Literal
from trytond.model import fields
from trytond.model.fields import SQL_OPERATORS
from trytond.pool import Pool, PoolMeta
from trytond.tools import grouped_slice
from trytond.transaction import Transaction

from .onboarding import SERVICE_CHOICES


class Company(metaclass=PoolMeta):
    __name__ = 'company.company'

    isp_gateway_source = fields.Function(fields.Selection(
            SERVICE_CHOICES, "Payment Gateways",
            help="Central: the head office's gateway accounts serve the "
            "branch's payments; own: the branch's active accounts (the "
            "onboarding wizard switches)."),
        'get_isp_sources')
    isp_whatsapp_source = fields.Function(fields.Selection(
            SERVICE_CHOICES, "WhatsApp",
            help="Central: the head office's WhatsApp provider sends the "
            "branch's messages; own: the branch's active provider (the "
            "onboarding wizard switches)."),
        'get_isp_sources')
    isp_vpn_source = fields.Function(fields.Selection(
            SERVICE_CHOICES, "VPN Server",
            help="Central: the routers dial in to the head office's "
            "OpenVPN server; own: to the branch's active server."),
        'get_isp_sources')

    @classmethod
    def get_isp_sources(cls, companies, names):
        """'own' where the branch has an active account of its own, else
        'central' (read without access rules: no credential is shown)"""
        pool = Pool()
        Gateway = pool.get('isp.payment.gateway')
        Provider = pool.get('isp.message.provider')
        VpnServer = pool.get('isp.vpn.server')
        cursor = Transaction().connection.cursor()
        result = {}
        for name, Model, extra in [
                ('isp_gateway_source', Gateway, None),
                ('isp_whatsapp_source', Provider, 'whatsapp_%'),
                ('isp_vpn_source', VpnServer, None)]:
            if name not in names:
                continue
            table = Model.__table__()
            own = set()
            for sub_ids in grouped_slice([c.id for c in companies], 1000):
                where = (SQL_OPERATORS['in'](table.company, list(sub_ids))
                    & (table.active == Literal(True)))
                if extra:
                    where &= table.type.like(extra)
                cursor.execute(*table.select(table.company,
                        where=where, group_by=[table.company]))
                own.update(company for company, in cursor)
            result[name] = {c.id: 'own' if c.id in own else 'central'
                for c in companies}
        return result
