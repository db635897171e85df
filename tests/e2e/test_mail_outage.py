"""SMTP away for 30 s: the verification email still arrives, exactly once, when it returns."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from harness import mailpit
from tests.e2e.test_auth import PASSWORD, new_address, post

STACK = Path(__file__).resolve().parents[2] / "ops/local/stack.sh"


def test_the_email_arrives_once_after_smtp_comes_back(stack):
    email = new_address()
    subprocess.run([str(STACK), "stop", "mailpit"], check=True, capture_output=True)
    try:
        assert post(stack, "/api/v1/auth/register", {"email": email, "password": PASSWORD}).status == 202
        time.sleep(30)
    finally:
        subprocess.run([str(STACK), "start", "mailpit"], check=True, capture_output=True)
    arrived = mailpit.wait_for_messages(email, 1, timeout=60)
    assert len(arrived) == 1
    time.sleep(5)  # any duplicate would come within the next retry interval
    assert len(mailpit.messages_to(email)) == 1
