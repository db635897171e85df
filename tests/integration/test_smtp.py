"""An email sent over SMTP arrives in Mailpit, read back through its API as a test would."""

from __future__ import annotations

import json
import os
import smtplib
import time
import urllib.parse
import urllib.request
import uuid
from email.message import EmailMessage


def _get(url: str):
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def test_a_mail_sent_over_smtp_is_seen_through_mailpits_api(settings):
    api = os.environ.get("SHOP_MAILPIT_URL", "http://127.0.0.1:8025")
    dedupe_key = f"smoke-{uuid.uuid4()}"
    message = EmailMessage()
    message["From"] = "shop@example.test"
    message["To"] = "customer@example.test"
    message["Subject"] = f"smoke {dedupe_key}"
    message["X-Shop-Dedupe-Key"] = dedupe_key
    message.set_content("hello from the smoke test")
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=10) as smtp:
        smtp.send_message(message)

    deadline = time.monotonic() + 10
    found: list[dict] = []
    while not found and time.monotonic() < deadline:
        found = _get(f"{api}/api/v1/search?query=" + urllib.parse.quote(f'subject:"smoke {dedupe_key}"'))[
            "messages"
        ]
        time.sleep(0.1)
    assert len(found) == 1
    headers = _get(f"{api}/api/v1/message/{found[0]['ID']}/headers")
    assert headers["X-Shop-Dedupe-Key"] == [dedupe_key]
    assert found[0]["To"][0]["Address"] == "customer@example.test"
