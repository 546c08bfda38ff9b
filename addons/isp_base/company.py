# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
from trytond.model import fields
from trytond.pool import PoolMeta


class Company(metaclass=PoolMeta):
    __name__ = 'company.company'

    isp_country = fields.Many2One(
        'country.country', "Country",
        help="The branch's country: national phone numbers and national "
        "IDs of its subscribers are read by its rules.")

    def isp_phone_country(self):
        "Return the ISO code of the country used to read national numbers"
        if self.isp_country:
            return self.isp_country.code
        address = self.party.address_get() if self.party else None
        if address and address.country:
            return address.country.code
        return None
