# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
from trytond.pool import PoolMeta
from trytond.transaction import Transaction

HELPDESK = 'isp.helpdesk.'


class Cron(metaclass=PoolMeta):
    __name__ = 'ir.cron'

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.method.selection.append(
            ('isp.helpdesk.ticket|escalate', "Escalate Tickets"))


class Message(metaclass=PoolMeta):
    __name__ = 'isp.message'

    @classmethod
    def _get_origins(cls):
        return super()._get_origins() + ['isp.helpdesk.ticket']


class Rule(metaclass=PoolMeta):
    __name__ = 'ir.rule'

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.domain.help += (
            '\n- "user_id" as the id of the current user (helpdesk models)')

    @classmethod
    def _get_cache_key(cls, model_names):
        key = super()._get_cache_key(model_names)
        if any(n.startswith(HELPDESK) for n in model_names):
            # the technicians' rules depend on the user, not only groups
            key = (*key, Transaction().user)
        return key

    @classmethod
    def _get_context(cls, model_name):
        context = super()._get_context(model_name)
        if model_name.startswith(HELPDESK):
            context['user_id'] = Transaction().user
        return context
