"""Typed answers: an actor's refusal crosses the bus as its rule's code and comes back as the
API's error for that code, the same one the rule raised in the gateway becomes; a late answer is
None, or the route's 503."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any
from uuid import UUID, uuid4

import pytest
from dramatiq.results import ResultTimeout

from shop.domain import auth as auth_rules
from shop.domain import idempotency
from shop.domain import orders as order_rules
from shop.domain import products as catalog_rules
from shop.http.commands import CommandBus, ContextCommands, answered
from shop.http.errors import DOMAIN_ERRORS, ERROR_STATUS, ApiError, refused
from shop.http.idempotency import KeyedRequest

# Every error of the domain, with the HTTP status it has always had.
STATUS_OF: dict[type[Exception], int] = {
    auth_rules.AuthRuleError: 400,
    auth_rules.InvalidEmail: 422,
    auth_rules.InvalidPassword: 422,
    auth_rules.InvalidCredentials: 401,
    auth_rules.EmailNotVerified: 403,
    auth_rules.TooManyLoginAttempts: 429,
    auth_rules.InvalidRefreshToken: 401,
    auth_rules.RefreshTokenReused: 401,  # a grandchild: its parent's status
    catalog_rules.InvalidProduct: 422,
    catalog_rules.ProductNotFound: 404,
    catalog_rules.DuplicateSku: 409,
    catalog_rules.VersionConflict: 412,
    catalog_rules.StockBelowReserved: 409,
    catalog_rules.InsufficientStock: 409,
    idempotency.IdempotencyError: 400,
    idempotency.InvalidIdempotencyKey: 400,
    idempotency.IdempotencyKeyReused: 422,
    order_rules.OrderRuleError: 422,
    order_rules.InvalidOrder: 422,
    order_rules.UnknownProduct: 422,
    order_rules.InvalidTransition: 409,
    order_rules.OrderNotFound: 404,
    order_rules.StockNotReserved: 409,
    order_rules.TooManyUnpaidOrders: 409,
}


def _all_errors() -> set[type[Exception]]:
    found: set[type[Exception]] = set()
    todo: list[type[Exception]] = list(DOMAIN_ERRORS)
    while todo:
        cls = todo.pop()
        found.add(cls)
        todo.extend(cls.__subclasses__())
    return found


def test_every_domain_error_has_a_code_and_a_known_status() -> None:
    # CatalogError is never raised itself: its code is its InvalidProduct's.
    errors = _all_errors() - {catalog_rules.CatalogError}
    assert errors == set(STATUS_OF)
    for cls, status in STATUS_OF.items():
        code = cls.code  # type: ignore[attr-defined]
        assert code, cls
        assert ERROR_STATUS.get(code, 400) == status, cls


def test_a_code_names_one_status() -> None:
    # Two rules may share a code ("not_found"), never with two statuses.
    statuses: dict[str, set[int]] = {}
    for cls, status in STATUS_OF.items():
        statuses.setdefault(cls.code, set()).add(status)  # type: ignore[attr-defined]
    assert {code: s for code, s in statuses.items() if len(s) > 1} == {}


def test_a_refusal_is_the_api_error_of_its_code() -> None:
    error = refused("version_conflict", "the product is at version 4")
    assert (error.status, error.code, error.message) == (
        412,
        "version_conflict",
        "the product is at version 4",
    )
    assert refused("some_new_rule", "no").status == 400


class _Message:
    def __init__(self, answer: Any) -> None:
        self._answer = answer

    def get_result(self, block: bool, timeout: int) -> Any:
        if isinstance(self._answer, BaseException):
            raise self._answer
        return self._answer


class _Actor:
    actor_name = "fake_actor"

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.sent: list[dict[str, Any]] = []

    def send(self, **kwargs: Any) -> _Message:
        self.sent.append(kwargs)
        return _Message(self.answer)


@pytest.fixture
def bus() -> CommandBus:
    return CommandBus(ThreadPoolExecutor(1), timeout=1)


async def test_ask_answers_what_the_actor_answered(bus: CommandBus) -> None:
    actor: Any = _Actor({"order": {"id": "x"}})
    assert await bus.ask(actor, order_id="x") == {"order": {"id": "x"}}
    assert actor.sent == [{"order_id": "x"}]


async def test_ask_raises_a_refusal_as_its_api_error(bus: CommandBus) -> None:
    for cls, status in STATUS_OF.items():
        code = cls.code  # type: ignore[attr-defined]
        actor: Any = _Actor({"error": {"code": code, "message": f"refused: {code}"}})
        with pytest.raises(ApiError) as raised:
            await bus.ask(actor)
        assert (raised.value.status, raised.value.code, raised.value.message) == (
            status,
            code,
            f"refused: {code}",
        )


async def test_a_late_answer_is_none_and_answered_makes_it_the_routes_503(bus: CommandBus) -> None:
    actor: Any = _Actor(ResultTimeout("late"))
    answer = await bus.ask(actor)
    assert answer is None
    with pytest.raises(ApiError) as raised:
        answered(answer, "the order did not answer in time; retry")
    error = raised.value
    assert (error.status, error.code, error.message) == (
        503,
        "command_timeout",
        "the order did not answer in time; retry",
    )
    assert error.headers == {"Retry-After": "1"}
    assert answered({"verified": True}, "late") == {"verified": True}


class _Locks:
    def __init__(self) -> None:
        self.held: list[KeyedRequest] = []

    async def ask_once(self, keyed: KeyedRequest, ask: Any) -> Any:
        self.held.append(keyed)
        return await ask()


class _Freshness:
    def __init__(self) -> None:
        self.remembered: list[tuple[UUID, str]] = []

    async def remember(self, user_id: UUID, lsn: str) -> None:
        self.remembered.append((user_id, lsn))


def _context(bus: CommandBus) -> tuple[ContextCommands, _Locks, _Freshness]:
    locks, freshness = _Locks(), _Freshness()
    return ContextCommands(bus, locks, freshness), locks, freshness  # type: ignore[arg-type]


async def test_a_write_remembers_its_position_for_the_caller(bus: CommandBus) -> None:
    commands, locks, freshness = _context(bus)
    caller = uuid4()
    actor: Any = _Actor({"order": {"id": "x"}, "commit_lsn": "0/16B3748"})
    # The actor's own `user_id` argument is no clash with the caller.
    answer = await commands.ask(caller, actor, None, user_id=str(caller))
    assert answer == {"order": {"id": "x"}, "commit_lsn": "0/16B3748"}
    assert actor.sent == [{"user_id": str(caller)}]
    assert freshness.remembered == [(caller, "0/16B3748")]
    assert locks.held == []


async def test_a_keyed_write_is_asked_under_its_lock(bus: CommandBus) -> None:
    commands, locks, freshness = _context(bus)
    caller = uuid4()
    keyed = KeyedRequest(caller, "key-1", "hash")
    actor: Any = _Actor({"product": {"id": "p"}, "commit_lsn": None})
    assert await commands.ask(caller, actor, keyed, delta=1) == {"product": {"id": "p"}, "commit_lsn": None}
    assert locks.held == [keyed]
    assert freshness.remembered == []  # no position to remember


async def test_a_refused_or_late_write_remembers_nothing(bus: CommandBus) -> None:
    commands, _, freshness = _context(bus)
    refusing: Any = _Actor({"error": {"code": "invalid_transition", "message": "already paid"}})
    with pytest.raises(ApiError) as raised:
        await commands.ask(uuid4(), refusing, None)
    assert (raised.value.status, raised.value.code) == (409, "invalid_transition")
    late: Any = _Actor(ResultTimeout("late"))
    assert await commands.ask(uuid4(), late, None) is None
    assert freshness.remembered == []
