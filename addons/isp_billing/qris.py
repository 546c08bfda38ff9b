# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""QRIS payloads (EMVCo merchant-presented QR code): parse, check, build.

A payload is a list of TLV fields: a two-digit tag, a two-digit length and
the value (``5303360``: tag 53, the currency, 3 characters, ``360`` = IDR),
ending with the CRC (tag 63, four uppercase hexadecimal digits of the
CRC-16/CCITT-FALSE of everything before them, ``6304`` included).

A branch's printed QRIS sticker is *static* (tag 01 = ``11``, no amount):
`dynamic` turns it into a payload for one amount (tag 01 = ``12``, tag 54 =
the amount) so the payer's app fills the amount in.  Pure Python: no Tryton
import, tested on its own.
"""
import re
from decimal import Decimal, InvalidOperation

__all__ = ['QRISError', 'crc16', 'crc_hex', 'parse', 'build', 'check',
    'format_amount', 'dynamic']

#: Tags of the merchant account information templates (at least one)
MERCHANT_ACCOUNT_TAGS = {'%02d' % t for t in range(26, 52)}
#: Tags whose value is itself a list of TLV fields
TEMPLATE_TAGS = MERCHANT_ACCOUNT_TAGS | {'62', '64'}
#: Tags a payload must have besides the format indicator and the CRC
REQUIRED_TAGS = {
    '52': "merchant category code",
    '53': "transaction currency",
    '58': "country code",
    '59': "merchant name",
    '60': "merchant city",
    }
STATIC, DYNAMIC = '11', '12'
_AMOUNT = re.compile(r'^\d+(\.\d{1,2})?$')


class QRISError(ValueError):
    "The payload is not a valid EMVCo / QRIS payload (the reason in English)"


def crc16(data):
    """CRC-16/CCITT-FALSE of `data` (text is encoded in UTF-8): polynomial
    0x1021, initial value 0xFFFF, no reflection, no final XOR"""
    if isinstance(data, str):
        data = data.encode('utf-8')
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            if crc & 0x8000:
                crc = ((crc << 1) ^ 0x1021) & 0xFFFF
            else:
                crc = (crc << 1) & 0xFFFF
    return crc


def crc_hex(data):
    "The CRC of `data` as QRIS writes it: four uppercase hexadecimal digits"
    return '%04X' % crc16(data)


def parse(payload):
    """The TLV fields of `payload` as a list of (tag, value), in order; the
    values of templates are not split (see `check`)"""
    if not isinstance(payload, str) or not payload:
        raise QRISError("the payload is empty")
    fields = []
    position = 0
    while position < len(payload):
        head = payload[position:position + 4]
        if len(head) < 4 or not head.isdigit():
            raise QRISError(
                "no tag and length at character %d (%r)"
                % (position + 1, head))
        tag, length = head[:2], int(head[2:])
        value = payload[position + 4:position + 4 + length]
        if len(value) != length:
            raise QRISError(
                "tag %s announces %d characters but only %d are left"
                % (tag, length, len(value)))
        fields.append((tag, value))
        position += 4 + length
    return fields


def build(fields):
    "The payload of the (tag, value) fields (no CRC is added)"
    parts = []
    for tag, value in fields:
        if len(tag) != 2 or not tag.isdigit():
            raise QRISError("invalid tag %r" % (tag,))
        if not 0 < len(value) <= 99:
            raise QRISError(
                "tag %s: %d characters (1 to 99 allowed)" % (tag, len(value)))
        parts.append('%s%02d%s' % (tag, len(value), value))
    return ''.join(parts)


def _with_crc(body):
    body += '6304'
    return body + crc_hex(body)


def check(payload):
    """Check that `payload` is a complete EMVCo / QRIS payload with a valid
    CRC; return its fields (as `parse`) or raise QRISError"""
    if isinstance(payload, str) and not payload.isprintable():
        raise QRISError("the payload contains line breaks or control "
            "characters")
    fields = parse(payload)
    tags = [tag for tag, _ in fields]
    for tag in sorted(set(tags)):
        if tags.count(tag) > 1:
            raise QRISError("tag %s appears %d times" % (tag, tags.count(tag)))
    _check_frame(payload, fields)
    _check_values(fields)
    return fields


def _check_frame(payload, fields):
    "The format indicator first, the CRC last and right"
    if fields[0] != ('00', '01'):
        raise QRISError("it must start with the payload format indicator "
            "000201")
    tag, crc = fields[-1]
    if tag != '63':
        raise QRISError("it must end with the CRC (tag 63)")
    if not re.fullmatch(r'[0-9A-Fa-f]{4}', crc):
        raise QRISError("the CRC (tag 63) must be 4 hexadecimal digits")
    expected = crc_hex(payload[:-4])
    if crc.upper() != expected:
        raise QRISError("the CRC (tag 63) is %s, the payload gives %s: it "
            "was not copied in full" % (crc, expected))


def _check_values(fields):
    "The required fields and the format of those QRIS reads"
    values = dict(fields)
    if values.get('01', STATIC) not in {STATIC, DYNAMIC}:
        raise QRISError("the point of initiation method (tag 01) must be "
            "11 or 12")
    for tag, name in REQUIRED_TAGS.items():
        if tag not in values:
            raise QRISError("the %s (tag %s) is missing" % (name, tag))
    if not MERCHANT_ACCOUNT_TAGS & values.keys():
        raise QRISError("no merchant account information (tags 26-51)")
    if not re.fullmatch(r'\d{4}', values['52']):
        raise QRISError("the merchant category code (tag 52) must be "
            "4 digits")
    if not re.fullmatch(r'\d{3}', values['53']):
        raise QRISError("the currency (tag 53) must be a 3-digit ISO 4217 "
            "code")
    for tag, value in fields:
        if tag in TEMPLATE_TAGS:
            try:
                parse(value)
            except QRISError as exception:
                raise QRISError(
                    "template %s: %s" % (tag, exception)) from exception
    if '54' in values:
        _check_amount(values['54'])


def _check_amount(text):
    if not _AMOUNT.match(text) or len(text) > 13 or Decimal(text) <= 0:
        raise QRISError("the transaction amount (tag 54) %r is not a "
            "positive amount of at most 13 characters" % (text,))


def format_amount(amount):
    """The amount as tag 54 writes it: no decimals when it is whole
    (``150000``), else two (``150000.50``)"""
    try:
        amount = Decimal(amount)
    except (InvalidOperation, TypeError, ValueError) as exception:
        raise QRISError("invalid amount %r" % (amount,)) from exception
    if not amount.is_finite() or amount <= 0:
        raise QRISError("the amount must be positive, not %s" % amount)
    if amount == amount.to_integral_value():
        text = '%d' % amount
    else:
        text = str(amount.quantize(Decimal('0.01')))
    _check_amount(text)
    return text


def dynamic(payload, amount):
    """The dynamic payload of the static (or dynamic) `payload` for `amount`:
    tag 01 = 12, tag 54 = the amount right after the currency (tag 53), any
    previous amount removed and the CRC recomputed"""
    fields = check(payload)
    result = []
    for tag, value in fields:
        if tag in {'01', '54', '63'}:
            continue
        result.append((tag, value))
        if tag == '00':
            result.append(('01', DYNAMIC))
        elif tag == '53':
            result.append(('54', format_amount(amount)))
    return _with_crc(build(result))


def currency(payload):
    "The ISO 4217 numeric currency code of `payload` (tag 53)"
    return dict(parse(payload)).get('53')
