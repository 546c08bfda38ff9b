# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Assets (Tryton's account_asset: routers, ONTs, cables, towers), with
the checks an ISP's accountant needs on top of it."""
from trytond.i18n import gettext
from trytond.pool import PoolMeta

from .exceptions import AssetValueError


class Asset(metaclass=PoolMeta):
    __name__ = 'account.asset'

    @classmethod
    def validate_fields(cls, assets, field_names):
        super().validate_fields(assets, field_names)
        if field_names and not (
                field_names & {'value', 'residual_value'}):
            return
        for asset in assets:
            for name in ['value', 'residual_value']:
                value = getattr(asset, name)
                if value is not None and value < 0:
                    raise AssetValueError(gettext(
                            'isp_finance.msg_asset_value_negative',
                            field=cls._fields[name].string, value=value))
