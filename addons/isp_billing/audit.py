# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Audit trail of payments and their reversal, invoices cancelled and the
payment gateways' settings (credentials as "changed"):
isp_base/audit.py."""
from trytond.pool import PoolMeta

from trytond.modules.isp_base.audit import AuditMixin


class PaymentGateway(AuditMixin, metaclass=PoolMeta):
    __name__ = 'isp.payment.gateway'
    _audit_fields = ('name', 'provider', 'company', 'sandbox', 'base_url',
        'api_base_url', 'public_url', 'return_url', 'active')
    _audit_create = True
    _audit_delete = True


class PaymentTransaction(AuditMixin, metaclass=PoolMeta):
    "Online payments: paid, failed, reversed, reviewed"
    __name__ = 'isp.payment.transaction'
    _audit_fields = ('state', 'review', 'amount')


class Invoice(AuditMixin, metaclass=PoolMeta):
    __name__ = 'account.invoice'

    @classmethod
    def isp_record_payment(cls, invoice, amount, date=None, method='cash',
            reference=None, journal=None, to_pay=None):
        move = super().isp_record_payment(invoice, amount, date=date,
            method=method, reference=reference, journal=journal,
            to_pay=to_pay)
        cls.audit_action([cls(int(invoice))], 'payment', [
                'Amount: %s' % amount, 'Method: %s' % method,
                'Reference: %s' % (reference or '-')])
        return move

    @classmethod
    def cancel(cls, invoices):
        super().cancel(invoices)
        cls.audit_action(invoices, 'cancel')


class Move(AuditMixin, metaclass=PoolMeta):
    "A posted move cancelled (a payment reversed)"
    __name__ = 'account.move'

    def cancel(self, default=None, reversal=False):
        cancel_move = super().cancel(default=default, reversal=reversal)
        self.__class__.audit_action([self], 'cancel', [
                'Cancel move: %s' % cancel_move.id])
        return cancel_move


class Reconciliation(AuditMixin, metaclass=PoolMeta):
    "A payment taken off its invoice (unreconciled)"
    __name__ = 'account.move.reconciliation'
    _audit_delete = True
