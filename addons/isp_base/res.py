# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
from trytond.i18n import gettext
from trytond.pool import PoolMeta
from trytond.transaction import Transaction

from .exceptions import PreferencesCompanyError


class User(metaclass=PoolMeta):
    __name__ = 'res.user'

    @classmethod
    def set_preferences(cls, values):
        """Refuse a current company (or employee) the user does not belong
        to: the stock method writes it with the same value in the context,
        which makes the companies' domain pass."""
        user = cls(Transaction().user)
        company = values.get('company')
        if company and company not in {c.id for c in user.companies}:
            raise PreferencesCompanyError(gettext(
                    'isp_base.msg_preferences_company'))
        employee = values.get('employee')
        if employee and employee not in {e.id for e in user.employees}:
            raise PreferencesCompanyError(gettext(
                    'isp_base.msg_preferences_employee'))
        super().set_preferences(values)
