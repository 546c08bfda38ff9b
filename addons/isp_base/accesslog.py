# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Secrets out of the access log.

Some providers authenticate their callbacks only by a secret in the URL
(Fonnte and Africa's Talking callbacks, M-Pesa's callback token, Meta's
verification token in the query string) and the payment links carry their
token in the path.  trytond writes every request's URL to the
`trytond.wsgi` logger, and werkzeug's server writes its access log to the
`werkzeug` logger: a filter on both replaces those secrets by '***'.

The secrets are named by an explicit list of the ISP routes' path
arguments and query parameters, not guessed from names.
"""
import logging
import re

MASK = '***'
_SEGMENT = r'[^/\s?#\'"<>]+'
#: The routes' paths whose last argument is a secret: (prefix, secret).
SECRET_PATHS = [
    re.compile(r'(/isp_base/notify/callback/%s/)(%s)' % (_SEGMENT, _SEGMENT)),
    re.compile(r'(/isp_billing/pay/)(%s)' % _SEGMENT),
    re.compile(r'(/isp_voucher/shop/order/%s/)(%s)' % (_SEGMENT, _SEGMENT)),
    # Tryton's inbound_email webhook (the helpdesk's e-mails): the inbox's
    # identifier is its only credential
    re.compile(r'(/inbound_email/inbox/)(%s)' % _SEGMENT),
    ]
#: Route path prefix: the query parameters that hold a secret there.
SECRET_QUERY = {
    '/isp_base/notify/meta/': ('hub.verify_token',),
    '/isp_billing/webhook/': ('token',),
    '/isp_base/portal/password': ('token',),
    '/isp_network/map/open': ('token',),
    }
#: The loggers that write the requests' URLs.
LOGGERS = ['trytond.wsgi', 'werkzeug']
_URL = re.compile(r'[^\s\'"<>]*/(?:isp_|inbound_email/)[^\s\'"<>]*')


def _query_pattern(names):
    return re.compile(r'([?&](?:%s)=)[^&#\s\'"<>]*' % '|'.join(
            re.escape(n).replace(r'\.', r'(?:\.|%2[Ee])') for n in names))


_QUERIES = [(prefix, _query_pattern(names))
    for prefix, names in SECRET_QUERY.items()]


def _redact_url(match):
    url = match.group(0)
    for pattern in SECRET_PATHS:
        url = pattern.sub(r'\g<1>' + MASK, url)
    for prefix, pattern in _QUERIES:
        if prefix in url:
            url = pattern.sub(r'\g<1>' + MASK, url)
    return url


def redact(text):
    "`text` with the secrets of the ISP routes' URLs replaced by ***"
    if '/isp_' not in text and '/inbound_email/' not in text:
        return text
    return _URL.sub(_redact_url, text)


class RedactSecrets(logging.Filter):
    "Rewrite log records that hold an ISP route's URL without its secrets"

    def filter(self, record):
        try:
            message = record.getMessage()
        except Exception:
            return True
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


def install():
    "Put the filter on the loggers that write URLs (once)"
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in logger.filters):
            logger.addFilter(RedactSecrets())
