# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Inbound WhatsApp messages (isp_base's provider webhooks) as tickets:
a known subscriber's message adds to their open ticket or opens one; an
unknown number opens a ticket flagged for staff.  Inbound e-mails (Tryton's
inbound_email: its webhook route and rules) likewise, by the rule action
*Open or Add to a Helpdesk Ticket*."""
import re

from trytond.model import fields
from trytond.pool import Pool, PoolMeta
from trytond.pyson import Eval
from trytond.tools import escape_wildcard

from trytond.modules.isp_base.notification import (
    OPT_IN_WORDS,
    OPT_OUT_WORDS,
)

from .ticket import OPEN_STATES

#: the length of a subject made from the message's first line
SUBJECT_LENGTH = 80


class MessageInbound(metaclass=PoolMeta):
    __name__ = 'isp.message.inbound'

    ticket = fields.Many2One(
        'isp.helpdesk.ticket', "Ticket", readonly=True, ondelete='SET NULL',
        help="The ticket the message opened or was added to.")

    @classmethod
    def receive(cls, provider, inbound, raw=None):
        messages = super().receive(provider, inbound, raw=raw)
        cls.to_tickets(messages)
        return messages

    @classmethod
    def to_tickets(cls, messages):
        """Add each message of a branch to its sender's open ticket, or open
        one in the branch's inbound category; mark them done"""
        pool = Pool()
        Ticket = pool.get('isp.helpdesk.ticket')
        TicketMessage = pool.get('isp.helpdesk.ticket.message')
        Category = pool.get('isp.helpdesk.category')
        categories = {}
        done = []
        for message in messages:
            text = (message.text or '').strip()
            if (not message.company or not text
                    or text.upper() in OPT_OUT_WORDS | OPT_IN_WORDS
                    or message.channel != 'whatsapp'):
                continue
            company = message.company
            subscriber = (message.party if message.party
                and message.party.is_subscriber
                and message.party.isp_company == company else None)
            ticket = None
            if subscriber:
                tickets = Ticket.search([
                        ('company', '=', company.id),
                        ('subscriber', '=', subscriber.id),
                        ('state', 'in', list(OPEN_STATES)),
                        ], order=[('opened_at', 'DESC'), ('id', 'DESC')],
                    limit=1)
                ticket = tickets[0] if tickets else None
            if ticket:
                TicketMessage.create([{
                            'ticket': ticket.id, 'kind': 'customer',
                            'body': text, 'author': None}])
            else:
                if company.id not in categories:
                    found = Category.search([
                            ('company', '=', company.id)],
                        order=[('inbound', 'DESC'), ('id', 'ASC')],
                        limit=1)
                    categories[company.id] = found[0] if found else None
                category = categories[company.id]
                if not category:
                    continue
                ticket, = Ticket.create([{
                            'company': company.id,
                            'subscriber': subscriber.id if subscriber
                            else None,
                            'category': category.id,
                            'channel': 'whatsapp',
                            'subject': text.splitlines()[0][
                                :SUBJECT_LENGTH],
                            'description': text,
                            'contact': message.sender,
                            'to_review': subscriber is None,
                            }])
            done.extend(([message], {'ticket': ticket.id, 'state': 'done'}))
        if done:
            cls.write(*done)


#: the action of an inbound e-mail rule (Tryton's inbound_email) that opens
#: or adds to a ticket
EMAIL_ACTION = 'isp.helpdesk.ticket|from_inbound_email'
#: a ticket number in a subject: "Re: Ticket T-000012 updated", "[T-000012]"
TICKET_NUMBER = re.compile(r'\b([A-Z]{1,5}-\d{3,10})\b')
#: the largest attachment of an e-mail kept on its ticket (bytes)
MAX_EMAIL_ATTACHMENT = 10 * 1024 * 1024


