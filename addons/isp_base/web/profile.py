# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""The profile page of the customer portal: phone, WhatsApp, e-mail (the
login), language and notification opt-outs, validated as in the back office
(the party's and web user's own checks, the same helpers), every error shown
at once and nothing saved on any error."""
from trytond.exceptions import UserError
from trytond.transaction import Transaction

from ..notification import CHANNELS
from ..validation import email_problem, normalize_phone
from .i18n import LANGUAGE_NAMES, LANGUAGES, N_
from .page import portal_page

PROFILE_PATH = '/isp_base/portal/profile'
PHONE_FIELDS = ('phone', 'whatsapp')
CHANNEL_LABELS = [
    ('whatsapp', N_("WhatsApp")),
    ('sms', N_("SMS")),
    ('email', N_("E-mail")),
    ]


def _example(country):
    "An example mobile number of `country` in E.164 (for the messages)"
    try:
        import phonenumbers
        number = phonenumbers.example_number_for_type(
            country, phonenumbers.PhoneNumberType.MOBILE)
        return phonenumbers.format_number(
            number, phonenumbers.PhoneNumberFormat.E164)
    except Exception:
        return '+62812...'


def _current(page):
    "The form's values of the subscriber's data"
    party = page.party
    return {
        'phone': party.subscriber_phone or '',
        'whatsapp': party.whatsapp or '',
        'email': page.user.email or party.email or '',
        'lang': page.language,
        'opt_outs': set(party.notification_opt_outs or ()),
        }


def _posted(page):
    form = page.form
    return {
        'phone': (form.get('phone') or '').strip(),
        'whatsapp': (form.get('whatsapp') or '').strip(),
        'email': (form.get('email') or '').strip(),
        'lang': form.get('lang') or '',
        'opt_outs': {c for c, _ in CHANNELS
            if not form.get('notify_%s' % c)},
        }


def problems(page, values):
    """{field: translated message} of what the back office would refuse,
    with the same helpers (the models check again when saving)"""
    WebUser = page.pool.get('web.user')
    country = page.company.isp_phone_country()
    found = {}
    for name in PHONE_FIELDS:
        if values[name] and not normalize_phone(values[name], country):
            found[name] = page.gettext(N_("This phone number is not valid. "
                    "Write it with the country code, like %(example)s."),
                example=_example(country or 'ID'))
    email = values['email']
    if email:
        if email_problem(email):
            found['email'] = page.gettext(
                N_("This e-mail address is not valid."))
        elif WebUser.isp_email_taken(email, page.user):
            found['email'] = page.gettext(N_("This e-mail address is "
                    "already used by another account."))
    if values['lang'] not in LANGUAGES:
        found['lang'] = page.gettext(N_("This language is not available."))
    return found


def _form(page, values, status=200, errors=None, error=None, notice=None):
    return page.render('isp_base/profile.html', status=status,
        values=values, errors=errors or {}, error=error, notice=notice,
        channels=[(c, page.gettext(label)) for c, label in CHANNEL_LABELS],
        language_names=LANGUAGE_NAMES, portal_languages=LANGUAGES)


@portal_page(PROFILE_PATH, methods=('GET', 'POST'), nav='profile')
def profile(page):
    "The subscriber's contact data, language and notifications"
    if page.request.method != 'POST':
        notice = page.gettext(N_("Your profile is saved.")) \
            if page.request.args.get('done') else None
        return _form(page, _current(page), notice=notice)
    WebUser = page.pool.get('web.user')
    values = _posted(page)
    errors = problems(page, values)
    if errors:
        return _form(page, values, status=400, errors=errors,
            error=page.gettext(N_("Nothing was saved: correct the fields "
                    "shown.")))
    try:
        WebUser.isp_update_profile(page.user, values)
    except UserError as exception:
        # nothing half-written: every change of the form goes back
        Transaction().rollback()
        return _form(page, values, status=400, error=page.gettext(
                N_("Nothing was saved: %(reason)s"),
                reason=exception.message))
    return page.redirect(PROFILE_PATH, done='1')
