"""Send a rendered email over SMTP.

Errors are not caught here: `OSError` (refused, timed out) and `smtplib.SMTPException` (itself an
`OSError`) reach the caller, whose retry policy decides what happens next.
"""

from __future__ import annotations

import hashlib
import re
import smtplib
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

from shop.mail.render import RenderedEmail

DEDUPE_HEADER = "X-Shop-Dedupe-Key"


def message_id(dedupe_key: str) -> str:
    """The same key always gives the same Message-ID, so a copy that slips through our own
    deduplication (e.g. a ledger commit that failed) can still be recognised by the receiving side."""
    digest = hashlib.sha256(dedupe_key.encode()).hexdigest()[:32]
    return f"<{digest}@shop.local>"


@dataclass(frozen=True)
class SendHooks:
    """What a send tells its caller on the way: `handing_over` just before the message's final "."
    (the point after which the server may hold it), `refused` if the server then answers it with an
    error (it does not hold the email), `accepted` as soon as the server took it, before the QUIT."""

    handing_over: Callable[[], None] | None = None
    refused: Callable[[], None] | None = None
    accepted: Callable[[], None] | None = None


NO_HOOKS = SendHooks()


class SmtpSender:
    def __init__(self, host: str, port: int, from_address: str, timeout: float) -> None:
        self.host = host
        self.port = port
        self.from_address = from_address
        # smtplib applies this to the connect and to every socket operation, not to the whole send.
        self.timeout = timeout

    def build(self, to: str, email: RenderedEmail, dedupe_key: str) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.from_address
        message["To"] = to
        message["Subject"] = email.subject
        message["Date"] = formatdate(localtime=False, usegmt=True)
        message["Message-ID"] = message_id(dedupe_key)
        message[DEDUPE_HEADER] = dedupe_key
        # multipart/alternative lists the least preferred part first: text, then HTML.
        message.set_content(email.text)
        message.add_alternative(email.html, subtype="html")
        return message

    def send(self, to: str, email: RenderedEmail, dedupe_key: str, hooks: SendHooks = NO_HOOKS) -> None:
        message = self.build(to, email, dedupe_key)
        smtp = _HandOverSMTP(self.host, self.port, timeout=self.timeout)
        smtp.handing_over, smtp.refused = hooks.handing_over, hooks.refused
        try:
            smtp.send_message(message)
            # The QUIT round trip can take a whole timeout; the caller's record of the sent email
            # should not wait for it (a crash in between would send a second copy).
            if hooks.accepted is not None:
                hooks.accepted()
        finally:
            _quit_quietly(smtp)


_LEADING_DOT = re.compile(rb"(?m)^\.")


class _HandOverSMTP(smtplib.SMTP):
    """smtplib's client, whose DATA sends the message, then calls `handing_over`, then the final
    "." that makes the server take it: the caller commits that it handed the message over before
    the point of no return, not after it (see shop.mail.ledger)."""

    handing_over: Callable[[], None] | None = None
    refused: Callable[[], None] | None = None

    def data(self, msg: Any) -> tuple[int, bytes]:  # bytes from send_message (smtplib types it Buffer | str)
        if self.handing_over is None:
            return super().data(msg)
        self.putcmd("data")
        code, reply = self.getreply()
        if code != 354:
            raise smtplib.SMTPDataError(code, reply)
        body = msg if isinstance(msg, bytes) else msg.encode("ascii")
        body = _LEADING_DOT.sub(b"..", body)  # RFC 5321 4.5.2, as smtplib quotes them
        if not body.endswith(b"\r\n"):
            body += b"\r\n"
        self.send(body)
        self.handing_over()  # if this fails, the "." is never sent and the server drops the message
        self.send(b".\r\n")
        code, reply = self.getreply()
        if code != 250 and self.refused is not None:
            self.refused()  # smtplib raises SMTPDataError for it next
        return code, reply


def _quit_quietly(smtp: smtplib.SMTP) -> None:
    # Once send_message returned the server has the mail: a failing QUIT must not turn that into an
    # error, or the retry would send a second copy. (smtplib's `with` raises on a non-221 QUIT.)
    try:
        smtp.quit()
    except OSError:
        smtp.close()
