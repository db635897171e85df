"""Auth actors: thin entry points that decode a message, call one handler and encode its answer.

The gateway waits for `resend` and `verify` answers through the Redis result backend; `register`
has nothing to answer (the API says 202 whatever happens), so it stores no result.
"""

from __future__ import annotations

from shop import bootstrap
from shop.actors.commands import command_actor
from shop.db.unit_of_work import UnitOfWork
from shop.handlers.auth import (
    Register,
    ResendCode,
    VerifyEmail,
    handle_register,
    handle_resend,
    handle_verify,
)

QUEUE = "auth"


def _uow() -> UnitOfWork:
    return UnitOfWork(bootstrap.primary_pool("auth"))


@command_actor(QUEUE, store_results=False)
def register(email: str, password_hash: str) -> None:
    handle_register(Register(email, password_hash), _uow(), bootstrap.auth_policy(), bootstrap.utc_now)


@command_actor(QUEUE)
def resend_code(email: str) -> dict[str, int]:
    retry_after = handle_resend(
        ResendCode(email), _uow(), bootstrap.auth_policy(), bootstrap.utc_now, bootstrap.address_cooldowns()
    )
    return {"retry_after": retry_after}


@command_actor(QUEUE)
def verify_email(email: str, code: str) -> dict[str, bool]:
    verified = handle_verify(VerifyEmail(email, code), _uow(), bootstrap.auth_policy(), bootstrap.utc_now)
    return {"verified": verified}
