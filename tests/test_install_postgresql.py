# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Every product module activates on PostgreSQL with trytond-admin, as an
administrator does on a production database (the module tests activate them
through Tryton's test tools; this runs the administrator's command).

`Stack.module_template('isp_multicompany')` runs `trytond-admin --all -u
isp_base` on a new database, then `trytond-admin -u <module>
--activate-dependencies` for each product module on top of the database of
its largest dependency, up to isp_multicompany, which depends on every
other one.  The steps below isp_billing are the template databases the
other integration files share in the cluster (made once, by whichever file
comes first): this file pays for the modules above them only, not for a
second activation of the whole stack from scratch."""
import pathlib
import sys

import psycopg

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.bench_notify import Stack  # noqa: E402

MODULES = ['isp_base', 'isp_network', 'isp_billing', 'isp_voucher',
    'isp_helpdesk', 'isp_finance', 'isp_multicompany']


def test_trytond_admin_activates_all_modules(pg_uri):
    stack = Stack(pg_uri, name='isp_install', workers=0)
    template = stack.module_template('isp_multicompany')
    with psycopg.connect(pg_uri + template) as conn:
        states = dict(conn.execute(
                'SELECT name, state FROM ir_module WHERE name = ANY(%s)',
                (MODULES,)).fetchall())
        # account_budget, account_asset ...: everything a module depends on
        pending = conn.execute("SELECT name FROM ir_module "
            "WHERE state NOT IN ('activated', 'not activated')").fetchall()
    assert states == {name: 'activated' for name in MODULES}
    assert pending == []
