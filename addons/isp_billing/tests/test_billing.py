# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Unit tests of the billing periods and proration (no database)."""
import datetime as dt
import unittest
from decimal import Decimal

from trytond.modules.isp_billing.billing import (
    billing_date_on_or_before,
    months_between,
    period_from,
    prorate,
)

D = dt.date


class PeriodTestCase(unittest.TestCase):

    def test_first_period_17th_of_30_day_month(self):
        self.assertEqual(period_from(D(2027, 9, 17), 1),
            (D(2027, 9, 17), D(2027, 9, 30), 14, 30))

    def test_full_period(self):
        self.assertEqual(period_from(D(2027, 10, 1), 1),
            (D(2027, 10, 1), D(2027, 10, 31), 31, 31))

    def test_leap_day(self):
        self.assertEqual(period_from(D(2028, 2, 29), 1),
            (D(2028, 2, 29), D(2028, 2, 29), 1, 29))
        self.assertEqual(period_from(D(2028, 2, 1), 1)[2:], (29, 29))
        self.assertEqual(period_from(D(2027, 2, 1), 1)[2:], (28, 28))

    def test_billing_day_28_across_year_end(self):
        self.assertEqual(period_from(D(2027, 12, 28), 28),
            (D(2027, 12, 28), D(2028, 1, 27), 31, 31))
        self.assertEqual(period_from(D(2028, 1, 31), 28),
            (D(2028, 1, 31), D(2028, 2, 27), 28, 31))

    def test_billing_date_on_or_before(self):
        self.assertEqual(
            billing_date_on_or_before(D(2028, 3, 1), 15), D(2028, 2, 15))
        self.assertEqual(
            billing_date_on_or_before(D(2028, 3, 15), 15), D(2028, 3, 15))

    def test_prorate_exact(self):
        self.assertEqual(prorate(Decimal('300000'), 14, 30),
            Decimal('140000'))
        self.assertEqual(prorate(Decimal('3000'), 1, 29).quantize(
                Decimal('0.01')), Decimal('103.45'))
        self.assertEqual(prorate(Decimal('100'), 31, 31), Decimal('100'))

    def test_months_between(self):
        self.assertEqual(months_between(D(2027, 1, 31), D(2028, 1, 30)), 11)
        self.assertEqual(months_between(D(2027, 1, 31), D(2028, 1, 31)), 12)
