# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Pure validation and formatting helpers shared by the ISP modules.

They take plain values and return plain values (or a reason string), so the
models, the demo data generator and the benchmarks use the same rules.
"""
import datetime
import math
import re
from decimal import Decimal, InvalidOperation

try:
    import phonenumbers
    from phonenumbers import NumberParseException, PhoneNumberFormat
except ImportError:  # pragma: no cover
    phonenumbers = None

NIK_RE = re.compile(r'^\d{16}$')
LOCATION_CODE_RE = re.compile(r'^[A-Z]{2,5}$')


def nik_problem(nik):
    """Return why `nik` is not a valid Indonesian national ID, or None.

    A NIK is 16 digits: province (2), regency (2), district (2), date of birth
    DDMMYY (women add 40 to the day) and a 4-digit serial.  Region codes and
    the serial are never zero.
    """
    if not NIK_RE.match(nik or ''):
        return 'length'
    province, regency, district = nik[0:2], nik[2:4], nik[4:6]
    if '00' in {province, regency, district}:
        return 'region'
    day, month, year = int(nik[6:8]), int(nik[8:10]), int(nik[10:12])
    if day > 40:
        day -= 40
    valid_date = False
    for century in (1900, 2000):
        try:
            datetime.date(century + year, month, day)
        except ValueError:
            continue
        valid_date = True
        break
    if not valid_date:
        return 'birth_date'
    if nik[12:16] == '0000':
        return 'serial'
    return None


def nik_birth_date(nik, today=None):
    "Return the date of birth and the sex ('male'/'female') encoded in a NIK"
    today = today or datetime.date.today()
    day, month, year = int(nik[6:8]), int(nik[8:10]), int(nik[10:12])
    sex = 'male'
    if day > 40:
        day -= 40
        sex = 'female'
    century = 2000 if 2000 + year <= today.year else 1900
    try:
        birth = datetime.date(century + year, month, day)
    except ValueError:
        birth = datetime.date(1900 + year, month, day)
    return birth, sex


def normalize_phone(number, country_code=None):
    """Return `number` in E.164 or None when it is not a valid number.

    A national number is read in `country_code` (ISO 3166 alpha-2); a number
    starting with '+' or '00' carries its own country.
    """
    if not number:
        return None
    if phonenumbers is None:  # pragma: no cover
        raise RuntimeError("phonenumbers is required")
    value = number.strip()
    if value.startswith('00'):
        value = '+' + value[2:]
    try:
        parsed = phonenumbers.parse(
            value, country_code.upper() if country_code else None)
    except NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, PhoneNumberFormat.E164)


_EMAIL_LOCAL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
    r"(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_EMAIL_LABEL = re.compile(r'^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$')


def email_problem(email):
    """Return why `email` is not a deliverable address's syntax, or None:
    'syntax' (one @, a local part of letters, digits and the RFC 5322
    signs without leading, trailing or double dots, a domain of DNS labels
    with at least one dot; at most 254 characters).  trytond's own check
    (email_validator) is applied too when it is installed."""
    from trytond.tools.email_ import EmailNotValidError, validate_email
    if not isinstance(email, str) or len(email) > 254 or email.count(
            '@') != 1:
        return 'syntax'
    local, domain = email.rsplit('@', 1)
    labels = domain.split('.')
    if (len(local) > 64 or not _EMAIL_LOCAL.match(local)
            or len(labels) < 2
            or not all(_EMAIL_LABEL.match(label) for label in labels)
            or labels[-1].isdigit()):
        return 'syntax'
    try:
        validate_email(email)
    except EmailNotValidError:
        return 'syntax'
    return None


def coordinate_problem(latitude, longitude):
    "Return 'latitude' or 'longitude' when out of range, else None"
    if latitude is not None and not -90 <= latitude <= 90:
        return 'latitude'
    if longitude is not None and not -180 <= longitude <= 180:
        return 'longitude'
    return None


def format_rate(kbps):
    "Format a rate in kbit/s the way MikroTik reads it: 512k, 10M, 1500k"
    if not kbps:
        return '0'
    if kbps % 1000 == 0:
        return '%dM' % (kbps // 1000)
    return '%dk' % kbps


def rate_limit(upload, download, burst_upload=None, burst_download=None,
        threshold_upload=None, threshold_download=None,
        burst_time=None):
    """Return MikroTik's rate-limit string.

    MikroTik reads rx/tx from the router's side: rx is what the client
    uploads, tx what it downloads, so the pair is upload/download.
    """
    value = '%s/%s' % (format_rate(upload), format_rate(download))
    if (burst_upload and burst_download and threshold_upload
            and threshold_download and burst_time):
        value += ' %s/%s %s/%s %d/%d' % (
            format_rate(burst_upload), format_rate(burst_download),
            format_rate(threshold_upload), format_rate(threshold_download),
            burst_time, burst_time)
    return value


#: The rates a MikroTik rate limit holds, by the names of the plan's fields
#: (kbit/s; `burst_time` in seconds).
RATE_LIMIT_FIELDS = [
    'upload_rate', 'download_rate', 'burst_upload_rate', 'burst_download_rate',
    'burst_threshold_upload', 'burst_threshold_download', 'burst_time']
_RATE_RE = re.compile(r'^(\d{1,12})([kMG]?)$')
_TIME_RE = re.compile(r'^(\d{1,6})s?$')
_RATE_UNITS = {'': None, 'k': 1, 'M': 1000, 'G': 1000 ** 2}


def parse_rate(text):
    """Return the kbit/s of a MikroTik rate ('512k', '10M', '1G', or bits
    per second in thousands: '64000'), or None when malformed"""
    match = _RATE_RE.match(text)
    if not match:
        return None
    number, unit = int(match.group(1)), _RATE_UNITS[match.group(2)]
    if unit is None:
        if number % 1000:
            return None
        return number // 1000
    return number * unit


def _pair(token, parse):
    "(rx, tx) of a MikroTik 'rx/tx' token (one value: both), or None"
    parts = token.split('/')
    if len(parts) > 2:
        return None
    values = [parse(p) for p in parts]
    if None in values:
        return None
    return (values[0], values[-1])


def parse_rate_limit(text):
    """Read MikroTik's rate-limit syntax, `rx[/tx] [burst-rx[/burst-tx]
    [threshold-rx[/threshold-tx] [time-rx[/time-tx] [priority
    [min-rx[/min-tx]]]]]]`, rx being what the client uploads.

    Return {plan field name: value} (see RATE_LIMIT_FIELDS; a burst part of
    0 is none) for `rate_problem`, or None when the text is malformed (or
    its priority is not 1 to 8, its minimum rates above the rates)."""
    tokens = (text or '').split()
    if not 1 <= len(tokens) <= 6:
        return None
    parsers = [parse_rate, parse_rate, parse_rate,
        lambda t: int(m.group(1)) if (m := _TIME_RE.match(t)) else None,
        None, parse_rate]
    pairs = []
    for index, token in enumerate(tokens):
        if index == 4:
            if not (token.isdigit() and 1 <= int(token) <= 8):
                return None
            pairs.append(None)
            continue
        pair = _pair(token, parsers[index])
        if pair is None:
            return None
        pairs.append(pair)
    pairs += [None] * (6 - len(pairs))
    (upload, download), burst, threshold, time, _, minimum = pairs
    if minimum and (minimum[0] > upload or minimum[1] > download):
        return None
    burst, threshold = burst or (0, 0), threshold or (0, 0)
    return {
        'upload_rate': upload, 'download_rate': download,
        'burst_upload_rate': burst[0] or None,
        'burst_download_rate': burst[1] or None,
        'burst_threshold_upload': threshold[0] or None,
        'burst_threshold_download': threshold[1] or None,
        'burst_time': min(time) if time else None,
        }


def rate_problem(rates):
    """Return (problem, field name) when the rates of a plan or profile do
    not make a coherent MikroTik rate limit, else None.

    `rates` maps the names of RATE_LIMIT_FIELDS to kbit/s (None: not set).
    The problems are 'rate_positive', 'burst_above_rate', 'burst_threshold'
    (each with the field at fault), 'burst_both' and 'burst_time' (None)."""
    for direction in ('download', 'upload'):
        rate = rates.get('%s_rate' % direction)
        burst = rates.get('burst_%s_rate' % direction)
        threshold = rates.get('burst_threshold_%s' % direction)
        for name in ('%s_rate' % direction, 'burst_%s_rate' % direction,
                'burst_threshold_%s' % direction):
            value = rates.get(name)
            if value is not None and value <= 0:
                return 'rate_positive', name
        if burst is not None and rate is not None and burst <= rate:
            return 'burst_above_rate', 'burst_%s_rate' % direction
        if burst and (not threshold or (
                    rate is not None and threshold >= rate)):
            return 'burst_threshold', 'burst_threshold_%s' % direction
    bursts = [rates.get('burst_download_rate'), rates.get('burst_upload_rate')]
    if any(bursts) and not all(bursts):
        return 'burst_both', None
    burst_time = rates.get('burst_time')
    if any(bursts) and not (burst_time and burst_time > 0):
        return 'burst_time', None
    return None


def national_id_problem(number, country_code=None):
    """Return why `number` is not a valid national ID for the branch's
    country, or None.  Indonesian branches (and branches with no country)
    use the NIK rules; Kenya's ID cards carry 6 to 9 digits; elsewhere any
    4 to 32 letters or digits."""
    country_code = (country_code or 'ID').upper()
    if country_code == 'ID':
        return nik_problem(number)
    if country_code == 'KE':
        if not re.match(r'^\d{6,9}$', number or ''):
            return 'length_ke'
        return None
    if not re.match(r'^[0-9A-Za-z]{4,32}$', number or ''):
        return 'format'
    return None


#: The bounds of what users and RPC clients may give a field: the integers
#: of the database (PostgreSQL's integer), floats far beyond any measure of
#: the product, and one-line texts.
MAX_INTEGER = 2 ** 31 - 1
MAX_FLOAT = 1e15
MAX_CHAR = 1024


def _finite(value):
    if isinstance(value, Decimal):
        return value.is_finite()
    return math.isfinite(value)


def input_bounds(kind, minimum=None, maximum=None):
    "The (minimum, maximum) input_problem applies: the given or defaults"
    if kind in {'char', 'text'}:
        return None, (MAX_CHAR if maximum is None and kind == 'char'
            else maximum)
    default = MAX_INTEGER if kind == 'integer' else MAX_FLOAT
    return (-default if minimum is None else minimum,
        default if maximum is None else maximum)


def input_problem(kind, value, minimum=None, maximum=None):
    """Check a value given to a field of `kind` ('integer', 'float',
    'numeric', 'char' or 'text'); return (value, None) with the value
    converted (numbers given as text) or (None, problem), the problem one
    of 'number', 'finite', 'range', 'text', 'nul', 'length'.

    Numbers are bounded by `minimum`/`maximum` (default: what the
    database holds), texts by `maximum` characters (default MAX_CHAR for
    'char', none for 'text')."""
    if kind in {'char', 'text'}:
        if not isinstance(value, str):
            return None, 'text'
        if '\x00' in value:
            return None, 'nul'
        maximum = input_bounds(kind, minimum, maximum)[1]
        if maximum is not None and len(value) > maximum:
            return None, 'length'
        return value, None
    if isinstance(value, bool):
        return None, 'number'
    try:
        if isinstance(value, str):
            value = value.strip()
            if kind == 'integer':
                value = int(value)
            elif kind == 'numeric':
                value = Decimal(value)
            else:
                value = float(value)
        elif not isinstance(value, (int, float, Decimal)):
            return None, 'number'
    except (ValueError, InvalidOperation):
        return None, 'number'
    if not _finite(value):
        return None, 'finite'
    if kind == 'integer':
        if value != int(value):
            return None, 'number'
        value = int(value)
    low, high = input_bounds(kind, minimum, maximum)
    if not low <= value <= high:
        return None, 'range'
    return value, None
