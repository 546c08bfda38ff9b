# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""The copies of invoices and of their lines carry the billing fields their
`copy` methods leave them (a new payment token, the service of a line):
see isp_base/field_access.py."""
from trytond.pool import PoolMeta

from trytond.modules.isp_base.field_access import SystemFieldsCopyMixin


class Invoice(SystemFieldsCopyMixin, metaclass=PoolMeta):
    __name__ = 'account.invoice'


class InvoiceLine(SystemFieldsCopyMixin, metaclass=PoolMeta):
    __name__ = 'account.invoice.line'
