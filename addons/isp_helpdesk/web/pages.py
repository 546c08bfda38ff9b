# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""The helpdesk pages of the customer portal (docs/portal.md,
docs/helpdesk.md): the subscriber's tickets, opening one (a category of the
branch, a photo or PDF), a ticket's public conversation, replying and
rating it once resolved.

Pages run as root: every query filters on the tenant and the subscriber
(`page.search_own`, `page.get_own`); records reached through those are the
subscriber's.  Every check is made before anything is written: a refusal
answers 400 (another subscriber's or branch's id: 404) with nothing saved."""
import re

from trytond.modules.isp_base.web import (
    N_,
    form_id,
    local_time,
    portal_page,
)

from ..ticket import OPEN_STATES, PORTAL_TICKET, RATINGS

TICKETS = '/isp_helpdesk/portal/tickets'
NEW = '/isp_helpdesk/portal/tickets/new'
TICKET = PORTAL_TICKET
#: The largest attachment (bytes) and the kinds accepted, found by their
#: first bytes (never by the name or the browser's word)
MAX_ATTACHMENT = 5 * 1024 * 1024
SIGNATURES = [
    (b'\xff\xd8\xff', 'jpg'),
    (b'\x89PNG\r\n\x1a\n', 'png'),
    (b'%PDF-', 'pdf'),
    ]
MAX_SUBJECT = 120
LIST_LIMIT = 60
STATE_LABELS = {
    'new': (N_("Received"), 'warn'),
    'assigned': (N_("Received"), 'warn'),
    'in_progress': (N_("In progress"), 'warn'),
    'waiting': (N_("Waiting for your answer"), 'bad'),
    'resolved': (N_("Resolved"), 'ok'),
    'closed': (N_("Closed"), ''),
    }
DONE = {
    'opened': N_("Your ticket is open: we will answer you here and by "
        "message."),
    'replied': N_("Your message is sent."),
    'rated': N_("Thank you for your rating."),
    }
#: The conversation a subscriber sees (internal notes are staff's)
SHOWN_MESSAGES = ('public', 'customer')


def attachment_kind(data):
    "The extension of a photo (JPEG, PNG) or PDF by its first bytes, or None"
    for signature, kind in SIGNATURES:
        if data.startswith(signature):
            return kind
    return None


def _attachment(page, errors):
    """The (name, data) of the form's attachment, None without one; a
    problem goes in `errors`"""
    if 'attachment' not in page.files:
        return None
    filename, data = page.files['attachment']
    kind = attachment_kind(data)
    if kind is None:
        errors['attachment'] = page.gettext(
            N_("Attach a photo (JPEG or PNG) or a PDF."))
        return None
    stem = re.sub(r'[^\w.-]+', '_', filename.rsplit('/', 1)[-1]
        .rsplit('\\', 1)[-1].rsplit('.', 1)[0])[:60].strip('._') or 'file'
    return '%s.%s' % (stem, kind), data


def _attach(page, ticket, attachment):
    if attachment is None:
        return
    Attachment = page.pool.get('ir.attachment')
    name, data = attachment
    Attachment.create([{
                'name': name, 'resource': str(ticket), 'data': data,
                'type': 'data'}])


def _categories(page):
    Category = page.pool.get('isp.helpdesk.category')
    return page.search_tenant(Category, [],
        order=[('installation', 'ASC'), ('name', 'ASC'), ('id', 'ASC')])


def _services(page):
    Service = page.pool.get('isp.service')
    return page.search_own(Service, [], party_field='subscriber',
        order=[('customer_id', 'ASC'), ('id', 'ASC')])


def _own_ticket(page, ticket_id):
    Ticket = page.pool.get('isp.helpdesk.ticket')
    return page.get_own(Ticket, ticket_id, party_field='subscriber')


def _notice(page):
    done = page.request.args.get('done')
    return page.gettext(DONE[done]) if done in DONE else None


@portal_page(TICKETS, nav='helpdesk')
def tickets(page):
    "The subscriber's tickets in the branch, the latest first"
    Ticket = page.pool.get('isp.helpdesk.ticket')
    found = page.search_own(Ticket, [], party_field='subscriber',
        order=[('opened_at', 'DESC'), ('id', 'DESC')], limit=LIST_LIMIT)
    return page.render('isp_helpdesk/tickets.html', tickets=found,
        labels=STATE_LABELS, local=lambda v: local_time(page.company, v),
        notice=_notice(page))


def _new_form(page, status=200, errors=None, values=None):
    return page.render('isp_helpdesk/new.html', status=status,
        categories=_categories(page), services=_services(page),
        errors=errors or {}, values=values or {},
        max_subject=MAX_SUBJECT,
        max_size=page.fmt.number(MAX_ATTACHMENT // (1024 * 1024)),
        error=page.gettext(N_("Nothing was saved: see below."))
        if errors else None)


@portal_page(NEW, methods=('GET', 'POST'), upload=MAX_ATTACHMENT)
def new(page):
    """Open a ticket (channel portal) in a category of the branch, for one
    of the subscriber's services, with an optional photo or PDF"""
    if page.request.method != 'POST':
        return _new_form(page)
    pool = page.pool
    Category = pool.get('isp.helpdesk.category')
    Service = pool.get('isp.service')
    Ticket = pool.get('isp.helpdesk.ticket')
    form = page.form
    values = {
        'category': form_id(form.get('category')),
        'service': form_id(form.get('service')),
        'subject': ' '.join((form.get('subject') or '').split()),
        'description': (form.get('description') or '').strip(),
        }
    errors = {}
    if form.get('category') and values['category'] is None:
        raise page.not_found()
    category = page.search_tenant(Category,
        [('id', '=', values['category'])], limit=1) \
        if values['category'] else []
    if values['category'] and not category:
        # another branch's category
        raise page.not_found()
    if not category:
        errors['category'] = page.gettext(N_("Choose a category."))
    service = None
    if form.get('service'):
        service = page.get_own(Service, form.get('service'),
            party_field='subscriber')
    if not values['subject']:
        errors['subject'] = page.gettext(N_("Say in a few words what is "
                "wrong."))
    elif len(values['subject']) > MAX_SUBJECT:
        errors['subject'] = page.gettext(N_("The subject is too long."))
    if not values['description']:
        errors['description'] = page.gettext(N_("Describe the problem."))
    attachment = _attachment(page, errors)
    if errors:
        return _new_form(page, 400, errors, values)
    ticket, = Ticket.create([{
                'company': page.company.id,
                'subscriber': page.party.id,
                'service': service.id if service else None,
                'category': category[0].id,
                'channel': 'portal',
                'subject': values['subject'],
                'description': values['description'],
                }])
    _attach(page, ticket, attachment)
    return page.redirect(TICKET % ticket.id, done='opened')


