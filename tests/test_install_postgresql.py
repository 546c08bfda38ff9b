# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""All six modules activate together on PostgreSQL with trytond-admin, as
production does (the module tests activate them through Tryton's test
tools; this runs the administrator's command)."""
import os
import subprocess
import sys

import psycopg

BIN = os.path.dirname(sys.executable)
MODULES = ['isp_base', 'isp_network', 'isp_billing', 'isp_voucher',
    'isp_helpdesk', 'isp_multicompany']


def test_trytond_admin_activates_all_modules(pg_uri, tmp_path):
    database = 'isp_install'
    with psycopg.connect(pg_uri + 'postgres', autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS {database}')
        conn.execute(
            f'CREATE DATABASE {database} TEMPLATE template0 ENCODING UTF8')
    passfile = tmp_path / 'password'
    passfile.write_text('install-test-password\n')
    env = dict(os.environ, TRYTOND_DATABASE__URI=pg_uri,
        TRYTONPASSFILE=str(passfile))
    env.pop('TRYTOND_DATABASE_URI', None)
    try:
        result = subprocess.run([
                os.path.join(BIN, 'trytond-admin'), '-d', database, '--all',
                '-u', 'isp_multicompany', '--activate-dependencies',
                '--email', 'admin@example.com'],
            env=env, capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, result.stderr[-3000:]
        with psycopg.connect(pg_uri + database) as conn:
            states = dict(conn.execute(
                    'SELECT name, state FROM ir_module WHERE name = ANY(%s)',
                    (MODULES,)).fetchall())
        assert states == {name: 'activated' for name in MODULES}
    finally:
        with psycopg.connect(pg_uri + 'postgres', autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS {database} WITH (FORCE)')
