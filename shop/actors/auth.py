"""Auth actors: thin entry points that decode a message, call one handler and encode its answer.

The gateway waits for `resend` and `verify` answers through the Redis result backend; `register`
has nothing to answer (the API says 202 whatever happens), so it stores no result. Each is done
once per message (shop.actors.commands.answer_once): a retry after its commit answers again what it
answered, without sending a second email or counting a second attempt.
"""

from __future__ import annotations

from shop import bootstrap
from shop.actors.commands import answer_once, command_actor, this_message
from shop.db.unit_of_work import UnitOfWork
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


def _uow() -> UnitOfWork:
    return UnitOfWork(bootstrap.primary_pool("auth"))


@command_actor(QUEUE, store_results=False)
def register(email: str, password_hash: str, same_password: bool = False) -> None:
    command = Register(email, password_hash, same_password)
    answer_once(
        _uow(),
        "register",
        this_message(),
        lambda uow: handle_register(command, uow, bootstrap.auth_policy(), bootstrap.utc_now),
    )


@command_actor(QUEUE)
def resend_code(email: str) -> dict[str, int]:
    command = ResendCode(email)
    retry_after = answer_once(
        _uow(),
        "resend_code",
        this_message(),
        lambda uow: handle_resend(
            command, uow, bootstrap.auth_policy(), bootstrap.utc_now, bootstrap.address_cooldowns()
        ),
    )
    return {"retry_after": int(retry_after)}


@command_actor(QUEUE)
def verify_email(email: str, code: str, password_hash: str | None = None) -> dict[str, bool]:
    command = VerifyEmail(email, code, password_hash)
    outcome = answer_once(
        _uow(),
        "verify_email",
        this_message(),
        lambda uow: handle_verify(command, uow, bootstrap.auth_policy(), bootstrap.utc_now).value,
    )
    return {
        "verified": outcome == Verification.VERIFIED.value,
        "password_required": outcome == Verification.PASSWORD_REQUIRED.value,
    }
