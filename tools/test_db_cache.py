# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Build the module tests' cached databases one on top of the other.

Each module's tests start from the cached activation of that module (Tryton's
`activate_module`, DB_CACHE): on a cold run every module job activated its
whole dependency stack itself (accounting included), about 30 s on SQLite
and 75 s on PostgreSQL each, twelve times.  Here each module is activated
once, on a copy of the database of its largest ISP dependency (isp_billing on
isp_network's, isp_voucher on isp_billing's ...): Tryton's own activation of
the modules that are missing, the same as activating them on a production
database, and the cache file Tryton's tests read (its name and format) is
written in the module's cache folder.  A module whose cache already exists is
left as it is.

    python -m tools.test_db_cache BACKEND PREFIX [--templates] [MODULE ...]

BACKEND is `sqlite` or `postgresql` (TRYTOND_DATABASE_URI then names the
server); the cache folder of a module is `<PREFIX><module>-<hash>`
as scripts/test names them: `PREFIX` is the part before the module
and the hash comes from ISP_ADDONS_HASH.  With `--templates` (PostgreSQL)
each module's activation is also copied to the template database Tryton's
tests restore from when DB_CACHE is `postgresql://...` (the files stay the
cache across runs, the templates live in the run's cluster).  Each step runs
in its own process
(trytond's test tools keep their database name and cache folder in
module globals)."""
import configparser
import os
import pathlib
import shutil
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
ADDONS = ROOT / 'addons'


def dependencies():
    "{module: set of its direct dependencies} of the product's modules"
    result = {}
    for cfg in sorted(ADDONS.glob('*/tryton.cfg')):
        parser = configparser.ConfigParser()
        parser.read(cfg)
        depends = parser.get('tryton', 'depends', fallback='')
        result[cfg.parent.name] = {d.strip() for d in depends.split()
            if d.strip()}
    return result


def closure(module, depends):
    "The product's modules `module` depends on, directly or not"
    seen, todo = set(), [module]
    while todo:
        for dep in depends.get(todo.pop(), ()):
            if dep in depends and dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return seen


def plan(modules, depends):
    """[(module, parent)] in an order where each parent comes first: the
    parent is the dependency with the most dependencies of its own (None:
    activated on a new database)"""
    order = sorted(modules, key=lambda m: (len(closure(m, depends)), m))
    steps = []
    for module in order:
        deps = closure(module, depends)
        parent = max(sorted(deps), key=lambda m: len(closure(m, depends)),
            default=None)
        steps.append((module, parent))
    return steps


def cache_file(backend, folder, name):
    "The file Tryton's tests read for the activation `name` (_db_cache_file)"
    import hashlib
    hash_name = hashlib.shake_128(name.encode('utf8')).hexdigest(40 // 2)
    return pathlib.Path(folder, f'{hash_name}-{backend}.dump')


def _copy(source, target):
    if source.is_dir():
        shutil.copytree(source, target)
    else:
        shutil.copyfile(source, target)


def _remove(path):
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def build(backend, prefix, modules=None, templates=False):
    depends = dependencies()
    addons_hash = os.environ['ISP_ADDONS_HASH']
    steps = plan(modules or sorted(depends), depends)
    folder = {m: pathlib.Path(f'{prefix}{m}-{addons_hash}')
        for m, _ in steps}
    for module, parent in steps:
        target = cache_file(backend, folder[module], module)
        if target.exists():
            if templates:
                subprocess.run([sys.executable, '-m', 'tools.test_db_cache',
                        '--template', module],
                    env=dict(os.environ, DB_CACHE=str(folder[module])),
                    cwd=ROOT, check=True)
            print(f'{module}: cached', flush=True)
            continue
        folder[module].mkdir(parents=True, exist_ok=True)
        borrowed = None
        if parent:
            source = cache_file(backend, folder[parent], parent)
            borrowed = cache_file(backend, folder[module], parent)
            if source.exists() and not borrowed.exists():
                _copy(source, borrowed)
            else:
                borrowed = None
        began = time.monotonic()
        env = dict(os.environ, DB_CACHE=str(folder[module]))
        try:
            subprocess.run([sys.executable, '-m', 'tools.test_db_cache',
                    '--step', module, parent if borrowed else '',
                    '--template' if templates else ''],
                env=env, cwd=ROOT, check=True)
        finally:
            if borrowed:
                _remove(borrowed)
        print('%s: activated%s in %.0f s' % (module,
                ' on %s' % parent if borrowed else '',
                time.monotonic() - began), flush=True)


def step(module, parent, template=False):
    "In its own process: restore `parent`'s activation, activate `module`"
    from trytond.tests.test_tryton import (
        activate_module,
        drop_db,
        restore_db_cache,
    )
    drop_db()
    if parent and not restore_db_cache(parent):
        raise SystemExit(f'the activation of {parent} was not restored')
    # the database exists (restored) or not (created): the missing modules
    # are activated and the result cached under `module`
    activate_module(module)
    if template:
        make_template(module)
    drop_db()


def make_template(module):
    """Copy the test database (`module` activated) to the PostgreSQL
    template Tryton's tests restore with DB_CACHE=postgresql://...: a
    `CREATE DATABASE ... TEMPLATE` (0.3 s) instead of a pg_restore (1.5-4 s)
    each time a test class or scenario starts on a fresh database"""
    from trytond import backend
    from trytond.tests.test_tryton import DB_NAME, db_exist, drop_db
    from trytond.transaction import Transaction
    name = template_name(module)
    if db_exist(name):
        drop_db(name)
    backend.Database(DB_NAME).close()
    with Transaction().start(
            None, 0, close=True, autocommit=True) as transaction:
        transaction.database.create(transaction.connection, name, DB_NAME)


def template_name(name):
    "The database Tryton's tests restore `name` from (_db_cache_file)"
    import hashlib
    return 'test-' + hashlib.shake_128(name.encode('utf8')).hexdigest(20)


def template(module):
    "In its own process: the template of `module` from its cache file"
    from trytond.tests.test_tryton import drop_db, restore_db_cache
    drop_db()
    if not restore_db_cache(module):
        raise SystemExit(f'the activation of {module} was not restored')
    make_template(module)
    drop_db()


def main(argv):
    if argv[:1] == ['--step']:
        step(argv[1], argv[2] or None, '--template' in argv[3:])
        return
    if argv[:1] == ['--template']:
        template(argv[1])
        return
    templates = '--templates' in argv
    argv = [a for a in argv if a != '--templates']
    if len(argv) < 2 or argv[0] not in {'sqlite', 'postgresql'}:
        raise SystemExit(__doc__)
    build(argv[0], argv[1], argv[2:] or None, templates=templates)


if __name__ == '__main__':
    main(sys.argv[1:])
