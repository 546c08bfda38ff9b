# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
import re

from trytond.model import fields
from trytond.pool import Pool, PoolMeta
from trytond.pyson import Eval

RATE_FIELDS = {
    'download_rate', 'upload_rate', 'burst_download_rate',
    'burst_upload_rate', 'burst_threshold_download',
    'burst_threshold_upload', 'burst_time', 'ppp_profile', 'name'}


def profile_name(name):
    "A RouterOS-friendly profile name from a plan's name"
    return re.sub(r'[^\w.-]+', '-', (name or '').strip()).strip('-') or 'plan'


class Template(metaclass=PoolMeta):
    __name__ = 'product.template'

    ppp_profile = fields.Char(
        "PPP Profile", strip=True,
        states={'invisible': ~Eval('isp_plan', False)},
        help="The name of the plan's PPP profile on the routers; "
        "empty to derive it from the plan's name.")
    ppp_profile_name = fields.Function(
        fields.Char("PPP Profile Name"), 'get_ppp_profile_name')

    def get_ppp_profile_name(self, name=None):
        return self.ppp_profile or profile_name(self.name)

    @classmethod
    def on_modification(cls, mode, templates, field_names=None):
        super().on_modification(mode, templates, field_names=field_names)
        if (mode == 'write' and field_names and RATE_FIELDS & field_names
                and any(t.isp_plan for t in templates)):
            cls.push_plan_changes(templates)

    @classmethod
    def push_plan_changes(cls, templates):
        "Put the plans' services back in their routers' queues"
        pool = Pool()
        Service = pool.get('isp.service')
        services = Service.search([
                ('plan', 'in', [t.id for t in templates]),
                ('state', 'in', ['active', 'isolated']),
                ])
        if services:
            Service.push(services)
