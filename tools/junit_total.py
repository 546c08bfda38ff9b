# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Add up pytest's JUnit reports and print one closing line.

python -m tools.junit_total var/reports/*.xml
prints, per report, its counts and then 'total: N passed, N failed'
(errors count as failed); exits 1 when anything failed or nothing ran.
"""
import sys
from xml.etree import ElementTree


def count(path):
    root = ElementTree.parse(path).getroot()
    suites = [root] if root.tag == 'testsuite' else root.findall('testsuite')
    tests = failed = skipped = 0
    for suite in suites:
        tests += int(suite.get('tests', 0))
        failed += int(suite.get('failures', 0)) + int(suite.get('errors', 0))
        skipped += int(suite.get('skipped', 0))
    return tests - failed - skipped, failed, skipped


def main(paths):
    total_passed = total_failed = total_skipped = 0
    for path in paths:
        passed, failed, skipped = count(path)
        print(f'{path}: {passed} passed, {failed} failed, {skipped} skipped')
        total_passed += passed
        total_failed += failed
        total_skipped += skipped
    line = f'total: {total_passed} passed, {total_failed} failed'
    if total_skipped:
        line += f', {total_skipped} skipped'
    print(line)
    return 1 if total_failed or not total_passed else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
