"""The clients of a chaos run: registrations and orders, retried the way a careful client retries.

A client that gets no answer, a 5xx, or `409 idempotency_key_in_flight` tries again after a pause
(0.25 s doubling to 4 s) for up to RETRY_FOR seconds, with the same Idempotency-Key for a placement:
the server must turn every retry of one placement into the same order. Every such failed try is an
error the client saw, kept with its time so that the run can say which fault it fell into.

An order: place it (1–3 units of one of the products), wait until its stock is settled, then pay
it (60 %), cancel it (15 %) or leave it to expire (25 %).
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from harness.http import api_headers

RETRY_FOR = 90.0
REQUEST_TIMEOUT = 15.0
PASSWORD = "correct horse battery staple"


@dataclass
class ClientError:
    at: float  # time.monotonic()
    what: str  # e.g. "POST /orders 503 command_failed", "GET /orders/{id} ClientConnectorError"


@dataclass
class Operation:
    kind: str  # "register" or "order"
    started: float
    finished: float | None = None
    ok: bool = False
    outcome: str = ""  # for orders: paid, cancelled, left, out_of_stock, or what went wrong
    email: str | None = None
    user_id: str | None = None
    key: str | None = None  # the Idempotency-Key of a placement
    order_id: str | None = None
    answered_2xx: bool = False  # the placement was answered 201, or 202 and then found


@dataclass
class Customer:
    user_id: str
    email: str
    token: str


@dataclass
class Workload:
    base: str
    customers: list[Customer]
    products: list[str]
    domain: str  # every address of the run is @domain
    seed: int = 1
    operations: list[Operation] = field(default_factory=list)
    errors: list[ClientError] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Workload:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0),
            timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT),
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._session is not None
        await self._session.close()

    async def one(self, i: int) -> bool:
        """Operation i of the open loop: about one registration for every four orders."""
        if self._rng.random() < 0.2:
            operation = Operation("register", time.monotonic())
            self.operations.append(operation)
            await self._register(operation, i)
        else:
            customer = self._rng.choice(self.customers)
            operation = Operation(
                "order", time.monotonic(), user_id=customer.user_id, key=f"chaos-{uuid.uuid4()}"
            )
            self.operations.append(operation)
            await self._order(operation, customer)
        operation.finished = time.monotonic()
        return operation.ok

    # --- one request, retried ----------------------------------------------------------------------

    async def _send(
        self,
        method: str,
        path: str,
        label: str,
        body: object = None,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        also_retry: tuple[str, ...] = (),
    ) -> tuple[int, Any]:
        """(status, JSON body) of the first answer that is not worth retrying; (0, None) when the
        client gave up after RETRY_FOR seconds. `also_retry`: error codes to wait out, not errors."""
        assert self._session is not None
        sent_headers = api_headers(token, headers)
        deadline = time.monotonic() + RETRY_FOR
        pause = 0.25
        while True:
            try:
                async with self._session.request(
                    method, self.base + path, json=body, headers=sent_headers
                ) as r:
                    answer = await r.json(content_type=None) if r.content_length != 0 else None
                    status = r.status
            except (TimeoutError, aiohttp.ClientError) as exc:
                self.errors.append(ClientError(time.monotonic(), f"{method} {label} {type(exc).__name__}"))
            else:
                code = (answer or {}).get("error", {}).get("code") if isinstance(answer, dict) else None
                if status < 500 and code != "idempotency_key_in_flight" and code not in also_retry:
                    return status, answer
                if status >= 500 or code == "idempotency_key_in_flight":
                    self.errors.append(ClientError(time.monotonic(), f"{method} {label} {status} {code}"))
            if time.monotonic() + pause > deadline:
                return 0, None
            await asyncio.sleep(pause)
            pause = min(pause * 2, 4.0)

    # --- the operations ----------------------------------------------------------------------------

    async def _register(self, operation: Operation, i: int) -> None:
        operation.email = f"new-{i}-{uuid.uuid4().hex[:8]}@{self.domain}"
        status, _ = await self._send(
            "POST",
            "/api/v1/auth/register",
            "/auth/register",
            {"email": operation.email, "password": PASSWORD},
        )
        operation.ok = status == 202
        operation.outcome = "registered" if operation.ok else f"register answered {status}"

    async def _order(self, operation: Operation, customer: Customer) -> None:
        body = {
            "items": [{"product_id": self._rng.choice(self.products), "quantity": self._rng.randint(1, 3)}]
        }
        assert operation.key is not None
        status, answer = await self._send(
            "POST", "/api/v1/orders", "/orders", body, customer.token, {"Idempotency-Key": operation.key}
        )
        if status == 201:
            operation.order_id = answer["id"]
        elif status == 202:  # still being placed: it is durable in RabbitMQ; its placement says
            placement = f"/api/v1/orders/placements/{answer['placement_id']}"
            deadline = time.monotonic() + RETRY_FOR
            while True:  # the placement redirects to the order once it exists (the session follows)
                status, answer = await self._send(
                    "GET", placement, "/orders/placements/{id}", token=customer.token
                )
                if status != 200 or "id" in (answer or {}) or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.25)
            if status != 200 or "id" not in (answer or {}):
                operation.outcome = f"placed (202) but never became an order: {status} {answer}"
                return
            operation.order_id = answer["id"]
        else:
            operation.outcome = f"place answered {status}"
            return
        operation.answered_2xx = True
        stock = await self._settled_stock(operation, customer)
        if stock is None:
            operation.outcome = "stock never settled"
            return
        if stock == "rejected":
            operation.ok, operation.outcome = True, "out_of_stock"
            return
        choice = self._rng.random()
        if choice < 0.6:
            await self._transition(operation, customer, "pay", {"payment_reference": f"psp-{operation.key}"})
        elif choice < 0.75:
            await self._transition(operation, customer, "cancel", None)
        else:
            operation.ok, operation.outcome = True, "left"

    async def _settled_stock(self, operation: Operation, customer: Customer) -> str | None:
        deadline = time.monotonic() + RETRY_FOR
        while time.monotonic() < deadline:
            status, answer = await self._send(
                "GET",
                f"/api/v1/orders/{operation.order_id}",
                "/orders/{id}",
                token=customer.token,
                also_retry=("not_found",),  # a replica that has not replayed the placement yet
            )
            if status == 200 and answer["stock"] != "reserving":
                return str(answer["stock"])
            await asyncio.sleep(0.3)
        return None

    async def _transition(self, operation: Operation, customer: Customer, verb: str, body: object) -> None:
        status, answer = await self._send(
            "POST",
            f"/api/v1/orders/{operation.order_id}/{verb}",
            f"/orders/{{id}}/{verb}",
            body,
            customer.token,
            also_retry=("stock_not_reserved", "command_timeout"),
        )
        code = (answer or {}).get("error", {}).get("code") if isinstance(answer, dict) else None
        if status == 200:
            operation.ok, operation.outcome = True, "paid" if verb == "pay" else "cancelled"
        elif status == 409 and code == "invalid_transition":
            # It expired first (or a retry of this very call had gone through): a fair end.
            operation.ok, operation.outcome = True, f"{verb}: already ended"
        else:
            operation.outcome = f"{verb} answered {status} {code}"
