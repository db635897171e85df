"""What the token tests forge with: a clock they set by hand and the base64url pieces of a JWT, so
a token is built from exactly the bytes an attacker would send."""

from __future__ import annotations

import base64
import json
from typing import Any


class FakeClock:
    """Epoch seconds, as the token issuer and verifier read them; `now` is set by the test."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(obj: Any) -> str:
    """A JSON header or payload, encoded as one segment of a token."""
    return b64(json.dumps(obj).encode())