class InboundEmailRule(metaclass=PoolMeta):
    __name__ = 'inbound.email.rule'

    helpdesk_category = fields.Many2One(
        'isp.helpdesk.category', "Helpdesk Category", ondelete='RESTRICT',
        states={
            'invisible': Eval('action') != EMAIL_ACTION,
            'required': Eval('action') == EMAIL_ACTION,
            },
        help="The category, and so the branch, of the tickets the e-mails "
        "open.")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.action.selection.append(
            (EMAIL_ACTION, "Open or Add to a Helpdesk Ticket"))


def email_ticket(email_, rule):
    """The ticket of an inbound e-mail (Tryton's inbound.email) matched by
    `rule`: the sender's (a subscriber of the rule's category's branch by
    their e-mail, else the address itself) ticket whose number is in the
    subject gets the text as a message from the customer when it takes
    one; otherwise a ticket is opened (channel e-mail) in the rule's
    category, flagged To Review for an unknown sender.  The e-mail's
    attachments go on the ticket."""
    pool = Pool()
    Ticket = pool.get('isp.helpdesk.ticket')
    TicketMessage = pool.get('isp.helpdesk.ticket.message')
    Attachment = pool.get('ir.attachment')
    category = rule.helpdesk_category
    if not category:
        return None
    company = category.company
    values = email_.as_dict()
    sender = (values.get('from') or '').strip().lower()
    subject = ' '.join(str(values.get('subject') or '').split())
    text = str(values.get('text') or '').strip() or subject
    if not sender or not text:
        return None
    subscriber = _email_subscriber(company, sender)
    ticket = _subject_ticket(company, subscriber, sender, subject)
    if ticket is not None:
        TicketMessage.create([{
                    'ticket': ticket.id, 'kind': 'customer', 'body': text,
                    'author': None}])
    else:
        ticket, = Ticket.create([{
                    'company': company.id,
                    'subscriber': subscriber.id if subscriber else None,
                    'category': category.id,
                    'channel': 'email',
                    'subject': (subject or text.splitlines()[0])[
                        :SUBJECT_LENGTH],
                    'description': text,
                    'contact': sender,
                    'to_review': subscriber is None,
                    }])
    Attachment.create([{
                'name': _file_name(a.get('filename')),
                'resource': str(ticket),
                'data': a['data'],
                'type': 'data',
                } for a in values.get('attachments', [])
            if a.get('data') and len(a['data']) <= MAX_EMAIL_ATTACHMENT])
    return ticket


def _email_subscriber(company, sender):
    "The subscriber of `company` with the e-mail `sender`, else None"
    pool = Pool()
    ContactMechanism = pool.get('party.contact_mechanism')
    mechanisms = ContactMechanism.search([
            ('type', '=', 'email'),
            ('value', 'ilike', escape_wildcard(sender)),
            ('party.is_subscriber', '=', True),
            ('party.isp_company', '=', company.id),
            ], order=[('party', 'ASC')], limit=1)
    return mechanisms[0].party if mechanisms else None


def _subject_ticket(company, subscriber, sender, subject):
    """The sender's ticket of `company` whose number is in `subject` and
    that takes a message from them, else None"""
    pool = Pool()
    Ticket = pool.get('isp.helpdesk.ticket')
    numbers = TICKET_NUMBER.findall(subject.upper())
    if not numbers:
        return None
    owner = (('subscriber', '=', subscriber.id) if subscriber
        else [('subscriber', '=', None), ('contact', '=', sender)])
    tickets = Ticket.search([
            ('company', '=', company.id),
            ('number', 'in', numbers),
            owner,
            ], order=[('id', 'DESC')], limit=1)
    if tickets and tickets[0].takes_reply():
        return tickets[0]
    return None


def _file_name(name):
    "A safe attachment name of an e-mail's file name"
    name = (name or '').replace('\\', '/').rsplit('/', 1)[-1]
    name = re.sub(r'[^\w.-]+', '_', name).strip('._')[:100]
    return name or 'attachment'
