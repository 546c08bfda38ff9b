# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""pytest plugin for the Tryton modules in addons/.

- aliases each `addons/<name>` package to `trytond.modules.<name>`, so pytest
  does not import a module a second time under its short name;
- fails skipped tests when ISP_NO_SKIP is set (scripts/test);
- deselects the module tests marked `postgresql_only` on SQLite: heavy tests
  of no SQL of their own (a thousand registrations through the same code,
  every route with every hostile body), run once, on the production
  database, not twice (scripts/test runs each module on both backends);
  and the scenarios on PostgreSQL (run once, on SQLite);
- collects `addons/*/tests/scenario*.rst` as one pytest item per scenario (and
  per configuration of its `.json` file), run through doctest with Tryton's own
  setup, teardown, checker and option flags (`load_doc_tests` is a unittest
  hook that pytest ignores); a scenario's `activate_modules(modules, *setup)`
  builds its cached database from the modules' own cached activation (the
  one the module's test classes restore) instead of activating them again.
"""
import doctest
import functools
import importlib
import json
import os
import pathlib
import sys
import unittest
from unittest.mock import patch

import pytest

ROOT = pathlib.Path(__file__).parent
ADDONS = ROOT / 'addons'


def _cache_module_imports():
    """Tryton's `resolve('trytond.modules.<name>...')` finds the module by
    scanning every installed entry point on each call; the generic tests of
    ModuleTestCase call it for each class of each registered model (about
    30,000 times per module: 80 % of their time).  The answer never changes
    within a run, so it is kept."""
    from trytond.tools import misc
    original = misc.import_module
    if getattr(original, 'cached', False):
        return
    modules = {}

    def import_module(name):
        if name not in modules:
            modules[name] = original(name)
        return modules[name]
    import_module.cached = True
    misc.import_module = import_module


def _db_exist_one_database():
    """On PostgreSQL, Tryton's test `db_exist(name)` is `name in
    Database.list()`: a connection to every database of the cluster to tell
    the Tryton ones, again after each CREATE or DROP DATABASE (they clear
    the list's cache), so two to three times per test class and scenario,
    while the cluster holds every module's cached databases and the
    integration tests' (11-20 in a run: 0.17 s per call measured with 13,
    0.04 s this way).  The same answer
    (the database exists and is a Tryton database, `Database._test`) from
    that database alone."""
    from trytond import backend
    from trytond.tests import test_tryton
    if backend.name != 'postgresql' or getattr(
            test_tryton.db_exist, 'one_database', False):
        return

    def db_exist(name=test_tryton.DB_NAME):
        import psycopg
        database = backend.Database().connect()
        connection = database.get_connection()
        try:
            with connection.cursor() as cursor:
                cursor.execute('SELECT 1 FROM pg_database '
                    'WHERE datname = %s AND NOT datistemplate', (name,))
                exists = bool(cursor.fetchall())
        finally:
            connection.rollback()
            database.put_connection(connection)
        if not exists:
            return False
        try:
            with psycopg.connect(database._connection_params(name)[
                        'conninfo']) as conn:
                return bool(database._test(conn))
        except psycopg.OperationalError:
            # dropped meanwhile
            return False
    db_exist.one_database = True
    test_tryton.db_exist = db_exist


def pytest_configure(config):
    config.addinivalue_line('markers', 'postgresql_only: a heavy module test '
        'of no SQL of its own, run on PostgreSQL only (deselected on SQLite)')
    sys.path.insert(0, str(ROOT))
    _cache_module_imports()
    for path in sorted(ADDONS.iterdir()):
        if (path / 'tryton.cfg').exists():
            module = importlib.import_module('trytond.modules.' + path.name)
            sys.modules.setdefault(path.name, module)


def pytest_collection_finish(session):
    # the module tests imported Tryton's test tools (the integration tests,
    # which do not, keep trytond's Pool as production runs it)
    if 'trytond.tests.test_tryton' in sys.modules:
        _db_exist_one_database()


def pytest_collection_modifyitems(config, items):
    """Deselect the `postgresql_only` tests when the backend is not
    PostgreSQL, and the scenarios when it is: a scenario is a user's walk
    through the client (proteus) of code whose SQL the module's test classes
    run on both backends; it runs once, on SQLite (the module tests' fast
    backend), not twice"""
    uri = os.environ.get('TRYTOND_DATABASE_URI', '')
    if not uri:
        return
    postgresql = uri.startswith('postgresql')
    kept, deselected = [], []
    for item in items:
        if postgresql:
            drop = isinstance(item, ScenarioItem)
        else:
            drop = bool(item.get_closest_marker('postgresql_only'))
        (deselected if drop else kept).append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under scripts/test (ISP_NO_SKIP=1) a skipped test fails: the command
    provides PostgreSQL, FreeRADIUS and Chromium, so a test that skips there
    would hide a broken environment or a broken feature"""
    outcome = yield
    report = outcome.get_result()
    if (report.skipped and os.environ.get('ISP_NO_SKIP')
            and not hasattr(report, 'wasxfail')):
        report.outcome = 'failed'
        report.longrepr = 'skipped under scripts/test: %s' % (
            report.longrepr[-1] if isinstance(report.longrepr, tuple)
            else report.longrepr)


def pytest_terminal_summary(terminalreporter):
    """Write this run's counts to $ISP_RESULTS_FILE (JSON) for scripts/test,
    which adds up its runs: tests, not subtests, are counted."""
    path = os.environ.get('ISP_RESULTS_FILE')
    if not path:
        return
    from _pytest.subtests import SubtestReport

    def count(*categories):
        return sum(
            1 for category in categories
            for report in terminalreporter.stats.get(category, [])
            if not isinstance(report, SubtestReport)
            and getattr(report, 'when', 'call') in {'call', 'setup'})
    failed_subtests = sum(
        1 for report in terminalreporter.stats.get('failed', [])
        if isinstance(report, SubtestReport))
    with open(path, 'w') as fp:
        json.dump({
                'passed': count('passed'),
                'failed': count('failed', 'error') + failed_subtests,
                'skipped': count('skipped'),
                }, fp)


def pytest_collect_file(parent, file_path):
    if (file_path.suffix == '.rst'
            and file_path.name.startswith('scenario')
            and file_path.parent.name == 'tests'
            and ADDONS in file_path.parents):
        return ScenarioFile.from_parent(parent, path=file_path)


class ScenarioFile(pytest.File):

    def collect(self):
        config = self.path.with_suffix('.json')
        configs = json.loads(config.read_text()) if config.exists() else [{}]
        for i, globs in enumerate(configs):
            name = self.path.name if len(configs) == 1 else (
                '%s[%d]' % (self.path.name, i))
            yield ScenarioItem.from_parent(self, name=name, globs=globs)


class ScenarioFailure(Exception):
    pass


def activate_modules(original, modules, *setup):
    """trytond.tests.tools.activate_modules, but on a cache miss with setup
    functions (e.g. `create_company`) the modules come from the cached
    activation of `activate_module(modules)` (restored, or made and cached
    there) rather than from a second activation of their own: the same
    database, one activation per module list and job instead of two (about
    30 s on SQLite, 75 s on PostgreSQL, cold)"""
    from trytond.tests import tools
    from trytond.tests.test_tryton import (
        activate_module,
        backup_db_cache,
        restore_db_cache,
    )
    if isinstance(modules, str):
        modules = [modules]
    if not setup:
        return original(modules)
    cache_name = '%s--%s' % ('-'.join(sorted(modules)),
        '|'.join(tools._func_name(f) for f in setup))
    if restore_db_cache(cache_name):
        return tools._get_config()
    # doctest_setup dropped the database: this restores or activates
    activate_module(modules)
    config = tools._get_config()
    for func in setup:
        func(config=config)
    backup_db_cache(cache_name)
    return config


class ScenarioItem(pytest.Item):

    def __init__(self, *, globs, **kwargs):
        super().__init__(**kwargs)
        self.globs = globs

    def runtest(self):
        from trytond import backend
        from trytond.tests import tools
        from trytond.tests.test_tryton import STRIP_DECIMAL
        optionflags = (
            doctest.REPORT_ONLY_FIRST_FAILURE
            | doctest.ELLIPSIS
            | doctest.IGNORE_EXCEPTION_DETAIL)
        if backend.name == 'sqlite':
            optionflags |= STRIP_DECIMAL
        with patch.object(tools, 'activate_modules', functools.partial(
                    activate_modules, tools.activate_modules)):
            self._run(optionflags)

    def _run(self, optionflags):
        from trytond.tests.test_tryton import (
            doctest_checker,
            doctest_setup,
            doctest_teardown,
        )
        suite = doctest.DocFileSuite(
            str(self.path), module_relative=False, globs=dict(self.globs),
            setUp=doctest_setup, tearDown=doctest_teardown,
            encoding='utf-8', checker=doctest_checker,
            optionflags=optionflags)
        result = unittest.TestResult()
        suite.run(result)
        problems = result.failures + result.errors
        if problems:
            raise ScenarioFailure('\n'.join(text for _, text in problems))
        if not result.testsRun:
            raise ScenarioFailure('no doctest ran in %s' % self.path)

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, ScenarioFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, 0, 'scenario: %s' % self.name
