# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Check that every XML file under the given folders is well-formed.

python -m tools.check_xml addons
"""
import pathlib
import sys
from xml.etree import ElementTree


def main(folders):
    errors = 0
    count = 0
    for folder in folders:
        for path in sorted(pathlib.Path(folder).rglob('*.xml')):
            count += 1
            try:
                ElementTree.parse(path)
            except ElementTree.ParseError as error:
                errors += 1
                print(f'{path}: {error}', file=sys.stderr)
    print(f'{count} XML files checked, {errors} malformed')
    return 1 if errors or not count else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:] or ['addons']))
