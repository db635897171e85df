"""Auth actors: thin entry points that decode a message, call one handler and encode its answer.

The gateway waits for `resend` and `verify` answers through the Redis result backend; `register`
has nothing to answer (the API says 202 whatever happens), so it stores no result.
"""

from __future__ import annotations

import dramatiq

from shop import bootstrap
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
# Commands a client is waiting on: retry a transient failure (database restart) quickly, a few times.
MAX_RETRIES, MIN_BACKOFF_MS, MAX_BACKOFF_MS = 3, 200, 2_000


def _uow() -> UnitOfWork:
    return UnitOfWork(bootstrap.primary_pool("auth"))


@dramatiq.actor(
    queue_name=QUEUE, max_retries=MAX_RETRIES, min_backoff=MIN_BACKOFF_MS, max_backoff=MAX_BACKOFF_MS
)
def register(email: str, password_hash: str) -> None:
    handle_register(Register(email, password_hash), _uow(), bootstrap.auth_policy(), bootstrap.utc_now)


@dramatiq.actor(
    queue_name=QUEUE,
    store_results=True,
    max_retries=MAX_RETRIES,
    min_backoff=MIN_BACKOFF_MS,
    max_backoff=MAX_BACKOFF_MS,
)
def resend_code(email: str) -> dict[str, int]:
    retry_after = handle_resend(
        ResendCode(email), _uow(), bootstrap.auth_policy(), bootstrap.utc_now, bootstrap.address_cooldowns()
    )
    return {"retry_after": retry_after}


@dramatiq.actor(
    queue_name=QUEUE,
    store_results=True,
    max_retries=MAX_RETRIES,
    min_backoff=MIN_BACKOFF_MS,
    max_backoff=MAX_BACKOFF_MS,
)
def verify_email(email: str, code: str) -> dict[str, bool]:
    verified = handle_verify(VerifyEmail(email, code), _uow(), bootstrap.auth_policy(), bootstrap.utc_now)
    return {"verified": verified}
