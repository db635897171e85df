"""What a template is rendered with, from what its message carries.

A verification email's message names its code record (`code_id`) instead of carrying the code: the
code is derived from the id with the server's pepper (`shop.domain.auth.code_for`) only here, just
before rendering, so it exists in no outbox row, queue or backup. Messages queued before that
change carry the `code` itself, which is used as it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from shop.domain.auth import code_for


class ContextResolver:
    def __init__(self, code_pepper: str) -> None:
        self._pepper = code_pepper

    def resolve(self, template: str, context: Mapping[str, Any]) -> Mapping[str, Any]:
        """The rendering context of a `template` email whose message carried `context`.

        Raises `ValueError` for a `code_id` that is not a UUID (a message that can never succeed).
        """
        if template != "verification_code" or "code" in context or "code_id" not in context:
            return context
        resolved = {name: value for name, value in context.items() if name != "code_id"}
        resolved["code"] = code_for(self._pepper, UUID(str(context["code_id"])))
        return resolved
