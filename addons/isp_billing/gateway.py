# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Online payments: gateway accounts, payment transactions and their
notifications.

- `isp.payment.gateway`: an account at Midtrans, Xendit, Duitku or M-Pesa;
  empty company = the head office's central account, which every branch uses
  unless it has an active account of its own for that provider.
- `isp.payment.transaction`: one payment opened at a gateway for a document
  (an invoice now, a voucher order ``EV...`` later), with its unique
  reference, amount, currency and state; every notification received for it
  is kept raw in `isp.payment.notification`.

Webhooks (routes.py) and the reconciliation cron both end in
`Transaction.process_notification`, which applies a verified notification
under the transaction's row lock, at most once: a status query's answer as
it is, a webhook's only as the provider's status answer confirms it.  See
docs/payments.md.
"""
import contextlib
import datetime as dt
import functools
import logging
import random
import re
import secrets
import time
import urllib.parse
from decimal import Decimal

from sql import Null
from trytond import backend, config
from trytond.i18n import gettext
from trytond.model import (
    DeactivableMixin,
    Index,
    ModelSQL,
    ModelView,
    Unique,
    fields,
)
from trytond.modules.account.exceptions import PeriodNotFoundError
from trytond.pool import Pool, PoolMeta
from trytond.pyson import Bool, Eval
from trytond.transaction import (
    Transaction,
    TransactionError,
    without_check_access,
)
from trytond.wizard import (
    Button,
    StateAction,
    StateTransition,
    StateView,
    Wizard,
)

from trytond.modules.isp_base.common import SecretDefaultsMixin
from trytond.modules.isp_base.tenancy import BranchWizardMixin

from . import gateways
from .exceptions import PaymentGatewayError, PaymentOnlineError

logger = logging.getLogger(__name__)

PROVIDERS = [
    ('midtrans', "Midtrans (Snap)"),
    ('xendit', "Xendit (Invoices)"),
    ('duitku', "Duitku"),
    ('mpesa', "M-Pesa (Daraja STK push)"),
    ]
#: The account fields each provider uses, as the adapter names them.
CREDENTIALS = {
    'midtrans': ['server_key'],
    'xendit': ['secret_key', 'callback_token'],
    'duitku': ['merchant_code', 'api_key', 'payment_method'],
    'mpesa': ['consumer_key', 'consumer_secret', 'shortcode', 'passkey',
        'callback_secret', 'transaction_type', 'party_b'],
    }
#: Fields readable and writable only by the administrators.
SECRET_FIELDS = ['server_key', 'secret_key', 'callback_token', 'api_key',
    'consumer_key', 'consumer_secret', 'passkey', 'callback_secret']
#: Headers never stored with a notification (they authenticate it).
SECRET_HEADERS = {'x-callback-token', 'authorization', 'proxy-authorization',
    'cookie'}
#: Query parameters never stored with a notification URL.
SECRET_QUERY = {'token'}
#: Body fields never stored with a notification (signatures: with one, a
#: reader could replay or alter what it covers)
SECRET_BODY_FIELDS = ('signature_key', 'signature')
_SECRET_JSON = re.compile(r'("(?:%s)"\s*:\s*)"(?:[^"\\]|\\.)*"' % '|'.join(
        SECRET_BODY_FIELDS))
_SECRET_FORM = re.compile(r'(^|&)((?:%s)=)[^&]*' % '|'.join(
        SECRET_BODY_FIELDS))
MAX_STORED = 64 * 1024
TRANSACTION_STATES = [
    ('pending', "Pending"),
    ('paid', "Paid"),
    ('failed', "Failed"),
    ('expired', "Expired"),
    ]
REVIEWS = [
    (None, ""),
    ('wrong_amount', "Wrong amount"),
    ('wrong_currency', "Wrong currency"),
    ('document_settled', "Paid but nothing left to pay"),
    ('reversed', "Reversed after payment"),
    ]
VERDICTS = [
    ('queued', "Queued"),
    ('applied', "Applied"),
    ('duplicate', "Already applied"),
    ('ignored', "Ignored"),
    ('unconfirmed', "Not confirmed by the provider"),
    ('wrong_amount', "Refused: wrong amount"),
    ('wrong_currency', "Refused: wrong currency"),
    ]
#: Verdicts that refuse the notification (answered 4xx, flagged for staff).
REFUSED = {'wrong_amount', 'wrong_currency'}
#: The most queued notifications one `apply_queued` batch takes.
BATCH = 500
#: The key (with the branch's id) of the advisory lock held by the run of
#: `apply_queued` applying a branch's notifications.
APPLY_LOCK = 0x15B1
#: Restarts of a batch for its locks before giving up (one for the
#: payments, invoices and move sequence, one per lock asked on the way).
MAX_RESTARTS = 10
#: Seconds a run of `apply_queued` goes on before handing over to a task
#: queued anew (the follow-ups it queued get a worker meanwhile).
APPLY_SLICE = 5
#: What `ask_status` returns for a provider that cannot be asked now.
UNREACHABLE = object()
#: Seconds a status answer asked by `apply_queued` is reused by its run
#: restarted with the locks (the restarted run holds them: no query there).
ANSWER_REUSE = 10
_answers = {}


def _serialised():
    """Whether runs of `apply_queued` hold their branch (queue workers on
    PostgreSQL); else each runs in its request (no worker) as one batch"""
    return (config.getboolean('queue', 'worker', default=False)
        and backend.name == 'postgresql')


def _branch_lock(connection, company):
    "Take the branch's `apply_queued` lock on `connection` if free"
    cursor = connection.cursor()
    cursor.execute('SELECT pg_try_advisory_lock(%s, %s)',
        (APPLY_LOCK, company))
    return cursor.fetchone()[0]


def _branch_unlock(connection, company):
    cursor = connection.cursor()
    cursor.execute('SELECT pg_advisory_unlock(%s, %s)',
        (APPLY_LOCK, company))


def _branch_applying(company):
    """Whether a run of `apply_queued` holds the branch `company` now
    (never without workers on PostgreSQL)"""
    if not _serialised():
        return False
    cursor = Transaction().connection.cursor()
    cursor.execute('SELECT 1 FROM pg_locks '
        "WHERE locktype = 'advisory' AND granted "
        'AND database = (SELECT oid FROM pg_database '
        'WHERE datname = current_database()) '
        'AND classid = %s AND objid = %s AND objsubid = 2',
        (APPLY_LOCK, company))
    return cursor.fetchone() is not None


def _now():
    "The current time (UTC, naive); tests move it with `_isp_payment_now`"
    return (Transaction().context.get('_isp_payment_now')
        or dt.datetime.now())


def redact_headers(headers):
    "The headers as text, without those that authenticate the request"
    items = headers.items() if hasattr(headers, 'items') else headers or []
    return '\n'.join('%s: %s' % (k, '***' if k.lower() in SECRET_HEADERS
            else v) for k, v in items)


def redact_url(url):
    "The URL without its secret query parameters (M-Pesa's callback token)"
    if not url:
        return url
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    query = [(k, '***' if k in SECRET_QUERY else v) for k, v in query]
    return urllib.parse.urlunsplit(
        parts._replace(query=urllib.parse.urlencode(query, safe='*')))


def redact_body(body):
    "The body as text without its signatures (SECRET_BODY_FIELDS)"
    text = _text(body)
    if not text:
        return text
    text = _SECRET_JSON.sub(r'\g<1>"***"', text)
    return _SECRET_FORM.sub(r'\g<1>\g<2>***', text)


def _text(value, limit=MAX_STORED):
    """`value` as text the database stores: invalid UTF-8 and lone
    surrogates replaced, NUL (refused by PostgreSQL) as U+FFFD, at most
    `limit` characters"""
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode('utf-8', 'replace')
    elif not isinstance(value, str):
        value = str(value)
    value = value[:limit].encode('utf-8', 'replace').decode('utf-8')
    return value.replace('\x00', '\ufffd')


def new_reference(prefix='IV'):
    """A reference no one can guess, 12 characters (M-Pesa's account
    reference limit): the prefix tells the document ('IV' invoice, 'EV'
    voucher order), the rest is random."""
    alphabet = '23456789ABCDEFGHJKLMNPQRSTUVWXYZ'
    return prefix + ''.join(
        secrets.choice(alphabet) for _ in range(12 - len(prefix)))


def _credential(string, help, provider):
    "A setting of one provider's accounts"
    return fields.Char(string, strip=True, help=help, states={
            'invisible': Eval('provider') != provider,
            })


def new_callback_secret():
    "A random M-Pesa callback secret (192 bits)"
    return secrets.token_urlsafe(24)


class Gateway(SecretDefaultsMixin, DeactivableMixin, ModelSQL, ModelView):
    "Payment Gateway Account"
    __name__ = 'isp.payment.gateway'
    #: The fields holding credentials, masked wherever a provider's answer
    #: is kept or logged (listed, not guessed from their names).
    CREDENTIAL_FIELDS = tuple(SECRET_FIELDS)

    name = fields.Char("Name", required=True)
    provider = fields.Selection(PROVIDERS, "Provider", required=True)
    company = fields.Many2One(
        'company.company', "Company", ondelete='RESTRICT',
        help="The branch that owns the account.\n"
        "Leave empty for the head office's central account: branches "
        "without an active account of their own for the provider use it.")
    sequence = fields.Integer(
        "Sequence",
        help="Between accounts of a branch, the lowest is offered first.")
    sandbox = fields.Boolean(
        "Sandbox", help="Use the provider's test environment.")
    base_url = fields.Char(
        "Base URL", strip=True,
        help="The provider's API root; empty for its sandbox or "
        "production host.")
    api_base_url = fields.Char(
        "Status API URL", strip=True,
        states={'invisible': Eval('provider') != 'midtrans'},
        help="Midtrans: the Core API root of status queries; empty for "
        "the Base URL or Midtrans' host.")
    public_url = fields.Char(
        "Public URL", strip=True,
        help="The root of this server as the provider reaches it "
        "(e.g. https://billing.example.com); empty for the web hostname.")
    return_url = fields.Char(
        "Return URL", strip=True,
        help="Where the buyer goes back after paying (the portal).")
    webhook_url = fields.Function(fields.Char(
            "Webhook URL",
            help="The URL to give the provider for its notifications "
            "(Xendit: the account's invoice callback URL)."),
        'get_webhook_url')
    timeout = fields.Integer(
        "Time-out", required=True, domain=[('timeout', '>', 0)],
        help="In seconds, for each call to the provider.")
    expiry_minutes = fields.Integer(
        "Expiry", domain=['OR',
            ('expiry_minutes', '=', None), ('expiry_minutes', '>', 0)],
        help="In minutes: how long a payment stays open at the provider; "
        "empty for the provider's default.")
    check_after = fields.Integer(
        "Check After", required=True, domain=[('check_after', '>', 0)],
        help="In minutes: the reconciliation asks the provider about "
        "payments still pending after this long (and then this often).")
    abandon_after = fields.Integer(
        "Abandon After", required=True, domain=[('abandon_after', '>', 0)],
        help="In hours: a payment the provider still reports unpaid after "
        "this long is marked expired.")
    # credentials
    server_key = _credential(
        "Server Key", "Midtrans: the server key.", 'midtrans')
    secret_key = _credential(
        "Secret Key", "Xendit: the secret API key.", 'xendit')
    callback_token = _credential(
        "Callback Token", "Xendit: the callback verification token.",
        'xendit')
    merchant_code = _credential(
        "Merchant Code", "Duitku: the merchant code.", 'duitku')
    api_key = _credential("API Key", "Duitku: the API key.", 'duitku')
    payment_method = _credential(
        "Payment Method", "Duitku: the payment channel code (default SP, "
        "QRIS).", 'duitku')
    consumer_key = _credential(
        "Consumer Key", "M-Pesa: the Daraja app's consumer key.", 'mpesa')
    consumer_secret = _credential(
        "Consumer Secret", "M-Pesa: the Daraja app's consumer secret.",
        'mpesa')
    shortcode = _credential(
        "Short Code", "M-Pesa: the business short code (paybill).", 'mpesa')
    passkey = _credential(
        "Passkey", "M-Pesa: the M-Pesa Express passkey.", 'mpesa')
    callback_secret = _credential(
        "Callback Secret", "M-Pesa: the key of the secret token put in "
        "each callback URL.", 'mpesa')
    transaction_type = _credential(
        "Transaction Type", "M-Pesa: CustomerPayBillOnline (default) or "
        "CustomerBuyGoodsOnline.", 'mpesa')
    party_b = _credential(
        "Receiving Number", "M-Pesa: the receiving till or paybill; empty "
        "for the short code.", 'mpesa')

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._order.insert(0, ('sequence', 'ASC NULLS FIRST'))
        t = cls.__table__()
        cls._sql_indexes.add(Index(t,
                (t.company, Index.Range()), (t.provider, Index.Equality())))

    @staticmethod
    def default_company():
        return Transaction().context.get('company')

    @classmethod
    def default_sandbox(cls):
        return True

    @classmethod
    def default_timeout(cls):
        return 10

    @classmethod
    def default_check_after(cls):
        return 15

    @classmethod
    def default_abandon_after(cls):
        return 48

    @classmethod
    def default_callback_secret(cls):
        return new_callback_secret()

    @classmethod
    def _secret_defaults(cls):
        return {**super()._secret_defaults(),
            'callback_secret': new_callback_secret}

    def get_webhook_url(self, name):
        return self.webhook()

    def webhook(self):
        "The URL of this provider's webhook route in this database"
        return '%s/%s/isp_billing/webhook/%s' % (self.root_url(),
            Transaction().database.name, self.provider)

    def root_url(self):
        "The root of this server as the provider and the buyer reach it"
        from trytond.url import http_host
        return (self.public_url or http_host()).rstrip('/')

    def buyer_return_url(self):
        "Where the buyer goes back after paying"
        return self.return_url or self.root_url() + '/'

    def credentials(self):
        "The adapter's credentials (never log them)"
        return {name: getattr(self, name)
            for name in CREDENTIALS.get(self.provider, [])
            if getattr(self, name)}

    def get_adapter(self):
        "The adapter of the account (credentials read without access checks)"
        with without_check_access():
            gateway = self.__class__(self.id) if self.id else self
            kwargs = {}
            if gateway.provider == 'midtrans' and gateway.api_base_url:
                kwargs['api_base_url'] = gateway.api_base_url
            try:
                return gateways.get_adapter(gateway.provider,
                    gateway.base_url or None, gateway.credentials(),
                    sandbox=gateway.sandbox, timeout=gateway.timeout,
                    secrets=[getattr(gateway, n)
                        for n in gateway.CREDENTIAL_FIELDS], **kwargs)
            except gateways.GatewayError as exception:
                raise PaymentGatewayError(gettext(
                        'isp_billing.msg_payment_gateway_error',
                        gateway=gateway.rec_name,
                        error=exception.message)) from exception

    @classmethod
    def for_company(cls, company, provider=None):
        """The active accounts a branch pays with, best first: per provider
        the branch's own accounts, else the central ones."""
        domain = [('company', 'in', [int(company), None])]
        if provider:
            domain.append(('provider', '=', provider))
        with without_check_access():
            accounts = cls.search(domain)
        own = {a.provider for a in accounts if a.company}
        return [a for a in accounts
            if a.company or a.provider not in own]




