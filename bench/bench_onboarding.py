# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Tenant onboarding benchmark.

- tenant_onboarding_s: from the onboarding wizard's start to a branch that
  has billed its first subscriber: the wizard run by a head-office
  administrator (Nairobi: KES, VAT 16 %, the minimal chart, its fiscal year
  and sequences, ladder, two locations, the head office's plan copied,
  portal domains, an invited administrator, its own WhatsApp provider),
  committed; then, as the invited branch administrator, a router and the
  register wizard of a first subscriber, whose first invoice is posted,
  committed.  Target < 60 s on 2 cores.
- tenant_isolation_models: the models the branch isolation walk discovers
  (addons/isp_multicompany/tests/test_records_security.py, `branch_models`):
  every model of the pool with a company field or reached through one, but
  its commented allow-list of shared ones.

The head office (its chart, a plan to copy) is set up before the clock
starts; making the modules' database is not counted.

    .venv/bin/python bench/bench_onboarding.py

The database is a temporary SQLite file unless TRYTOND_DATABASE_URI points
elsewhere (e.g. postgresql://...).  Prints `BENCH <metric> <value> <unit>`.
"""
import os
import sys
import tempfile
import time
from unittest.mock import patch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def setup_environment(tmp):
    os.environ.setdefault('TRYTOND_DATABASE_URI', 'sqlite://')
    os.environ.setdefault('DB_NAME', 'bench_onboarding')
    if os.environ['TRYTOND_DATABASE_URI'].startswith('sqlite'):
        os.environ['TRYTOND_DATABASE__PATH'] = tmp
        open(os.path.join(tmp, os.environ['DB_NAME'] + '.sqlite'),
            'w').close()


def in_transaction(db_name, func, *args):
    """Run func(*args) as root in a committed transaction, restarted with
    the locks it asks for (as Tryton's own wrappers do); its queued tasks
    (router pushes, notices) are not run"""
    from trytond.transaction import Transaction, TransactionError
    extras = {}
    while True:
        with Transaction().start(db_name, 0, context={'language': 'en'},
                **extras) as transaction:
            try:
                result = func(*args)
            except TransactionError as exception:
                transaction.rollback()
                transaction.tasks.clear()
                exception.fix(extras)
                continue
            transaction.commit()
            transaction.tasks.clear()
        return result


def ids(data):
    return {'head_admin': data['users']['head'].id, 'form': data['form']}


def onboard_branch(setup):
    from trytond.pool import Pool

    from trytond.modules.isp_multicompany.tests.test_onboarding import (
        onboard,
    )
    User = Pool().get('res.user')
    onboard(User(setup['head_admin']), setup['form'])


def first_subscriber():
    from trytond.pool import Pool

    from trytond.modules.isp_billing.tests.reporting_tools import (
        create_router,
    )
    from trytond.modules.isp_multicompany.tests.test_onboarding import (
        register,
    )
    pool = Pool()
    User = pool.get('res.user')
    Invoice = pool.get('account.invoice')
    admin, = User.search([('login', '=', 'nbo_admin')])
    company = admin.company
    router = create_router(company, 'WS', "Westlands POP")
    service = register(admin, company, "Wanjiru Kamau", router)
    invoice, = Invoice.search([('party', '=', service.subscriber.id)])
    return invoice.number, invoice.state, str(invoice.total_amount)


def isolation_models():
    """The models the branch isolation walk of test_records_security.py
    discovers: every model whose records belong to a branch (a company field,
    or reached through one), but the shared ones of its allow-list"""
    from trytond.modules.isp_multicompany.tests.test_records_security import (
        branch_models,
    )
    return len(branch_models())


def main():
    tmp = tempfile.mkdtemp(prefix='bench-onboarding-')
    setup_environment(tmp)
    from trytond.tests.test_tryton import DB_NAME, activate_module

    from trytond.modules.isp_multicompany.tests.test_onboarding import (
        setup_head_office,
    )
    started = time.monotonic()
    activate_module(['isp_multicompany'])
    print("database ready in %.1f s" % (time.monotonic() - started))
    setup = in_transaction(DB_NAME, lambda: ids(setup_head_office()))

    # no SMTP server here: the invitation is handed over, not sent
    with patch('trytond.res.user.send_message_transactional'):
        started = time.perf_counter()
        in_transaction(DB_NAME, onboard_branch, setup)
        wizard = time.perf_counter() - started
        number, state, total = in_transaction(DB_NAME, first_subscriber)
        elapsed = time.perf_counter() - started
    print("wizard %.1f s; first invoice %s %s, total %s KES" % (
            wizard, number, state, total))
    print("BENCH tenant_onboarding_s %.1f s" % elapsed)
    print("BENCH tenant_isolation_models %d count" % in_transaction(
            DB_NAME, isolation_models))


if __name__ == '__main__':
    main()
