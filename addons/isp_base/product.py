# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
from decimal import Decimal

from trytond.i18n import gettext
from trytond.model import Index, fields
from trytond.modules.product import price_digits
from trytond.pool import Pool, PoolMeta
from trytond.pyson import Bool, Eval
from trytond.transaction import Transaction

from .common import InputGuardMixin, set_branch_context
from .exceptions import PlanValidationError
from .validation import RATE_LIMIT_FIELDS, rate_limit, rate_problem

_PLAN = {
    'invisible': ~Eval('isp_plan', False),
    }
_PLAN_REQUIRED = {
    'invisible': ~Eval('isp_plan', False),
    'required': Bool(Eval('isp_plan', False)),
    }
_RATE_HELP = "In kbit/s (1000 = 1 Mbit/s)."
#: The fastest rate a plan may give, in kbit/s (100 Gbit/s).
MAX_RATE = 100_000_000
RATE_FIELDS = [
    'download_rate', 'upload_rate', 'burst_download_rate',
    'burst_upload_rate', 'burst_threshold_download', 'burst_threshold_upload',
    'throttled_download_rate', 'throttled_upload_rate']


def _rate(string, states=_PLAN, help=_RATE_HELP):
    return fields.Integer(string, states=states, help=help)


class Template(InputGuardMixin, metaclass=PoolMeta):
    __name__ = 'product.template'

    isp_plan = fields.Boolean(
        "ISP Plan", help="Check if the product is an internet service plan.")
    isp_company = fields.Many2One(
        'company.company', "Branch", ondelete='RESTRICT', states=_PLAN,
        help="The branch that sells the plan; empty for every branch.")
    download_rate = _rate("Download Rate", states=_PLAN_REQUIRED)
    upload_rate = _rate("Upload Rate", states=_PLAN_REQUIRED)
    burst_download_rate = _rate("Burst Download Rate")
    burst_upload_rate = _rate("Burst Upload Rate")
    burst_threshold_download = _rate("Burst Threshold Download")
    burst_threshold_upload = _rate("Burst Threshold Upload")
    burst_time = fields.Integer(
        "Burst Time", states=_PLAN,
        help="In seconds: the averaging window of the burst.")
    quota = fields.Integer(
        "Fair-Usage Quota", states=_PLAN,
        help="In GB per billing cycle; empty for unlimited.")
    throttled_download_rate = _rate("Throttled Download Rate")
    throttled_upload_rate = _rate("Throttled Upload Rate")
    setup_fee = fields.Numeric(
        "Setup Fee", digits=price_digits, states=_PLAN,
        help="Charged once with the first invoice.")
    rate_limit = fields.Function(fields.Char(
            "Rate Limit", states=_PLAN,
            help="The MikroTik rate-limit (upload/download as the router "
            "reads rx/tx)."), 'get_rate_limit')
    throttled_rate_limit = fields.Function(fields.Char(
            "Throttled Rate Limit", states=_PLAN), 'get_rate_limit')

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_indexes.add(Index(t,
                (t.isp_plan, Index.Equality()),
                (t.isp_company, Index.Range())))

    @classmethod
    def __post_setup__(cls):
        super().__post_setup__()
        set_branch_context(cls, 'isp_company')

    @classmethod
    def _input_bounds(cls):
        return {
            **super()._input_bounds(),
            **{name: (None, MAX_RATE) for name in RATE_FIELDS},
            'burst_time': (None, 3600),
            'quota': (None, 10 ** 6),
            }

    @classmethod
    def default_isp_plan(cls):
        return Transaction().context.get('default_isp_plan', False)

    @classmethod
    def default_isp_company(cls):
        if cls.default_isp_plan():
            return Transaction().context.get('company')

    @fields.depends('isp_plan', 'type', 'isp_company')
    def on_change_isp_plan(self):
        pool = Pool()
        Company = pool.get('company.company')
        if self.isp_plan:
            self.type = 'service'
            # a plan is the branch's own; the head office empties the
            # branch for a central plan (branches cannot create those)
            company = Transaction().context.get('company')
            if not self.isp_company and company:
                self.isp_company = Company(company)

    def get_rate_limit(self, name):
        if not self.isp_plan:
            return None
        if name == 'throttled_rate_limit':
            if not (self.throttled_upload_rate
                    and self.throttled_download_rate):
                return None
            return rate_limit(
                self.throttled_upload_rate, self.throttled_download_rate)
        if not (self.upload_rate and self.download_rate):
            return None
        return rate_limit(
            self.upload_rate, self.download_rate,
            self.burst_upload_rate, self.burst_download_rate,
            self.burst_threshold_upload, self.burst_threshold_download,
            self.burst_time)

    @classmethod
    def validate_fields(cls, templates, field_names):
        super().validate_fields(templates, field_names)
        for template in templates:
            if template.isp_plan:
                template.check_plan()

    def _plan_error(self, problem, **kwargs):
        return PlanValidationError(gettext(
                'isp_base.msg_plan_%s' % problem,
                plan=self.rec_name, **kwargs))

    def _plan_throttles(self):
        """Whether going over the quota throttles the service (billing
        modules answer no when the plan charges the overage instead)"""
        return True

    def check_plan(self):
        "Check that the plan's figures make a coherent MikroTik profile"
        if self.type != 'service':
            raise self._plan_error('not_service')
        problem = rate_problem(
            {name: getattr(self, name) for name in RATE_LIMIT_FIELDS})
        if problem:
            problem, name = problem
            raise self._plan_error(
                problem, field=self._label(name) if name else None)
        for direction in ('download', 'upload'):
            rate = getattr(self, '%s_rate' % direction)
            name = 'throttled_%s_rate' % direction
            throttled = getattr(self, name)
            if throttled is not None and throttled <= 0:
                raise self._plan_error(
                    'rate_positive', field=self._label(name))
            if throttled is not None and throttled >= rate:
                raise self._plan_error(
                    'throttled_below_rate', field=self._label(name))
        if self.quota is not None:
            if self.quota <= 0:
                raise self._plan_error('quota_positive')
            if self._plan_throttles() and not (
                    self.throttled_download_rate
                    and self.throttled_upload_rate):
                raise self._plan_error('quota_throttle')
        if self.setup_fee is not None and self.setup_fee < Decimal(0):
            raise self._plan_error('setup_fee_negative')

    @classmethod
    def _label(cls, name):
        return cls.fields_get([name])[name]['string']
