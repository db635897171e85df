"""Auth routes. Commands the API answers with 202 or a short verdict (register, resend, verify)
go to actors over RabbitMQ; login, refresh and logout run their handler on a thread here, since
the client needs the tokens in the answer; `/me` reads the replica."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from shop.actors.auth import AuthActors
from shop.db import auth as db
from shop.db.unit_of_work import UnitOfWork
from shop.domain.auth import InvalidEmail, check_password_policy, looks_like_code, normalize_email
from shop.domain.clock import Clock
from shop.handlers.auth import (
    AccessTokenIssuer,
    AuthPolicy,
    Login,
    LoginThrottle,
    TokenPair,
    handle_login,
    handle_logout,
    handle_refresh,
    pending_password_matches,
)
from shop.http.auth import require_principal
from shop.http.clients import client_of
from shop.http.commands import CommandBus, answered
from shop.http.errors import ApiError
from shop.http.freshness import WriteFreshness
from shop.http.validation import valid_body
from shop.security.passwords import hash_password

T = TypeVar("T")


@dataclass
class AuthRoutes:
    actors: AuthActors
    commands: CommandBus
    primary: ConnectionPool  # handlers that write, on threads
    replica: AsyncConnectionPool  # queries
    primary_async: AsyncConnectionPool  # queries that must see the caller's own fresh write
    reads: WriteFreshness  # the replica, or the primary while the replica is away
    policy: AuthPolicy
    clock: Clock
    issuer: AccessTokenIssuer
    throttle: LoginThrottle

    async def _blocking(self, fn: Callable[..., T], *args: Any) -> T:
        return await self.commands.blocking(fn, *args)

    # --- commands through actors -----------------------------------------------------------

    async def register(self, request: web.Request) -> web.Response:
        body = await valid_body(request)
        email = normalize_email(body["email"])
        password = body["password"]
        check_password_policy(password)  # the schema says as much; the rule is the domain's
        # Hashed here so the password itself never reaches the broker's disk. Asked here too, where
        # the password is known: is it the one an unverified account of this address already has?
        # (Then this registration is a repeat, not a rival one; see handle_register.)
        password_hash = await self._blocking(hash_password, password)
        same = await self._blocking(pending_password_matches, email, password, UnitOfWork(self.primary))
        await self.commands.send(
            self.actors.register, email=email, password_hash=password_hash, same_password=same
        )
        return web.json_response({"status": "verification_sent"}, status=202)

    async def resend(self, request: web.Request) -> web.Response:
        email = normalize_email((await valid_body(request))["email"])
        answer = await self.commands.ask(self.actors.resend_code, email=email)
        retry_after = int(answer["retry_after"]) if answer else 0
        if retry_after:
            raise ApiError(
                429,
                "resend_too_soon",
                f"a code was sent less than a minute ago; retry in {retry_after} s",
                {"Retry-After": str(retry_after)},
            )
        return web.json_response({"status": "verification_sent"}, status=202)

    async def verify(self, request: web.Request) -> web.Response:
        body = await valid_body(request)
        raw_email, code = body["email"], body["code"]
        try:
            email = normalize_email(raw_email)
        except InvalidEmail:
            email = ""
        if not email or not looks_like_code(code):
            raise _invalid_code()
        # Optional: the password the account gets. Required when the address was registered more
        # than once with different passwords before it was verified (see handle_register).
        password = body.get("password")
        password_hash = None
        if password is not None:
            check_password_policy(password)
            password_hash = await self._blocking(hash_password, password)
        answer = answered(
            await self.commands.ask(
                self.actors.verify_email, email=email, code=code, password_hash=password_hash
            ),
            "verification is taking too long; try again",
        )
        if answer.get("password_required"):
            raise ApiError(
                400,
                "password_required",
                "this address was registered more than once, with different passwords, before it was"
                " verified: send the code again with the password the account is to have",
            )
        if not answer["verified"]:
            raise _invalid_code()
        return web.json_response({"status": "verified"})

    # --- tokens ------------------------------------------------------------------------------

    async def login(self, request: web.Request) -> web.Response:
        body = await valid_body(request)
        password = body["password"]
        email = body["email"].strip().lower()  # a malformed one simply matches no account
        # The client as the rate limiter counts it: behind a proxy, request.remote is the proxy.
        command = Login(email, password, client_of(request))
        pair = await self._blocking(
            handle_login,
            command,
            UnitOfWork(self.primary),
            self.policy,
            self.clock,
            self.issuer,
            self.throttle,
        )
        return _token_response(pair)

    async def refresh(self, request: web.Request) -> web.Response:
        token = (await valid_body(request))["refresh_token"]
        pair = await self._blocking(
            handle_refresh, token, UnitOfWork(self.primary), self.policy, self.clock, self.issuer
        )
        return _token_response(pair)

    async def logout(self, request: web.Request) -> web.Response:
        token = (await valid_body(request))["refresh_token"]
        await self._blocking(handle_logout, token, UnitOfWork(self.primary), self.clock)
        return web.Response(status=204)

    # --- queries -----------------------------------------------------------------------------

    async def me(self, request: web.Request) -> web.Response:
        principal = require_principal(request)
        async with self.reads.connection(None, self.replica, self.primary_async) as conn:
            user = await db.user_by_id_async(conn, principal.user_id)
        # A valid token means a verified account: if the replica says otherwise (or has no row
        # yet), it lags behind a fresh verification, so ask the primary (read-your-writes).
        if user is None or user.verified_at is None:
            async with self.primary_async.connection() as conn:
                user = await db.user_by_id_async(conn, principal.user_id)
        if user is None:
            raise ApiError(404, "not_found", "the account no longer exists")
        return web.json_response(
            {
                "id": str(user.id),
                "email": user.email,
                "roles": user.roles,
                "verified": user.verified_at is not None,
                "created_at": user.created_at.isoformat(),
            }
        )


def _invalid_code() -> ApiError:
    return ApiError(400, "invalid_code", "the code is wrong, expired or used up; ask for a new one")


def _token_response(pair: TokenPair) -> web.Response:
    body = {
        "access_token": pair.access_token,
        "refresh_token": pair.refresh_token,
        "token_type": "Bearer",
        "expires_in": pair.expires_in,
    }
    # Tokens must never be cached by anything between us and the client (RFC 6749 §5.1).
    return web.json_response(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})
