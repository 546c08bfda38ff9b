# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Inbound WhatsApp messages (isp_base's provider webhooks) as tickets:
a known subscriber's message adds to their open ticket or opens one; an
unknown number opens a ticket flagged for staff."""
from trytond.model import fields
from trytond.pool import Pool, PoolMeta

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