def _ticket_page(page, ticket, status=200, errors=None, values=None):
    Message = page.pool.get('isp.helpdesk.ticket.message')
    messages = Message.search([
            ('ticket', '=', ticket.id),
            ('kind', 'in', SHOWN_MESSAGES),
            ], order=[('date', 'ASC'), ('id', 'ASC')])
    open_ = ticket.state in OPEN_STATES
    replyable = ticket.takes_reply()
    return page.render('isp_helpdesk/ticket.html', status=status,
        ticket=ticket, messages=messages, labels=STATE_LABELS,
        local=lambda v: local_time(page.company, v),
        replyable=replyable, reopens=replyable and not open_,
        ratable=ticket.state in ('resolved', 'closed') and not ticket.rating,
        ratings=RATINGS, errors=errors or {}, values=values or {},
        max_size=page.fmt.number(MAX_ATTACHMENT // (1024 * 1024)),
        notice=_notice(page),
        error=page.gettext(N_("Nothing was saved: see below."))
        if errors else None)


@portal_page(TICKET.replace('%d', '<int:ticket_id>'))
def ticket(page, ticket_id):
    "A ticket of the subscriber: its state and public conversation"
    return _ticket_page(page, _own_ticket(page, ticket_id))


@portal_page(TICKET.replace('%d', '<int:ticket_id>') + '/reply',
    methods=('POST',), upload=MAX_ATTACHMENT)
def reply(page, ticket_id):
    """Add a message from the customer (resumes a ticket waiting on them,
    reopens a resolved one as its category says), with an optional
    attachment"""
    Message = page.pool.get('isp.helpdesk.ticket.message')
    ticket = _own_ticket(page, ticket_id)
    body = (page.form.get('body') or '').strip()
    errors = {}
    if not body:
        errors['body'] = page.gettext(N_("Write your message."))
    attachment = _attachment(page, errors)
    if errors:
        return _ticket_page(page, ticket, 400, errors, {'body': body})
    if not ticket.takes_reply():
        return _ticket_page(page, ticket, 400, {
                'body': page.gettext(N_("This ticket is closed: open a new "
                        "ticket."))}, {'body': body})
    Message.create([{
                'ticket': ticket.id, 'kind': 'customer', 'body': body}])
    _attach(page, ticket, attachment)
    return page.redirect(TICKET % ticket.id, done='replied')


@portal_page(TICKET.replace('%d', '<int:ticket_id>') + '/rate',
    methods=('POST',))
def rate(page, ticket_id):
    "Rate a resolved or closed ticket 1-5 with a comment, once"
    Ticket = page.pool.get('isp.helpdesk.ticket')
    ticket = _own_ticket(page, ticket_id)
    rating = {str(r): r for r in RATINGS}.get(page.form.get('rating'))
    comment = (page.form.get('comment') or '').strip()
    if ticket.state not in ('resolved', 'closed'):
        reason = N_("This ticket can be rated once it is resolved.")
    elif ticket.rating:
        reason = N_("You already rated this ticket.")
    elif rating not in RATINGS:
        reason = N_("Choose from 1 to 5 stars.")
    else:
        reason = None
    if reason:
        return _ticket_page(page, ticket, 400,
            {'rating': page.gettext(reason)}, {'comment': comment})
    Ticket.rate(ticket, rating, comment)
    return page.redirect(TICKET % ticket.id, done='rated')
