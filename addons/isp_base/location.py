# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
from trytond.i18n import gettext
from trytond.model import DeactivableMixin, ModelSQL, ModelView, Unique, fields
from trytond.transaction import Transaction

from .common import InputGuardMixin, rec_name_domain
from .exceptions import LocationCodeValidationError
from .validation import LOCATION_CODE_RE


class Location(InputGuardMixin, DeactivableMixin, ModelSQL, ModelView):
    "ISP Location"
    __name__ = 'isp.location'
    _rec_name = 'code'

    company = fields.Many2One(
        'company.company', "Company", required=True,
        help="The branch that serves this location.")
    code = fields.Char(
        "Code", required=True, strip=True,
        help="2 to 5 capital letters, unique in the branch, e.g. KCB. "
        "It starts every customer ID of the location.")
    name = fields.Char("Name", required=True, translate=False)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints += [
            ('company_code_uniq', Unique(t, t.company, t.code),
                'isp_base.msg_location_code_unique'),
            ]
        cls._order.insert(0, ('code', 'ASC'))

    @staticmethod
    def default_company():
        return Transaction().context.get('company')

    @classmethod
    def preprocess_values(cls, mode, values):
        values = super().preprocess_values(mode, values)
        if values.get('code'):
            values['code'] = values['code'].strip().upper()
        return values

    def get_rec_name(self, name):
        return '%s - %s' % (self.code, self.name)

    @classmethod
    def search_rec_name(cls, name, clause):
        return rec_name_domain(clause, ['code', 'name'])

    @classmethod
    def validate_fields(cls, locations, field_names):
        super().validate_fields(locations, field_names)
        if field_names and 'code' not in field_names:
            return
        for location in locations:
            if not LOCATION_CODE_RE.match(location.code or ''):
                raise LocationCodeValidationError(gettext(
                        'isp_base.msg_location_code_invalid',
                        code=location.code))

