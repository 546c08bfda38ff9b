# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Add up the counts that conftest.py writes after each pytest run
($ISP_RESULTS_FILE) and print one closing line.

python -m tools.junit_total var/reports/*.json
prints, per run, its counts and then 'total: N passed, N failed'
(errors count as failed); exits 1 when anything failed or nothing ran.
"""
import json
import pathlib
import sys


def main(paths):
    totals = {'passed': 0, 'failed': 0, 'skipped': 0}
    for path in paths:
        counts = json.loads(pathlib.Path(path).read_text())
        print('%s: %d passed, %d failed, %d skipped' % (
                pathlib.Path(path).stem, counts['passed'], counts['failed'],
                counts['skipped']))
        for key in totals:
            totals[key] += counts[key]
    line = 'total: %d passed, %d failed' % (
        totals['passed'], totals['failed'])
    if totals['skipped']:
        line += ', %d skipped' % totals['skipped']
    print(line)
    return 1 if totals['failed'] or not totals['passed'] else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
