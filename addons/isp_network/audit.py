# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Audit trail of services (isolation, reactivation, plan changes,
credentials) and routers (settings, API credentials): isp_base/audit.py."""
from trytond.pool import PoolMeta

from trytond.modules.isp_base.audit import AuditMixin


class Service(AuditMixin, metaclass=PoolMeta):
    __name__ = 'isp.service'
    _audit_fields = ('state', 'plan', 'router', 'subscriber', 'location',
        'username', 'remote_address', 'caller_id')
    _audit_secret_fields = ('password',)
    _audit_delete = True


class Router(AuditMixin, metaclass=PoolMeta):
    __name__ = 'isp.router'
    _audit_fields = ('name', 'host', 'port', 'use_ssl', 'ssl_fingerprint',
        'api_username', 'login_method', 'provisioning_mode',
        'isolation_method', 'isolation_profile', 'active')
    _audit_secret_fields = ('api_password', 'ssl_ca')
    _audit_create = True
    _audit_delete = True
