# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""The expensive data of a test class built once per class instead of once
per test.

Tests that each created the same branches (company, chart of accounts,
fiscal year with its periods and sequences), services and posted invoices in
their own transaction, rolled back at the end, spent most of their time
there.  `ClassSetupMixin` runs the class's `setup_class_data()` once, on a
fresh database (the module's cached activation) and commits it; each test
then calls `self.class_data()`: the same structure with every record bound
to the test's own transaction (same ids, user and context as when it was
created), so a test still changes nothing the next one sees (its
transaction is rolled back).  The database is dropped after the class: no
other test class sees the data."""
from trytond.cache import Cache
from trytond.model import Model
from trytond.pool import Pool
from trytond.tests.test_tryton import (
    DB_NAME,
    activate_module,
    drop_db,
)
from trytond.transaction import Transaction, TransactionError


class _Record:
    "A record of the committed setup: model name, id, user and context"
    __slots__ = ('name', 'id', 'user', 'context')

    def __init__(self, record):
        self.name = record.__name__
        self.id = record.id
        self.user = record._user
        self.context = dict(record._context)


def _freeze(value):
    if isinstance(value, Model):
        return _Record(value)
    elif isinstance(value, dict):
        return {k: _freeze(v) for k, v in value.items()}
    elif isinstance(value, (list, tuple)):
        return type(value)(_freeze(v) for v in value)
    return value


def _bind(value):
    if isinstance(value, _Record):
        transaction = Transaction()
        with transaction.set_user(value.user), \
                transaction.set_context(value.context):
            return Pool().get(value.name)(value.id)
    elif isinstance(value, dict):
        return {k: _bind(v) for k, v in value.items()}
    elif isinstance(value, (list, tuple)):
        return type(value)(_bind(v) for v in value)
    return value


class ClassSetupMixin:
    "`setup_class_data()` committed once per class, `class_data()` per test"
    #: the modules activated (their cached database restored) for the class
    setup_modules = None
    #: the tables the setup locks on its way, locked from its start: each
    #: lock asked for on the way restarts the whole setup
    setup_lock_tables = ()

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # from the cached activation, not from what an earlier class left
        drop_db()
        activate_module(cls.setup_modules)
        cls.addClassCleanup(drop_db)

        # restarted with the locks it asks for, as the tests' own setup was
        # (Tryton's `with_transaction`, with `setup_lock_tables` from the
        # start)
        extras = {'_lock_tables': list(cls.setup_lock_tables)}
        while True:
            with Transaction().start(DB_NAME, 1, **extras) as transaction:
                try:
                    data = _freeze(cls.setup_class_data())
                    transaction.commit()
                except TransactionError as exception:
                    transaction.rollback()
                    exception.fix(extras)
                    continue
                finally:
                    transaction.tasks.clear()
                    Cache.drop(DB_NAME)
                cls._class_data = data
                break

    @classmethod
    def setup_class_data(cls):
        "The records the tests share (run once, in a committed transaction)"
        raise NotImplementedError

    def class_data(self):
        "The class's data, its records bound to the running transaction"
        return _bind(self._class_data)