class PaymentTransaction(ModelSQL, ModelView):
    "Payment Transaction"
    __name__ = 'isp.payment.transaction'
    _rec_name = 'reference'

    reference = fields.Char(
        "Reference", required=True, readonly=True,
        help="The order reference sent to the provider (unique).")
    gateway = fields.Many2One(
        'isp.payment.gateway', "Gateway", required=True, readonly=True,
        ondelete='RESTRICT')
    provider = fields.Function(
        fields.Selection(PROVIDERS, "Provider"), 'on_change_with_provider')
    company = fields.Many2One(
        'company.company', "Company", required=True, readonly=True,
        ondelete='RESTRICT', help="The branch the document belongs to.")
    document = fields.Reference(
        "Document", selection='get_documents', required=True, readonly=True)
    party = fields.Many2One(
        'party.party', "Party", readonly=True, ondelete='RESTRICT',
        context={'company': Eval('company', -1)}, depends={'company'})
    amount = fields.Numeric(
        "Amount", digits='currency', required=True, readonly=True)
    currency = fields.Many2One(
        'currency.currency', "Currency", required=True, readonly=True)
    state = fields.Selection(
        TRANSACTION_STATES, "State", required=True, readonly=True, sort=False)
    provider_id = fields.Char(
        "Provider ID", readonly=True,
        help="The provider's own id of the payment.")
    provider_status = fields.Char("Provider Status", readonly=True)
    provider_receipt = fields.Char(
        "Provider Receipt", readonly=True,
        help="The provider's receipt number of the payment (M-Pesa), "
        "unique.")
    payment_url = fields.Char(
        "Payment URL", readonly=True,
        help="The buyer's payment page (none for an M-Pesa prompt).")
    paid_amount = fields.Numeric(
        "Paid Amount", digits='currency', readonly=True)
    paid_at = fields.Timestamp("Paid At", readonly=True)
    checked_at = fields.Timestamp(
        "Checked At", readonly=True,
        help="When the reconciliation last asked the provider.")
    review = fields.Selection(
        REVIEWS, "Review", readonly=True,
        help="Set when a notification needs a person: a wrong amount or "
        "currency was refused, a payment came for a settled document or a "
        "paid transaction was reversed at the provider.")
    review_note = fields.Char("Review Note", readonly=True)
    notifications = fields.One2Many(
        'isp.payment.notification', 'transaction', "Notifications",
        readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._order.insert(0, ('create_date', 'DESC'))
        cls._order.insert(1, ('id', 'DESC'))
        t = cls.__table__()
        cls._sql_constraints += [
            ('reference_uniq', Unique(t, t.reference),
                'isp_billing.msg_payment_reference_unique'),
            ('provider_receipt_uniq', Unique(t, t.provider_receipt),
                'isp_billing.msg_payment_receipt_unique'),
            ]
        cls._sql_indexes.update({
                Index(t, (t.provider_id, Index.Equality())),
                Index(t, (t.document, Index.Equality())),
                Index(t, (t.company, Index.Range()),
                    (t.create_date, Index.Range()),
                    where=t.state == 'pending'),
                Index(t, (t.review, Index.Equality()),
                    where=t.review != Null),
                })
        cls._buttons.update({
                'check': {
                    'invisible': Eval('state') != 'pending',
                    'depends': ['state'],
                    },
                'mark_reviewed': {
                    'invisible': ~Bool(Eval('review')),
                    'depends': ['review'],
                    },
                })

    @classmethod
    def default_state(cls):
        return 'pending'

    @staticmethod
    def default_company():
        return Transaction().context.get('company')

    @classmethod
    def get_documents(cls):
        "The models a transaction may pay (modules add theirs)"
        pool = Pool()
        Model = pool.get('ir.model')
        models = cls._document_models()
        return [(None, '')] + [(m, Model.get_name(m)) for m in models]

    @classmethod
    def _document_models(cls):
        return ['account.invoice']

    @fields.depends('gateway')
    def on_change_with_provider(self, name=None):
        return self.gateway.provider if self.gateway else None

    # -- opening payments -----------------------------------------------------

    @classmethod
    def open(cls, document, gateway, amount, currency, party=None,
            customer=None, description=None, prefix='IV', return_url=None):
        """Open a payment of `amount` for `document` at `gateway` and return
        the transaction (its payment_url is the buyer's page; M-Pesa pushes
        the prompt to the customer's phone instead).  The buyer comes back
        to `return_url` (its `{reference}` replaced by the transaction's;
        default: the account's Return URL).

        The transaction is created before the provider is called, so the
        reference is reserved; a provider error raises PaymentGatewayError
        and, the transaction being rolled back, leaves nothing behind.
        """
        adapter = gateway.get_adapter()
        transaction, = cls.create([{
                    'reference': new_reference(prefix),
                    'gateway': gateway.id,
                    'company': document.company.id,
                    'document': str(document),
                    'party': party.id if party else None,
                    'amount': amount,
                    'currency': currency.id,
                    }])
        try:
            request = adapter.create_payment(transaction.reference, amount,
                currency.code, customer or {}, gateway.webhook(),
                return_url.replace('{reference}', transaction.reference)
                if return_url else gateway.buyer_return_url(),
                description=description,
                expiry_minutes=gateway.expiry_minutes)
        except gateways.GatewayError as exception:
            raise PaymentGatewayError(gettext(
                    'isp_billing.msg_payment_gateway_error',
                    gateway=gateway.rec_name,
                    error=exception.message)) from exception
        transaction.provider_id = request.provider_id
        transaction.payment_url = request.redirect_url
        transaction.save()
        return transaction

    # -- notifications --------------------------------------------------------

    @classmethod
    def process_notification(cls, transaction, notification, source='webhook',
            headers=None, body=None, url=None, confirmation=None,
            stored=None, verdicts=None):
        """Apply a verified `notification` to `transaction` at most once and
        store it; return the verdict (see VERDICTS).

        A status query's answer (`source` 'query') is applied as it is.  A
        webhook's notification (authenticated, but its signature covers
        some fields only, or none) is applied only as `confirmation` says:
        the provider's status answer read just before (`confirmation_for`),
        None when it could not be had.  A notification that changes
        nothing (a repeat, a stale failure after the payment) needs none;
        one the answer does not confirm is stored 'unconfirmed' and changes
        nothing (when the answer tells another change, that answer is
        applied as a query of its own).

        The transaction's row is locked first (ModelSQL.lock: SELECT ... FOR
        UPDATE NOWAIT on PostgreSQL; Tryton restarts the database
        transaction with the lock taken when it was not), then read again:
        a concurrent notification waits, then finds it applied.

        `stored` is the notification's record when the webhook route
        recorded it 'queued': it gets the verdict instead of a new record
        (written by the caller when `verdicts` is given: {verdict: [the
        records]})."""
        cls.lock([transaction])
        transaction = cls(transaction.id)
        if source == 'query':
            verdict = transaction._apply(notification)
        elif not transaction.needs_confirmation(notification):
            verdict, values = transaction._verdict(notification,
                confirmed=False)
            if values:
                cls.write([transaction], values)
        elif transaction.confirmed_by(notification, confirmation):
            verdict = transaction._apply(confirmation,
                receipt=notification.receipt)
        else:
            verdict = 'unconfirmed'
            logger.warning("payment %s: %s %s notification not confirmed "
                "by the provider (%s)", transaction.reference,
                transaction.provider, notification.state,
                confirmation.state if confirmation else 'no answer')
            if (confirmation is not None and transaction.binds(confirmation)
                    and transaction.needs_confirmation(confirmation)):
                cls.process_notification(transaction, confirmation,
                    source='query', body=_query_body(confirmation))
        if stored is not None and verdicts is not None:
            verdicts.setdefault(verdict, []).append(stored)
        elif stored is not None:
            stored.__class__.write([stored], {'verdict': verdict})
        else:
            transaction._store(notification, verdict, source,
                headers=headers, body=body, url=url)
        if verdict in REFUSED:
            logger.warning("payment %s: %s notification refused (%s)",
                transaction.reference, transaction.provider, verdict)
        return verdict

    @classmethod
    def confirm_and_apply(cls, transaction, notification, **stored):
        """Confirm a webhook's `notification` with the provider when it
        would change `transaction`, then apply it under the locks: the
        step a queue task runs for a notification already recorded
        (`stored`: headers, body, url).  The webhook route runs the same
        two halves with the status query outside any database
        transaction."""
        confirmation = None
        if transaction.needs_confirmation(notification):
            confirmation = transaction.query_status()
        cls.lock_for_processing([transaction])
        return cls.process_notification(transaction, notification,
            confirmation=confirmation, **stored)

    @classmethod
    def record_notification(cls, transaction, notification, headers=None,
            body=None, url=None):
        """Record the verified `notification` of `transaction` 'queued'
        and queue the task applying it (`apply_queued`): what the webhook
        route does before answering.

        While a run of `apply_queued` holds the branch (workers on
        PostgreSQL), no task is queued: that run looks again for queued
        notifications once it has let the branch go.  Then the id of
        `transaction` is returned, and the caller, once this is
        committed, calls `apply_after_commit` with it (the run may have
        looked for the last time before the commit)."""
        transaction._store(notification, 'queued', 'webhook',
            headers=headers, body=body, url=url)
        if _branch_applying(transaction.company.id):
            return transaction.id
        cls._queue_apply(transaction.id)
        return None

    @classmethod
    def apply_after_commit(cls, transaction_id):
        """Queue `apply_queued` for the branch of the payment
        `transaction_id`, whose notification was recorded (committed)
        while a run held the branch, unless a run still holds it: that
        run looks again once it lets the branch go, after this commit"""
        transaction = cls(transaction_id)
        if not _branch_applying(transaction.company.id):
            cls._queue_apply(transaction_id)

    @classmethod
    def _queue_apply(cls, transaction_id):
        "Queue `apply_queued` for the branch of payment `transaction_id`"
        with Transaction().reset_context():
            cls.__queue__.apply_queued([cls(transaction_id)])

    @classmethod
    def apply_queued(cls, transactions):
        """Queue task: apply every notification recorded 'queued' of the
        branches of `transactions`, in batches.

        For each batch the providers' status APIs are asked first (once
        per payment whose notification would change it), then the rows of
        every payment of the batch, their invoices and the move sequence
        are locked at once (`lock_for_processing`: one restart of the
        database transaction at most) and each notification is applied in
        the order received, getting its verdict; the invoices' follow-ups
        (reconciliation, notices, reactivation) are done once for the
        batch (`Invoice.isp_payments_batch`).  A notification whose
        confirmation could not be had (the API down) stays 'queued': the
        reconciliation cron queues the task again.

        With workers on PostgreSQL one run at a time holds a branch (a
        session advisory lock, APPLY_LOCK and the branch's id): another
        task of the branch finding it held returns at once, and the
        holder applies batch after batch, each in a database transaction
        of its own, until none is left, lets the branch go, then looks
        once more (a notification committed while it held the branch had
        its task skipped).  After APPLY_SLICE seconds it hands over to a
        new task, so the follow-ups queued meanwhile get a worker."""
        companies = sorted({t.company.id for t in transactions})
        if not _serialised():
            applied, _, full = cls._apply_batch(companies)
            if full:
                cls.__queue__.apply_queued(transactions)
            return applied
        applied = []
        deadline = time.monotonic() + APPLY_SLICE
        anchors = {}
        for transaction in transactions:
            anchors.setdefault(transaction.company.id, transaction.id)
        for company in companies:
            applied += cls._apply_branch(company, anchors[company], deadline)
        return applied

    @classmethod
    def _apply_branch(cls, company, anchor, deadline):
        """Apply the branch's queued notifications while holding it;
        return the notifications applied (`anchor`: a payment of the
        branch, for the task handed over)"""
        pool = Pool()
        Notification = pool.get('isp.payment.notification')
        connection = Transaction().connection
        applied, tried = [], set()
        while True:
            if not _branch_lock(connection, company):
                # the holder looks again once it lets the branch go
                return applied
            handed_over = False
            try:
                while True:
                    done, left, _ = cls._in_own_transaction(
                        functools.partial(cls._apply_batch, [company],
                            exclude=tried, chosen=[]))
                    applied += done
                    tried.update(left)
                    if not done and not left:
                        break
                    if time.monotonic() > deadline:
                        handed_over = True
                        break
            finally:
                _branch_unlock(connection, company)
            if handed_over:
                cls._in_own_transaction(lambda: cls._queue_apply(anchor))
                return applied

            def left():
                return Notification.search([
                        ('verdict', '=', 'queued'),
                        ('company', '=', company),
                        ('id', 'not in', list(tried)),
                        ], limit=1)
            if not cls._in_own_transaction(left, readonly=True):
                return applied

    @classmethod
    def _in_own_transaction(cls, func, readonly=False):
        """Run `func` in a database transaction of its own, committed,
        restarted with the locks it asks for (as Tryton's wrappers do)
        and retried when the database is busy"""
        extras = {}
        retry = config.getint('database', 'retry')
        busy = restarts = 0
        while True:
            try:
                with Transaction().new_transaction(readonly=readonly,
                        **extras) as transaction:
                    try:
                        return func()
                    except TransactionError as exception:
                        transaction.rollback()
                        restarts += 1
                        if restarts > MAX_RESTARTS:
                            # not the task's transaction to restart: left
                            # queued, the reconciliation cron queues again
                            raise RuntimeError("batch restarted %d times"
                                % restarts) from exception
                        exception.fix(extras)
                        continue
            except backend.DatabaseOperationalError:
                busy += 1
                if busy > retry:
                    raise
                time.sleep(0.02 * busy * random.random())

    @classmethod
    def _apply_batch(cls, companies, exclude=(), chosen=None):
        """Apply the queued notifications of `companies` (up to BATCH,
        oldest first, but those of `exclude`) in this database
        transaction; return (the notifications applied, those left
        queued, whether BATCH were taken).  `chosen` (a list) keeps the
        ids taken by the first attempt: a run restarted for its locks
        takes no other (the notifications come on meanwhile)"""
        pool = Pool()
        Notification = pool.get('isp.payment.notification')
        domain = [
            ('verdict', '=', 'queued'),
            ('company', 'in', companies),
            ]
        if exclude:
            domain.append(('id', 'not in', list(exclude)))
        if chosen:
            domain.append(('id', 'in', chosen))
        queued = Notification.search(domain, order=[('id', 'ASC')],
            limit=BATCH)
        if chosen is not None and not chosen:
            chosen.extend(n.id for n in queued)
        if not queued:
            return [], [], False
        payments = list({n.transaction for n in queued})
        answers = {}
        for stored in queued:
            payment = stored.transaction
            if (payment.id not in answers
                    and payment.needs_confirmation(stored.notification)):
                answers[payment.id] = payment._status_answer()
        cls.lock_for_processing(payments)
        applied, left, verdicts = [], [], {}
        with cls.documents_batch():
            for stored in Notification.browse(queued):
                if stored.verdict != 'queued':
                    continue
                payment = cls(stored.transaction.id)
                notification = stored.notification
                confirmation = None
                if payment.needs_confirmation(notification):
                    confirmation = answers.get(payment.id, UNREACHABLE)
                    if confirmation is UNREACHABLE:
                        left.append(stored.id)
                        continue
                cls.process_notification(payment, notification,
                    confirmation=confirmation, stored=stored,
                    verdicts=verdicts)
                applied.append(stored)
            # one write per verdict
            if verdicts:
                Notification.write(*[a for verdict, records
                        in verdicts.items()
                        for a in (records, {'verdict': verdict})])
        # kept until now for the restarts (locks asked on the way, e.g.
        # the first payment of a journal's period)
        database = Transaction().database.name
        for payment_id in answers:
            _answers.pop((database, payment_id), None)
        return applied, left, len(queued) == BATCH

    @classmethod
    @contextlib.contextmanager
    def documents_batch(cls):
        """Around the notifications of a batch of `apply_queued`: what the
        documents' payments leave to the end of the batch, to do once for
        all (the invoices' follow-ups: `Invoice.isp_payments_batch`;
        modules add theirs)"""
        Invoice = Pool().get('account.invoice')
        with Invoice.isp_payments_batch():
            yield

    def _status_answer(self):
        """The provider's answer (`query_status`, UNREACHABLE when it
        cannot be asked), reused when asked a moment ago by the run of
        `apply_queued` that restarted for its locks"""
        now = time.monotonic()
        for key, (asked, _) in list(_answers.items()):
            if now - asked > ANSWER_REUSE:
                _answers.pop(key, None)
        key = (Transaction().database.name, self.id)
        if key in _answers:
            return _answers[key][1]
        answer = self.query_status(unreachable=UNREACHABLE)
        _answers[key] = (now, answer)
        return answer

    def needs_confirmation(self, notification):
        """Whether `notification` would change the transaction (its state,
        a review flag): only the provider's status answer may"""
        verdict, values = self._verdict(notification, confirmed=False)
        return verdict not in {'duplicate', 'ignored'} or bool(
            values.get('review'))

    def binds(self, answer):
        """Whether `answer` (a notification or a status answer) is about
        this payment: its reference, and its provider id where the
        provider gives it at creation (M-Pesa CheckoutRequestID, Xendit
        invoice, Duitku reference)"""
        if answer.reference not in {None, self.reference}:
            return False
        adapter = gateways.ADAPTERS[self.gateway.provider]
        return not (adapter.binds_provider_id and self.provider_id
            and answer.provider_id != self.provider_id)

    def confirmed_by(self, notification, confirmation):
        "Whether the status answer `confirmation` confirms `notification`"
        if confirmation is None or not self.binds(confirmation):
            return False
        over = {'failed', 'expired'}
        if notification.state in over:
            return confirmation.state in over and (
                confirmation.reversal or not notification.reversal)
        return confirmation.state == notification.state

    def receipt_used(self, receipt):
        "Whether another transaction was paid with the provider's `receipt`"
        receipt = _text(receipt, 100)
        if not receipt:
            return False
        with without_check_access():
            return bool(self.search([
                        ('provider_receipt', '=', receipt),
                        ('id', '!=', self.id),
                        ], limit=1))

    def _apply(self, notification, receipt=''):
        "Apply the provider's `notification`; return the verdict"
        verdict, values = self._verdict(notification)
        if verdict == 'applied' and notification.state == 'paid':
            values.update(self._record_payment(values['paid_amount']))
            receipt = _text(receipt or notification.receipt, 100)
            if receipt and not self.receipt_used(receipt):
                values['provider_receipt'] = receipt
        if values:
            self.write([self], values)
        return verdict

    def _store(self, notification, verdict, source, headers=None, body=None,
            url=None):
        "Store `notification` with its verdict (as text the database takes)"
        pool = Pool()
        Notification = pool.get('isp.payment.notification')
        Notification.create([{
                    'transaction': self.id,
                    'company': self.company.id,
                    'source': source,
                    'received_at': _now(),
                    'state': notification.state,
                    'amount': notification.amount,
                    'currency_code': _text(notification.currency, 10),
                    'provider_status': _text(
                        notification.provider_status, 100),
                    'provider_id': _text(notification.provider_id, 100),
                    'receipt': _text(notification.receipt, 100),
                    'reversal': bool(notification.reversal),
                    'verdict': verdict,
                    'url': _text(redact_url(url), 2000),
                    'headers': _text(redact_headers(headers)),
                    'body': redact_body(body),
                    }])

    def _verdict(self, notification, confirmed=True):
        """The verdict on a verified notification and the values to write
        (the provider's id is taken from a `confirmed` one only)"""
        state = notification.state
        values = {}
        if confirmed and notification.provider_id and not self.provider_id:
            values['provider_id'] = _text(notification.provider_id, 100)
        if state == 'paid':
            if self.state == 'paid':
                return 'duplicate', values
            amount = notification.amount
            if amount is None:
                # M-Pesa's status query tells no amount: the STK push
                # fixed it, the customer cannot change it
                amount = self.amount
            currency = notification.currency or self.currency.code
            if currency != self.currency.code:
                values.update(review='wrong_currency',
                    review_note=_text('%s %s notified, %s %s expected' % (
                            amount, currency, self.amount,
                            self.currency.code), 200))
                return 'wrong_currency', values
            if amount != self.amount:
                values.update(review='wrong_amount',
                    review_note=_text('%s %s notified, %s %s expected' % (
                            amount, currency, self.amount,
                            self.currency.code), 200))
                return 'wrong_amount', values
            values.update(state='paid', paid_amount=self.amount,
                paid_at=_now(),
                provider_status=_text(notification.provider_status, 100))
            return 'applied', values
        if state == 'pending':
            return ('duplicate' if self.state == 'pending' else 'ignored'), (
                values)
        # failed or expired
        if self.state == 'pending':
            values.update(state=state,
                provider_status=_text(notification.provider_status, 100))
            return 'applied', values
        if self.state == state:
            return 'duplicate', values
        if (self.state == 'paid' and notification.reversal
                and not self.review):
            # a refund or chargeback: never undone silently
            values.update(review='reversed', review_note=_text(
                    'the provider reports %s' % (
                        notification.provider_status or state), 200))
        # else a failure or expiry older than the payment: out of order,
        # nothing to say
        return 'ignored', values

    def _record_payment(self, amount):
        """Record the received money on the document; return the values to
        write on the transaction (a review flag when nothing was left to
        pay)"""
        if self.document and self.document.__name__ == 'account.invoice':
            return self._record_invoice_payment(amount)
        return {}

    def _record_invoice_payment(self, amount):
        """Record the payment with the billing module's
        `Invoice.isp_record_payment` (payment move, reconciliation, notice,
        reactivation); money beyond what is left to pay stays as the
        subscriber's credit and is flagged for staff"""
        pool = Pool()
        Invoice = pool.get('account.invoice')
        Date = pool.get('ir.date')
        if hasattr(Invoice, 'isp_payments_due'):
            Invoice.isp_payments_due(self.document.id)
        invoice = Invoice(self.document.id)
        if invoice.state not in {'posted', 'paid'}:
            return {'review': 'document_settled', 'review_note': _text(
                    'invoice %s is %s: nothing recorded' % (
                        invoice.rec_name, invoice.state), 200)}
        to_pay = (invoice.amount_to_pay if invoice.state == 'posted'
            else Decimal(0))
        values = {}
        if amount > to_pay:
            values = {'review': 'document_settled', 'review_note': _text(
                    '%s received, %s was left to pay on %s' % (
                        amount, to_pay, invoice.rec_name), 200)}
        with Transaction().set_context(company=invoice.company.id):
            date = Date.today()
        if hasattr(Invoice, 'isp_record_payment'):
            Invoice.isp_record_payment(invoice, amount, date=date,
                method='gateway', reference=self.reference, to_pay=to_pay)
        elif to_pay > 0:
            record_invoice_payment(invoice, amount, date, self.reference)
        return values

    # -- reconciliation -------------------------------------------------------

    @classmethod
    def reconcile_pending(cls):
        """Cron: queue a status query for every pending transaction of the
        context company older than its account's 'Check After' and not
        checked since."""
        now = _now()
        domain = [
            ('state', '=', 'pending'),
            ('create_date', '<=', now - dt.timedelta(minutes=1)),
            ]
        company = Transaction().context.get('company')
        if company:
            domain.append(('company', '=', company))
        due = []
        for transaction in cls.search(domain, order=[('create_date', 'ASC')]):
            delay = dt.timedelta(minutes=transaction.gateway.check_after)
            if (transaction.create_date <= now - delay
                    and (not transaction.checked_at
                        or transaction.checked_at <= now - delay)):
                due.append(transaction)
        for transaction in due:
            # one task each: a slow or failing provider delays no other
            cls.__queue__.check_status([transaction])
        cls._requeue_notifications(now, company)
        return due

    @classmethod
    def _requeue_notifications(cls, now, company=None):
        """Queue `apply_queued` again for the branches holding webhook
        notifications left 'queued' (their provider could not be asked)"""
        pool = Pool()
        Notification = pool.get('isp.payment.notification')
        domain = [
            ('verdict', '=', 'queued'),
            ('received_at', '<=', now - dt.timedelta(minutes=1)),
            ]
        if company:
            domain.append(('company', '=', company))
        first = {}
        for stored in Notification.search(domain, order=[('id', 'ASC')]):
            first.setdefault(stored.company.id, stored.transaction)
        for transaction in first.values():
            cls.__queue__.apply_queued([transaction])

    @classmethod
    @ModelView.button
    def check(cls, transactions):
        "Ask the provider now"
        cls.check_status(transactions)

    @classmethod
    def check_status(cls, transactions):
        """Ask each pending transaction's provider for its state and apply
        the answer as a notification.

        The queries run before the row lock is asked for: when the lock
        restarts the database transaction they run again, which is harmless
        (they are read-only) and happens only for transactions whose state
        changes."""
        now = _now()
        answers = []
        for transaction in transactions:
            if transaction.state != 'pending':
                continue
            answers.append((transaction, transaction.query_status()))
        to_apply = []
        for transaction, notification in answers:
            if notification is None or notification.state == 'pending':
                age = now - transaction.create_date
                if age > dt.timedelta(
                        hours=transaction.gateway.abandon_after):
                    notification = gateways.Notification(
                        transaction.reference, 'expired', None, None,
                        transaction.provider_id,
                        provider_status='abandoned')
                else:
                    continue
            to_apply.append((transaction, notification))
        # every lock at once: a single restart of the database transaction
        cls.lock_for_processing([t for t, _ in to_apply])
        checked = [t for t, _ in answers]
        if checked:
            cls.write(checked, {'checked_at': now})
        for transaction, notification in to_apply:
            cls.process_notification(transaction, notification,
                source='query', body=_query_body(notification))

    @classmethod
    def lock_for_processing(cls, transactions):
        """Lock the transactions and the documents they may pay; when some
        are not locked yet, restart the database transaction once with all
        of them"""
        transaction = Transaction()
        missing = {}
        for table, ids in cls.locks_for(transactions).items():
            try:
                transaction.lock_records(table, ids)
            except TransactionError:
                missing[table] = ids
        if missing:
            raise _LockRows(missing)

    @classmethod
    def locks_for(cls, transactions):
        """{table: [ids]} of the rows processing a notification locks: the
        transactions, their invoices and the move sequences of today's
        periods (taken at the start, they spare the restarts Tryton makes
        when a lock is asked for on the way)"""
        pool = Pool()
        Invoice = pool.get('account.invoice')
        Period = pool.get('account.period')
        Date = pool.get('ir.date')
        locks = {cls._table: [t.id for t in transactions]}
        invoices = [t.document for t in transactions
            if t.document and t.document.__name__ == 'account.invoice']
        if invoices:
            locks[Invoice._table] = [i.id for i in invoices]
        for company in {i.company for i in invoices}:
            with Transaction().set_context(company=company.id):
                today = Date.today()
            try:
                period = Period.find(company, date=today)
            except PeriodNotFoundError:
                continue
            sequence = period.move_sequence
            if sequence:
                locks.setdefault(sequence.__class__._table, []).append(
                    sequence.id)
        return locks

    def query_status(self, unreachable=None):
        """The provider's answer (a gateways.Notification) about this
        payment, or None when it does not know the payment yet (Midtrans
        before a method is chosen) or answers about another payment,
        `unreachable` when it cannot be asked now"""
        answer = ask_status(self.gateway.get_adapter(), self.reference,
            self.provider_id, unreachable=unreachable)
        if answer is unreachable:
            return answer
        if answer is not None and not self.binds(answer):
            logger.warning("payment %s: the provider's status is about "
                "another payment", self.reference)
            return None
        return answer

    @classmethod
    @ModelView.button
    def mark_reviewed(cls, transactions):
        cls.write(transactions, {'review': None})


class _LockRows(TransactionError):
    "Restart the database transaction with all these rows locked"

    def __init__(self, locks):
        super().__init__()
        self.locks = locks

    def fix(self, extras):
        super().fix(extras)
        locked = extras.setdefault('_lock_records', {})
        for table, ids in self.locks.items():
            locked.setdefault(table, []).extend(ids)


def ask_status(adapter, reference, provider_id=None, unreachable=None):
    """`adapter`'s status answer about the payment, None when the
    provider does not know it, `unreachable` when it cannot be asked now
    (runs outside any database transaction too)"""
    try:
        return adapter.query_status(reference, provider_id=provider_id)
    except gateways.TransactionNotFound:
        return None
    except gateways.GatewayError as exception:
        logger.warning("payment %s: status query failed: %s",
            reference, exception)
        return unreachable


def _query_body(notification):
    import json
    try:
        return json.dumps(notification.raw, default=str)[:MAX_STORED]
    except (TypeError, ValueError):
        return None


def record_invoice_payment(invoice, amount, date, reference):
    """Pay `invoice` with Tryton's own mechanism (the pay wizard's logic):
    a posted move on the company's first payment method, reconciled with
    the invoice's lines when it settles them.  Used only when the billing
    module gives no `isp_record_payment`."""
    pool = Pool()
    PaymentMethod = pool.get('account.invoice.payment.method')
    MoveLine = pool.get('account.move.line')
    methods = PaymentMethod.search([
            ('company', '=', invoice.company.id),
            ], order=[('id', 'ASC')], limit=1)
    if not methods:
        raise PaymentOnlineError(gettext(
                'isp_billing.msg_payment_no_method',
                company=invoice.company.rec_name))
    method, = methods
    overpayment = max(amount - invoice.amount_to_pay, Decimal(0))
    lines = invoice.pay_invoice(amount, method, date,
        description=reference, overpayment=overpayment)
    invoice = invoice.__class__(invoice.id)
    to_reconcile, remainder = invoice.get_reconcile_lines_for_amount(
        amount - overpayment, invoice.currency)
    if not remainder:
        MoveLine.reconcile(to_reconcile)
    return lines


class PaymentNotification(ModelSQL, ModelView):
    "Payment Notification"
    __name__ = 'isp.payment.notification'

    transaction = fields.Many2One(
        'isp.payment.transaction', "Transaction", required=True,
        readonly=True, ondelete='CASCADE')
    company = fields.Many2One(
        'company.company', "Company", required=True, readonly=True,
        ondelete='RESTRICT')
    source = fields.Selection([
            ('webhook', "Webhook"),
            ('query', "Status query"),
            ], "Source", required=True, readonly=True)
    received_at = fields.Timestamp("Received At", required=True,
        readonly=True)
    state = fields.Selection(
        TRANSACTION_STATES, "Notified State", readonly=True)
    amount = fields.Numeric("Notified Amount", readonly=True)
    currency_code = fields.Char("Notified Currency", readonly=True)
    provider_status = fields.Char("Provider Status", readonly=True)
    provider_id = fields.Char("Provider ID", readonly=True,
        help="The provider's id of the payment the notification tells.")
    receipt = fields.Char("Receipt", readonly=True)
    reversal = fields.Boolean("Reversal", readonly=True,
        help="The failure notified undoes a payment (refund, chargeback).")
    verdict = fields.Selection(VERDICTS, "Verdict", required=True,
        readonly=True, help="'Queued' until a queue task applies it.")
    url = fields.Char("URL", readonly=True,
        help="The URL called, without its secret token.")
    headers = fields.Text("Headers", readonly=True,
        help="Without the headers that authenticate the request.")
    body = fields.Text("Body", readonly=True, help="As received.")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._order.insert(0, ('received_at', 'DESC'))
        cls._order.insert(1, ('id', 'DESC'))
        t = cls.__table__()
        cls._sql_indexes.update({
                Index(t, (t.transaction, Index.Range())),
                Index(t, (t.company, Index.Range()), (t.id, Index.Range()),
                    where=t.verdict == 'queued'),
                })

    @property
    def notification(self):
        """The gateways.Notification recorded (as the verified one, for
        the queue task)"""
        return gateways.Notification(self.transaction.reference,
            self.state, self.amount, self.currency_code or None,
            self.provider_id or None,
            provider_status=self.provider_status or '',
            reversal=bool(self.reversal), receipt=self.receipt or '')


def new_pay_token():
    "An unguessable token of an invoice's public payment link (128 bits)"
    return secrets.token_urlsafe(16)


class Invoice(SecretDefaultsMixin, metaclass=PoolMeta):
    __name__ = 'account.invoice'

    isp_payment_transactions = fields.One2Many(
        'isp.payment.transaction', 'document', "Online Payments",
        readonly=True)
    isp_pay_token = fields.Char(
        "Payment Link Token", readonly=True,
        help="The token of the invoice's public payment link "
        "(/<database>/isp_billing/pay/<token>).")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_indexes.add(Index(t, (t.isp_pay_token, Index.Equality()),
                where=t.isp_pay_token != Null))
        cls._buttons.update({
                'isp_pay_online': {
                    'invisible': ((Eval('state') != 'posted')
                        | (Eval('type') != 'out')),
                    'depends': ['state', 'type'],
                    },
                })

    @classmethod
    def default_isp_pay_token(cls):
        return new_pay_token()

    @classmethod
    def _secret_defaults(cls):
        # one token per invoice, also for invoices created together (a
        # billing batch) and copied
        return {**super()._secret_defaults(), 'isp_pay_token': new_pay_token}

    @classmethod
    def copy(cls, invoices, default=None):
        default = default.copy() if default is not None else {}
        default.setdefault('isp_payment_transactions', None)
        return super().copy(invoices, default=default)

    @classmethod
    @ModelView.button_action('isp_billing.wizard_payment_open')
    def isp_pay_online(cls, invoices):
        "Choose a gateway, open the payment and show its page"

    def isp_payment_gateways(self):
        "The gateway accounts that can take this invoice's currency"
        pool = Pool()
        Gateway = pool.get('isp.payment.gateway')
        code = self.currency.code
        return [a for a in Gateway.for_company(self.company)
            if code in gateways.ADAPTERS[a.provider].currencies]

    @classmethod
    def isp_open_payment(cls, invoice, provider=None, gateway=None,
            reuse=True, return_url=None):
        """An online payment of what is left to pay on `invoice`: the
        pending one already open at the same account for the same amount
        (when `reuse`, never for an M-Pesa prompt), or a new one.  Used by
        the button, the notices (pay_url) and the portal (`return_url`:
        where the buyer comes back, default the account's)."""
        pool = Pool()
        PaymentTransaction = pool.get('isp.payment.transaction')
        if invoice.type != 'out' or invoice.state != 'posted':
            raise PaymentOnlineError(gettext(
                    'isp_billing.msg_payment_invoice_not_payable',
                    invoice=invoice.rec_name))
        amount = invoice.amount_to_pay
        if amount <= 0:
            raise PaymentOnlineError(gettext(
                    'isp_billing.msg_payment_invoice_not_payable',
                    invoice=invoice.rec_name))
        if gateway is None:
            code = invoice.currency.code
            accounts = [a for a in invoice.isp_payment_gateways()
                if not provider or a.provider == provider]
            if not accounts:
                raise PaymentOnlineError(gettext(
                        'isp_billing.msg_payment_no_gateway',
                        invoice=invoice.rec_name,
                        currency=code))
            gateway = accounts[0]
        if reuse and gateway.provider != 'mpesa':
            existing = PaymentTransaction.search([
                    ('document', '=', str(invoice)),
                    ('gateway', '=', gateway.id),
                    ('state', '=', 'pending'),
                    ('amount', '=', amount),
                    ('payment_url', '!=', None),
                    ('create_date', '>=', _now() - dt.timedelta(
                            minutes=gateway.expiry_minutes or 60 * 24)),
                    ], limit=1)
            if existing:
                return existing[0]
        party = invoice.party
        customer = {
            'name': party.name,
            'email': party.email or None,
            'phone': (getattr(party, 'whatsapp', None) or party.mobile
                or party.phone or None),
            }
        return PaymentTransaction.open(invoice, gateway, amount,
            invoice.currency, party=party, customer=customer,
            description=invoice.number or invoice.rec_name,
            return_url=return_url)


class PaymentOpenStart(ModelView):
    "Pay Online"
    __name__ = 'isp.payment.open.start'

    invoice = fields.Many2One('account.invoice', "Invoice", readonly=True)
    amount = fields.Numeric("Amount", digits='currency', readonly=True)
    currency = fields.Many2One('currency.currency', "Currency",
        readonly=True)
    gateways = fields.Many2Many(
        'isp.payment.gateway', None, None, "Gateways", readonly=True)
    gateway = fields.Many2One(
        'isp.payment.gateway', "Gateway", required=True,
        domain=[('id', 'in', Eval('gateways', []))],
        help="The account the payment is opened at.")


class PaymentOpen(BranchWizardMixin, Wizard):
    """Open an online payment of an invoice and show the buyer's page (an
    M-Pesa prompt goes to the customer's phone instead)"""
    __name__ = 'isp.payment.open'
    start = StateView('isp.payment.open.start',
        'isp_billing.payment_open_start_view_form', [
            Button("Cancel", 'end', 'tryton-cancel'),
            Button("Open", 'open', 'tryton-ok', default=True),
            ])
    open = StateTransition()
    page = StateAction('isp_billing.url_payment_page')

    def default_start(self, fields):
        invoice = self.record
        with without_check_access():
            accounts = invoice.isp_payment_gateways()
        return {
            'invoice': invoice.id,
            'amount': invoice.amount_to_pay,
            'currency': invoice.currency.id,
            'gateways': [a.id for a in accounts],
            'gateway': accounts[0].id if accounts else None,
            }

    def transition_open(self):
        pool = Pool()
        Invoice = pool.get('account.invoice')
        with without_check_access():
            gateway = self.start.gateway.__class__(self.start.gateway.id)
            if gateway not in self.record.isp_payment_gateways():
                raise PaymentOnlineError(gettext(
                        'isp_billing.msg_payment_no_gateway',
                        invoice=self.record.rec_name,
                        currency=self.record.currency.code))
            self.payment = Invoice.isp_open_payment(
                Invoice(self.record.id), gateway=gateway)
        return 'page' if self.payment.payment_url else 'end'

    def do_page(self, action):
        action['url'] = self.payment.payment_url
        return action, {}


class Cron(metaclass=PoolMeta):
    __name__ = 'ir.cron'

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.method.selection.append(
            ('isp.payment.transaction|reconcile_pending',
                "Reconcile Pending Online Payments"))



