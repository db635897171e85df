"""The message SmtpSender builds: multipart/alternative, text first, a stable Message-ID."""

from __future__ import annotations

from email.message import EmailMessage

from shop.mail.render import RenderedEmail
from shop.mail.sender import SmtpSender, message_id

EMAIL = RenderedEmail(subject="Your shop verification code", text="code 428913\n", html="<p>428913</p>\n")


def build(key: str = "verification:u1:c1") -> EmailMessage:
    sender = SmtpSender(host="127.0.0.1", port=1025, from_address="shop <no-reply@shop.test>", timeout=5)
    return sender.build("ada@example.test", EMAIL, key)


def test_headers():
    message = build()
    assert message["From"] == "shop <no-reply@shop.test>"
    assert message["To"] == "ada@example.test"
    assert message["Subject"] == "Your shop verification code"
    assert message["Date"]
    assert message["X-Shop-Dedupe-Key"] == "verification:u1:c1"


def test_text_comes_before_html_in_a_multipart_alternative():
    message = build()
    assert message.get_content_type() == "multipart/alternative"
    parts = list(message.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert parts[0].get_content() == "code 428913\n"
    assert parts[1].get_content() == "<p>428913</p>\n"


def test_the_message_id_is_stable_per_dedupe_key():
    assert build("k1")["Message-ID"] == build("k1")["Message-ID"] == message_id("k1")
    assert build("k1")["Message-ID"] != build("k2")["Message-ID"]
    assert message_id("k1").startswith("<")
    assert message_id("k1").endswith("@shop.local>")
