"""Auth actors: thin entry points that decode a message, call one handler and encode its answer.

The gateway waits for `resend` and `verify` answers through the Redis result backend; `register`
has nothing to answer (the API says 202 whatever happens), so it stores no result. Each is done
once per message (shop.actors.commands.answer_once): a retry after its commit answers again what it
answered, without sending a second email or counting a second attempt.
"""

from __future__ import annotations

from dataclasses import dataclass

import dramatiq

from shop.actors.commands import answer_once, command_actor, this_message
from shop.dependencies import Dependencies
from shop.handlers.auth import (
    Register,
    ResendCode,
    Verification,
    VerifyEmail,
    handle_register,
    handle_resend,
    handle_verify,
)
from shop.names import AUTH_QUEUE

QUEUE = AUTH_QUEUE


@dataclass(frozen=True)
class AuthActors:
    register: dramatiq.Actor[..., None]
    resend_code: dramatiq.Actor[..., dict[str, int]]
    verify_email: dramatiq.Actor[..., dict[str, bool]]


def declare(broker: dramatiq.Broker, needs: Dependencies) -> AuthActors:
    def register(email: str, password_hash: str, same_password: bool = False) -> None:
        command = Register(email, password_hash, same_password)
        answer_once(
            needs.unit_of_work("auth"),
            "register",
            this_message(),
            lambda uow: handle_register(command, uow, needs.auth_policy, needs.clock),
        )

    def resend_code(email: str) -> dict[str, int]:
        command = ResendCode(email)
        retry_after = answer_once(
            needs.unit_of_work("auth"),
            "resend_code",
            this_message(),
            lambda uow: handle_resend(
                command, uow, needs.auth_policy, needs.clock, needs.address_cooldowns()
            ),
        )
        return {"retry_after": int(retry_after)}

    def verify_email(email: str, code: str, password_hash: str | None = None) -> dict[str, bool]:
        command = VerifyEmail(email, code, password_hash)
        outcome = answer_once(
            needs.unit_of_work("auth"),
            "verify_email",
            this_message(),
            lambda uow: handle_verify(command, uow, needs.auth_policy, needs.clock).value,
        )
        return {
            "verified": outcome == Verification.VERIFIED.value,
            "password_required": outcome == Verification.PASSWORD_REQUIRED.value,
        }

    return AuthActors(
        register=command_actor(broker, QUEUE, store_results=False)(register),
        resend_code=command_actor(broker, QUEUE)(resend_code),
        verify_email=command_actor(broker, QUEUE)(verify_email),
    )
