# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""CoA and Disconnect-Request (RFC 5176) to a router, with pyrad.

The module's own client (tools/radius_peer.py is the test peer and is not
shipped): one request, retried on timeout, never raising for network
trouble.  The dictionary holds only the attributes the product sends and
reads, taken from FreeRADIUS's (rfc2865, rfc2866, rfc3576, mikrotik), so
the workers need no FreeRADIUS package.
"""
import functools
import io
import time
from dataclasses import dataclass, field

ACK, NAK, TIMEOUT, ERROR = 'ack', 'nak', 'timeout', 'error'

DICTIONARY = """\
ATTRIBUTE	User-Name		1	string
ATTRIBUTE	NAS-IP-Address		4	ipaddr
ATTRIBUTE	Framed-IP-Address	8	ipaddr
ATTRIBUTE	Reply-Message		18	string
ATTRIBUTE	State			24	octets
ATTRIBUTE	Class			25	octets
ATTRIBUTE	Calling-Station-Id	31	string
ATTRIBUTE	NAS-Identifier		32	string
ATTRIBUTE	Acct-Session-Id		44	string
ATTRIBUTE	Event-Timestamp		55	date
ATTRIBUTE	Message-Authenticator	80	octets
ATTRIBUTE	Error-Cause		101	integer
VALUE	Error-Cause	Residual-Context-Removed	201
VALUE	Error-Cause	Unsupported-Attribute	401
VALUE	Error-Cause	Missing-Attribute	402
VALUE	Error-Cause	NAS-Identification-Mismatch	403
VALUE	Error-Cause	Invalid-Request	404
VALUE	Error-Cause	Unsupported-Service	405
VALUE	Error-Cause	Unsupported-Extension	406
VALUE	Error-Cause	Administratively-Prohibited	501
VALUE	Error-Cause	Request-Not-Routable	502
VALUE	Error-Cause	Session-Context-Not-Found	503
VALUE	Error-Cause	Session-Context-Not-Removable	504
VALUE	Error-Cause	Other-Proxy-Processing-Error	505
VALUE	Error-Cause	Resources-Unavailable	506
VALUE	Error-Cause	Request-Initiated	507
VENDOR	Mikrotik	14988
BEGIN-VENDOR	Mikrotik
ATTRIBUTE	Mikrotik-Rate-Limit	8	string
ATTRIBUTE	Mikrotik-Group	3	string
ATTRIBUTE	Mikrotik-Address-List	19	string
END-VENDOR	Mikrotik
"""


@functools.cache
def dictionary():
    from pyrad.dictionary import Dictionary
    return Dictionary(io.StringIO(DICTIONARY))


@dataclass
class Result:
    "The outcome of a CoA or Disconnect-Request"
    outcome: str
    error_cause: str = None
    error: str = None
    elapsed: float = 0
    attributes: dict = field(default_factory=dict)

    @property
    def ok(self):
        return self.outcome == ACK


def send(kind, host, secret, attributes, port=3799, timeout=3, retries=2):
    """Send a CoA-Request (kind 'coa') or a Disconnect-Request (kind
    'disconnect') and return a Result: 'ack', 'nak', 'timeout' or 'error'"""
    from pyrad import packet
    from pyrad.client import Client, Timeout
    codes = {'coa': packet.CoARequest, 'disconnect': packet.DisconnectRequest}
    client = Client(server=host, coaport=port,
        secret=secret.encode() if isinstance(secret, str) else secret,
        dict=dictionary(), retries=max(1, retries), timeout=timeout)
    start = time.monotonic()
    try:
        request = client.CreateCoAPacket(code=codes[kind])
        for name, value in attributes.items():
            request.AddAttribute(name, value)
        try:
            reply = client.SendPacket(request)
        except Timeout:
            return Result(TIMEOUT, elapsed=time.monotonic() - start,
                error="no answer after %d attempt(s) of %s s" % (
                    max(1, retries), timeout))
        except OSError as exception:
            return Result(ERROR, error=str(exception),
                elapsed=time.monotonic() - start)
    finally:
        client._CloseSocket()
    elapsed = time.monotonic() - start
    if reply.code in (packet.CoAACK, packet.DisconnectACK):
        return Result(ACK, elapsed=elapsed)
    if reply.code in (packet.CoANAK, packet.DisconnectNAK):
        causes = reply.get('Error-Cause') or [None]
        return Result(NAK, error_cause=causes[0], elapsed=elapsed)
    return Result(ERROR, error="unexpected answer code %s" % reply.code,
        elapsed=elapsed)


def send_coa(host, secret, attributes, **kwargs):
    return send('coa', host, secret, attributes, **kwargs)


def send_disconnect(host, secret, attributes, **kwargs):
    return send('disconnect', host, secret, attributes, **kwargs)
