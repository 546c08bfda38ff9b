# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
import re

from trytond.cache import Cache
from trytond.i18n import gettext
from trytond.model import fields
from trytond.pool import PoolMeta

from .common import InputGuardMixin
from .exceptions import WebDomainValidationError

#: A host name: letters, digits and hyphens in dot-separated labels.
HOST_NAME = re.compile(
    r'(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)'
    r'(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*')


def normalize_host(value):
    "The host name of a Host header or a domain field: lower case, no port"
    value = (value or '').strip().lower().rstrip('.')
    if value.startswith('['):
        return value
    return value.rsplit(':', 1)[0] if value.count(':') == 1 else value


class Company(InputGuardMixin, metaclass=PoolMeta):
    __name__ = 'company.company'

    isp_country = fields.Many2One(
        'country.country', "Country",
        help="The branch's country: national phone numbers and national "
        "IDs of its subscribers are read by its rules.")
    isp_web_domain = fields.Char(
        "Portal Domain", strip=True,
        help="The host name of the branch's public pages (customer "
        "portal), e.g. my.netkita.id.")
    isp_web_aliases = fields.Text(
        "Other Portal Domains",
        help="Other host names of the branch's public pages, one a line.")
    _web_tenant_cache = Cache('company.company.isp_web_tenant', context=False)

    def isp_web_hosts(self):
        "The normalized host names of the branch's public pages"
        hosts = [self.isp_web_domain or '']
        hosts += (self.isp_web_aliases or '').splitlines()
        return [h for h in (normalize_host(x) for x in hosts) if h]

    @classmethod
    def preprocess_values(cls, mode, values):
        values = super().preprocess_values(mode, values)
        if values.get('isp_web_domain'):
            values['isp_web_domain'] = normalize_host(
                values['isp_web_domain'])
        if values.get('isp_web_aliases'):
            values['isp_web_aliases'] = '\n'.join(
                normalize_host(h)
                for h in values['isp_web_aliases'].splitlines()
                if h.strip())
        return values

    @classmethod
    def validate_fields(cls, companies, field_names):
        super().validate_fields(companies, field_names)
        if field_names is None or field_names & {
                'isp_web_domain', 'isp_web_aliases'}:
            cls.check_web_domains(companies)

    @classmethod
    def check_web_domains(cls, companies):
        "Valid host names, each one of one company only"
        owners = {}
        for company in cls.search([]):
            for host in company.isp_web_hosts():
                owners.setdefault(host, set()).add(company.id)
        for company in companies:
            for host in company.isp_web_hosts():
                if not HOST_NAME.fullmatch(host):
                    raise WebDomainValidationError(gettext(
                            'isp_base.msg_company_web_domain_invalid',
                            domain=host, company=company.rec_name))
                if len(owners[host]) > 1 or company.isp_web_hosts().count(
                        host) > 1:
                    raise WebDomainValidationError(gettext(
                            'isp_base.msg_company_web_domain_unique',
                            domain=host))

    @classmethod
    def create(cls, vlist):
        companies = super().create(vlist)
        cls._web_tenant_cache.clear()
        return companies

    @classmethod
    def write(cls, *args):
        super().write(*args)
        cls._web_tenant_cache.clear()

    @classmethod
    def delete(cls, companies):
        super().delete(companies)
        cls._web_tenant_cache.clear()

    @classmethod
    def isp_web_tenant(cls, host):
        """The company whose public pages `host` serves: the one of that
        domain, the only company when there is one, else None"""
        host = normalize_host(host)
        company_id = cls._web_tenant_cache.get(host, -1)
        if company_id == -1:
            company_id = None
            companies = cls.search([], order=[('id', 'ASC')])
            for company in companies:
                if host in company.isp_web_hosts():
                    company_id = company.id
                    break
            else:
                if len(companies) == 1:
                    company_id = companies[0].id
            cls._web_tenant_cache.set(host, company_id)
        return cls(company_id) if company_id is not None else None

    def isp_phone_country(self):
        "Return the ISO code of the country used to read national numbers"
        if self.isp_country:
            return self.isp_country.code
        address = self.party.address_get() if self.party else None
        if address and address.country:
            return address.country.code
        return None
