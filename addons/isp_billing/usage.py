# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Usage-based charges: the data used beyond a plan's quota in a billing
cycle, charged per started GB on the next invoice, and usage cycles that
follow the billing day."""
import datetime as dt
from decimal import Decimal

from trytond.i18n import gettext
from trytond.model import fields
from trytond.modules.product import price_digits
from trytond.pool import Pool, PoolMeta
from trytond.pyson import Eval

from .billing import billing_date_on_or_before

GB = 10 ** 9


def overage_gb(used, quota_gb):
    "The GB charged for `used` bytes beyond `quota_gb` (a started GB counts)"
    over = used - quota_gb * GB
    if over <= 0:
        return 0
    return -(-over // GB)


class Template(metaclass=PoolMeta):
    __name__ = 'product.template'

    isp_overage_price = fields.Numeric(
        "Overage Price per GB", digits=price_digits,
        domain=['OR',
            ('isp_overage_price', '=', None),
            ('isp_overage_price', '>', 0),
            ],
        states={
            'invisible': ~Eval('isp_plan') | ~Eval('quota'),
            },
        help="Charged on the next invoice for each started GB used beyond "
        "the quota in a billing cycle.  With it, the throttled rates are "
        "optional: a plan without them is never throttled.")

    def _plan_throttles(self):
        return super()._plan_throttles() and not (
            self.isp_overage_price and not (
                self.throttled_download_rate or self.throttled_upload_rate))


class Service(metaclass=PoolMeta):
    __name__ = 'isp.service'

    def get_usage_cycle_start(self, date):
        "The usage cycle is the billing cycle: it starts on the billing day"
        start = billing_date_on_or_before(date, self.billing_day or 1)
        if self.activation_date and self.activation_date > start:
            start = min(self.activation_date, date)
        return start

    def _isp_period_lines(self, builder, start, end, days, cycle_days):
        lines = super()._isp_period_lines(
            builder, start, end, days, cycle_days)
        line = self._isp_overage_line(builder, start)
        if line:
            lines.append(line)
        return lines

    def _isp_overage_line(self, builder, start):
        """The overage of the usage cycle that ended the day before `start`,
        or None (a plan without quota or overage price, or no overage)"""
        pool = Pool()
        Usage = pool.get('isp.service.usage')
        plan = self.plan
        if not (plan.quota and plan.isp_overage_price and self.activation_date
                and self.activation_date < start):
            return None
        end = start - dt.timedelta(days=1)
        cycle_start = self.get_usage_cycle_start(end)
        used = Usage.totals({self.id: cycle_start}, {self.id: end})[self.id]
        quantity = overage_gb(used, plan.quota)
        if not quantity:
            return None
        price = plan.isp_overage_price
        line = builder.line(self, 'overage', price * quantity,
            gettext('isp_billing.msg_line_overage',
                plan=plan.rec_name, quota=plan.quota,
                used='%.2f' % (Decimal(used) / GB),
                period=builder.period_text(cycle_start, end)),
            start=cycle_start, end=end, plan=plan)
        line.quantity = quantity
        line.unit_price = builder.currency.round(price)
        return line
