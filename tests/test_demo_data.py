# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""The demo data generator is deterministic and its subscribers are valid
and unique at benchmark sizes."""
from tools.demo_data import generate_subscribers
from trytond.modules.isp_base.validation import (
    national_id_problem,
    normalize_phone,
)


def test_deterministic():
    first = list(generate_subscribers(50, 'ID', locations=['KCB', 'DGO']))
    again = list(generate_subscribers(50, 'ID', locations=['KCB', 'DGO']))
    assert first == again
    other_seed = list(generate_subscribers(50, 'ID', seed=7))
    assert [r['national_id'] for r in first] != [
        r['national_id'] for r in other_seed]


def test_slices_continue_the_sequence():
    "A benchmark may generate in slices: start= continues the same range"
    whole = [r['whatsapp'] for r in generate_subscribers(200, 'KE')]
    second = [r['whatsapp'] for r in generate_subscribers(100, 'KE',
            start=100)]
    assert whole[100:] == second


def test_unique_at_100k():
    for country in ['ID', 'KE']:
        rows = list(generate_subscribers(100_000, country))
        assert len({r['national_id'] for r in rows}) == len(rows), country
        assert len({r['whatsapp'] for r in rows}) == len(rows), country


def test_valid():
    for country in ['ID', 'KE']:
        for row in generate_subscribers(3000, country,
                locations=['KCB', 'DGO', 'CMH']):
            assert not national_id_problem(row['national_id'], country), row
            assert normalize_phone(row['whatsapp']) == row['whatsapp'], row
            assert -90 <= row['latitude'] <= 90
            assert -180 <= row['longitude'] <= 180
            assert row['location_code'] in {'KCB', 'DGO', 'CMH'}
