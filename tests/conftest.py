# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Fixtures of the integration tests."""
import os
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope='session')
def pg_uri():
    """The URI of a PostgreSQL 15 server for integration tests: the private
    cluster of scripts/test (ISP_TEST_PG_URI), or one started here the same
    way (scripts/lib.sh pg_start) and removed at the end."""
    uri = os.environ.get('ISP_TEST_PG_URI')
    if uri:
        yield uri
        return
    lib = os.path.join(ROOT, 'scripts', 'lib.sh')
    out = subprocess.run(
        ['bash', '-c', f'. "{lib}"; pg_start >/dev/null; '
            'echo "$PG_URI $PG_DIR"'],
        check=True, capture_output=True, text=True).stdout.split()
    uri, directory = out[-2], out[-1]
    try:
        yield uri
    finally:
        subprocess.run(
            ['bash', '-c', f'. "{lib}"; PG_DIR="{directory}"; pg_stop'],
            check=False)
