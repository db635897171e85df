"""One typed settings object, read from `SHOP_*` environment variables.

Defaults point at the local stack that `make up` starts on 127.0.0.1, so a bare `shop run gateway`
works on a developer machine. Only `shop.bootstrap` calls `Settings.from_env`; everything else is
handed the object.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar
from urllib.parse import urlsplit

from shop.http.routing import LIMIT_GROUPS

CONTEXTS = ("auth", "catalog", "orders")
# The quota of each of the gateway's rate-limit groups (declared in shop/http/routing.py) where
# SHOP_RATE_LIMITS names none.
DEFAULT_RATE_LIMITS = "auth=600/60s,products=1200/60s,orders=60/60s"

_T = TypeVar("_T")

_URL_PASSWORD = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@/\s]+)@")


def redact(text: str) -> str:
    """Hide the password of every URL in `text` (`postgresql://u:secret@h` -> `postgresql://u:***@h`)."""
    return _URL_PASSWORD.sub(r"\g<scheme>\g<user>:***@", text)


class SettingsError(ValueError):
    """A SHOP_* variable holds a value that cannot be used."""


_BARE_NUMBER = re.compile(r"^\d+(?:\.\d+)?$")
_DURATION_PART = re.compile(r"(?P<amount>\d+(?:\.\d+)?)(?P<unit>ms|s|m|h|d)")
_COMPOUND_DURATION = re.compile(r"^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """`"90"`, `"90s"`, `"10m"`, `"4h"`, `"1h30m"`, `"1.5d"`, `"250ms"` -> seconds.

    A bare number is seconds. Parts of a compound duration are added up.
    """
    compact = text.strip()
    if _BARE_NUMBER.match(compact):
        return float(compact)
    if not _COMPOUND_DURATION.match(compact):
        raise ValueError(f"not a duration: {text!r} (use e.g. 30s, 10m, 4h, 1h30m, 1d)")
    return sum(float(m["amount"]) * _UNIT_SECONDS[m["unit"]] for m in _DURATION_PART.finditer(compact))


@dataclass(frozen=True)
class AuthSettings:
    jwt_issuer: str
    jwt_audience: str
    access_token_ttl: float
    refresh_token_ttl: float
    # Where signing keys live (PEM files, one per key id); the newest signs unless signing_kid says.
    keys_dir: str
    signing_kid: str | None
    # Development only: make a key when keys_dir is empty. Production turns this off and mounts
    # keys, so that no replica ever signs with a key of its own that the others do not know.
    generate_dev_key: bool
    # A PEM private key given directly (e.g. a Swarm secret), used instead of keys_dir when set.
    private_key_pem: str | None = field(repr=False)
    # Keyed hash for stored verification codes: a leaked table alone cannot be brute-forced offline.
    code_pepper: str = field(repr=False)
    login_failures_per_account_per_hour: int = 100
    login_failures_per_client_per_hour: int = 300


@dataclass(frozen=True)
class MailSettings:
    from_address: str
    smtp_timeout: float
    # 1 + max_retries attempts, waiting min_backoff * 2^n (capped at max_backoff, with jitter) between.
    max_retries: int
    min_backoff: float
    max_backoff: float


@dataclass(frozen=True)
class OrderSettings:
    # An unpaid order is cancelled this long after it was placed, a paid one completed (24 h by
    # default: docs/api.md#orders).
    ttl: float
    # Payment reminders, as delays after placement, strictly increasing and shorter than `ttl`.
    reminders: tuple[float, ...]
    # The sweeper fires a timer whose trigger message has not come this long after its due time.
    timer_grace: float
    # How often each sweeper looks for such timers.
    sweep_interval: float
    # What one customer may hold unpaid at once: PENDING orders, and units in them. Past either,
    # a new order is refused (409 too_many_unpaid_orders) until one is paid, cancelled or expired.
    max_unpaid_orders: int = 50
    max_unpaid_units: int = 50_000

    def __post_init__(self) -> None:
        """What the order timers rely on; each message names the variable that sets the field."""
        ttl, reminders = self.ttl, self.reminders
        if ttl <= 0:
            raise SettingsError(f"SHOP_ORDER_TTL must be longer than zero, got {ttl:g}s")
        if any(r <= 0 for r in reminders):
            raise SettingsError("SHOP_ORDER_REMINDERS: every reminder must come after the order is placed")
        if any(later <= earlier for earlier, later in itertools.pairwise(reminders)):
            raise SettingsError("SHOP_ORDER_REMINDERS must be strictly increasing, e.g. 4h,12h,22h")
        if reminders and reminders[-1] >= ttl:
            raise SettingsError(
                f"SHOP_ORDER_REMINDERS: the last reminder ({reminders[-1]:g}s) must come before"
                f" SHOP_ORDER_TTL ({ttl:g}s)"
            )
        if self.timer_grace <= 0 or self.sweep_interval <= 0:
            raise SettingsError("SHOP_TIMER_GRACE and SHOP_TIMER_SWEEP_INTERVAL must be longer than zero")
        if self.max_unpaid_orders < 1 or self.max_unpaid_units < 1:
            raise SettingsError(
                "SHOP_ORDER_MAX_UNPAID_ORDERS and SHOP_ORDER_MAX_UNPAID_UNITS must be at least 1"
            )


def _rate_limits(raw: str) -> dict[str, tuple[int, float]]:
    """`auth=300/60s,orders=120/1m` -> {"auth": (300, 60.0), "orders": (120, 60.0)}; groups not named
    keep their default."""
    limits = dict(_one_limit(p) for p in DEFAULT_RATE_LIMITS.split(","))
    for part in (p.strip() for p in raw.split(",")):
        if part:
            name, limit = _one_limit(part)
            limits[name] = limit
    if unlimited := [group for group in LIMIT_GROUPS if group not in limits]:
        raise SettingsError(f"SHOP_RATE_LIMITS: no quota for {', '.join(unlimited)}")
    return limits


def _one_limit(part: str) -> tuple[str, tuple[int, float]]:
    example = "expected GROUP=QUOTA/WINDOW, e.g. orders=60/60s"
    name, sep, rule = part.partition("=")
    quota, slash, window = rule.partition("/")
    name = name.strip()
    if not sep or not slash or name not in LIMIT_GROUPS:
        raise SettingsError(f"SHOP_RATE_LIMITS: {part!r}: {example}; groups: {', '.join(LIMIT_GROUPS)}")
    try:
        count, seconds = int(quota), parse_duration(window)
    except ValueError:
        raise SettingsError(f"SHOP_RATE_LIMITS: {part!r}: {example}") from None
    if count < 1 or seconds <= 0:
        raise SettingsError(f"SHOP_RATE_LIMITS: {part!r}: quota and window must be positive")
    return name, (count, seconds)


def _at_least_one(name: str, value: int) -> int:
    if value < 1:
        raise SettingsError(f"{name} must be at least 1, got {value}")
    return value


def _networks(raw: str) -> tuple[str, ...]:
    import ipaddress

    networks = []
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        try:
            networks.append(str(ipaddress.ip_network(part, strict=False)))
        except ValueError:
            raise SettingsError(f"SHOP_TRUSTED_PROXIES: {part!r} is not an address or a network") from None
    return tuple(networks)


def _port(url: str) -> str:
    """The port of the first address of a URL that may list several (`amqp://a:1,amqp://b:2`)."""
    try:
        return str(urlsplit(url.split(",")[0]).port or "")
    except ValueError:  # an IPv6 SHOP_HOST the default URLs do not bracket
        return ""


@dataclass(frozen=True)
class Database:
    """The primary (writes, fresh reads) and the streaming replica (queries) of one context."""

    primary_url: str
    replica_url: str


def with_secret_files(env: Mapping[str, str]) -> Mapping[str, str]:
    """`SHOP_X_FILE=/run/secrets/x` gives `SHOP_X` the file's content (one trailing newline dropped):
    Docker secrets, and any other way of keeping passwords and keys out of the environment. Setting
    both is refused, and so is a file that cannot be read."""
    if not any(name.startswith("SHOP_") and name.endswith("_FILE") for name in env):
        return env
    resolved = dict(env)
    for name, path in env.items():
        if not (name.startswith("SHOP_") and name.endswith("_FILE")) or not path:
            continue
        target = name[: -len("_FILE")]
        if env.get(target):
            raise SettingsError(f"set {target} or {name}, not both")
        try:
            with open(path, encoding="utf-8") as secret:
                content = secret.read()
        except OSError as exc:
            raise SettingsError(f"{name}: cannot read {path}: {exc.strerror}") from None
        resolved[target] = content[:-1] if content.endswith("\n") else content
    return resolved


@dataclass(frozen=True)
class Settings:
    host: str
    gateway_port: int
    workers_port: int
    streams_port: int
    relay_port: int
    databases: Mapping[str, Database]
    redis_url: str
    # The Redis URL names one node of a Redis Cluster (more are discovered; comma-separate seeds).
    redis_cluster: bool
    # One or more amqp:// URLs, comma-separated: the nodes of a RabbitMQ cluster, tried in order.
    rabbitmq_url: str
    # True: each replica URL is a standby server, and readiness checks that it is in recovery. False
    # when the replica URLs name a pool (pgpool-II) whose load balancing may answer from the primary.
    replica_is_standby: bool
    # Server-side prepared statements on the pools' and the relay's connections. Off behind pgpool-II
    # or PgBouncer (see shop.db.connections); on straight to PostgreSQL, where they save the planning.
    pg_prepared_statements: bool
    kafka_bootstrap: str
    kafka_replication_factor: int
    # Threads of `shop run streams` that run the agents; each partition's records stay on one.
    stream_threads: int
    # Sent outbox rows are deleted this long (seconds) after they were published, by the relay, and
    # commands' recorded answers this long after they were answered (a client's Idempotency-Key on
    # an admin write is remembered as long).
    outbox_retention: float
    smtp_host: str
    smtp_port: int
    max_body_bytes: int
    log_level: str
    log_format: str
    readiness_timeout: float
    # How long the gateway waits for an actor's answer where the API needs one.
    command_timeout: float
    orders: OrderSettings
    # {group: (requests, per seconds)} for the gateway's rate limits.
    rate_limits: Mapping[str, tuple[int, float]]
    # Peers whose X-Forwarded-For is believed (load balancers, HAProxy); none by default.
    trusted_proxies: tuple[str, ...]
    auth: AuthSettings
    mail: MailSettings
    # Where a person reads the development mail (Mailpit's web page): the storefront's sign-up page
    # links to it when set (var/stack.env sets it); unset in production, where mail really goes out.
    mailpit_url: str | None = None
    # Jaeger's query API (var/stack.env sets the stack's): an admin's view of an order's journey
    # reads the order's trace there; unset, that view answers 503 tracing_not_configured.
    trace_query_url: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        env = with_secret_files(env)
        host = env.get("SHOP_HOST", "127.0.0.1")

        def text(name: str, default: str) -> str:
            return env.get(name, default)

        def parsed(name: str, default: _T, parse: Callable[[str], _T], expected: str) -> _T:
            raw = env.get(name)
            if raw is None or raw == "":
                return default
            try:
                return parse(raw)
            except ValueError:
                raise SettingsError(f"{name} must be {expected}, got {raw!r}") from None

        def integer(name: str, default: int) -> int:
            return parsed(name, default, int, "an integer")

        def number(name: str, default: float) -> float:
            return parsed(name, default, float, "a number")

        def duration(name: str, default: str) -> float:
            raw = env.get(name) or default
            try:
                return parse_duration(raw)
            except ValueError as exc:
                raise SettingsError(f"{name}: {exc}") from None

        def durations(name: str, default: str) -> tuple[float, ...]:
            raw = env.get(name, default).strip()
            if raw.lower() in ("", "none"):
                return ()
            try:
                return tuple(parse_duration(part) for part in raw.split(","))
            except ValueError as exc:
                raise SettingsError(f"{name}: {exc}; expected a list like 4h,12h,22h") from None

        def flag(name: str, default: bool) -> bool:
            raw = env.get(name, "").strip().lower()
            if raw == "":
                return default
            if raw in ("1", "true", "yes", "on"):
                return True
            if raw in ("0", "false", "no", "off"):
                return False
            raise SettingsError(f"{name} must be true or false, got {raw!r}")

        def optional(name: str) -> str | None:
            return env.get(name) or None

        primary_port = integer("SHOP_PG_PRIMARY_PORT", 5432)
        replica_port = integer("SHOP_PG_REPLICA_PORT", 5433)
        databases = {
            ctx: Database(
                primary_url=text(
                    f"SHOP_{ctx.upper()}_DB_URL", f"postgresql://{ctx}:{ctx}@{host}:{primary_port}/{ctx}"
                ),
                replica_url=text(
                    f"SHOP_{ctx.upper()}_DB_REPLICA_URL",
                    f"postgresql://{ctx}:{ctx}@{host}:{replica_port}/{ctx}",
                ),
            )
            for ctx in CONTEXTS
        }
        log_format = text("SHOP_LOG_FORMAT", "json")
        if log_format not in ("text", "json"):
            raise SettingsError(f"SHOP_LOG_FORMAT must be 'text' or 'json', got {log_format!r}")
        return cls(
            host=host,
            gateway_port=integer("SHOP_GATEWAY_PORT", 8080),
            workers_port=integer("SHOP_WORKERS_PORT", 9101),
            streams_port=integer("SHOP_STREAMS_PORT", 9102),
            relay_port=integer("SHOP_RELAY_PORT", 9103),
            databases=databases,
            redis_url=text("SHOP_REDIS_URL", f"redis://{host}:{integer('SHOP_REDIS_PORT', 6379)}/0"),
            redis_cluster=flag("SHOP_REDIS_CLUSTER", False),
            replica_is_standby=flag("SHOP_PG_REPLICA_IS_STANDBY", True),
            pg_prepared_statements=flag("SHOP_PG_PREPARED_STATEMENTS", True),
            rabbitmq_url=text(
                "SHOP_RABBITMQ_URL", f"amqp://shop:shop@{host}:{integer('SHOP_RABBITMQ_PORT', 5672)}/shop"
            ),
            kafka_bootstrap=text("SHOP_KAFKA_BOOTSTRAP", f"{host}:{integer('SHOP_KAFKA_PORT', 9092)}"),
            kafka_replication_factor=integer("SHOP_KAFKA_REPLICATION_FACTOR", 1),
            stream_threads=_at_least_one("SHOP_STREAM_THREADS", integer("SHOP_STREAM_THREADS", 4)),
            outbox_retention=duration("SHOP_OUTBOX_RETENTION", "1d"),
            smtp_host=text("SHOP_SMTP_HOST", host),
            smtp_port=integer("SHOP_SMTP_PORT", 1025),
            max_body_bytes=integer("SHOP_MAX_BODY_BYTES", 1024 * 1024),
            log_level=text("SHOP_LOG_LEVEL", "INFO").upper(),
            log_format=log_format,
            readiness_timeout=number("SHOP_READINESS_TIMEOUT", 2.0),
            command_timeout=duration("SHOP_COMMAND_TIMEOUT", "5s"),
            rate_limits=_rate_limits(env.get("SHOP_RATE_LIMITS", "")),
            trusted_proxies=_networks(env.get("SHOP_TRUSTED_PROXIES", "")),
            orders=OrderSettings(
                ttl=duration("SHOP_ORDER_TTL", "24h"),
                reminders=durations("SHOP_ORDER_REMINDERS", "4h,12h,22h"),
                timer_grace=duration("SHOP_TIMER_GRACE", "60s"),
                sweep_interval=duration("SHOP_TIMER_SWEEP_INTERVAL", "10s"),
                max_unpaid_orders=integer("SHOP_ORDER_MAX_UNPAID_ORDERS", 50),
                max_unpaid_units=integer("SHOP_ORDER_MAX_UNPAID_UNITS", 50_000),
            ),
            auth=AuthSettings(
                jwt_issuer=text("SHOP_JWT_ISSUER", "shop"),
                jwt_audience=text("SHOP_JWT_AUDIENCE", "shop-api"),
                access_token_ttl=duration("SHOP_ACCESS_TOKEN_TTL", "15m"),
                refresh_token_ttl=duration("SHOP_REFRESH_TOKEN_TTL", "14d"),
                keys_dir=text("SHOP_JWT_KEYS_DIR", "var/keys"),
                signing_kid=optional("SHOP_JWT_SIGNING_KID"),
                generate_dev_key=flag("SHOP_JWT_GENERATE_DEV_KEY", True),
                private_key_pem=optional("SHOP_JWT_PRIVATE_KEY"),
                code_pepper=text("SHOP_AUTH_CODE_PEPPER", "development-only-pepper"),
                login_failures_per_account_per_hour=integer("SHOP_LOGIN_FAILURES_PER_ACCOUNT", 100),
                login_failures_per_client_per_hour=integer("SHOP_LOGIN_FAILURES_PER_CLIENT", 300),
            ),
            mail=MailSettings(
                from_address=text("SHOP_MAIL_FROM", "shop <no-reply@shop.test>"),
                smtp_timeout=duration("SHOP_SMTP_TIMEOUT", "10s"),
                max_retries=integer("SHOP_MAIL_MAX_RETRIES", 7),
                min_backoff=duration("SHOP_MAIL_MIN_BACKOFF", "5s"),
                max_backoff=duration("SHOP_MAIL_MAX_BACKOFF", "5m"),
            ),
            mailpit_url=optional("SHOP_MAILPIT_URL"),
            trace_query_url=optional("SHOP_TRACE_QUERY_URL"),
        )

    def process_ports(self) -> dict[str, int]:
        """Where each process of `shop run` serves its /healthz (and the gateway its API)."""
        return {
            "gateway": self.gateway_port,
            "workers": self.workers_port,
            "streams": self.streams_port,
            "relay": self.relay_port,
        }

    def addresses(self) -> dict[str, str]:
        """The host and the ports these settings expect the processes and their dependencies on, by
        the variables that set them one by one (`shop settings --shell`): read with no variable set,
        the defaults the local stack listens on (ops/local/lib.sh)."""
        database = self.databases[CONTEXTS[0]]  # by default every context's is on the same servers
        return {
            "SHOP_HOST": self.host,
            **{f"SHOP_{name.upper()}_PORT": str(port) for name, port in self.process_ports().items()},
            "SHOP_PG_PRIMARY_PORT": _port(database.primary_url),
            "SHOP_PG_REPLICA_PORT": _port(database.replica_url),
            "SHOP_REDIS_PORT": _port(self.redis_url),
            "SHOP_RABBITMQ_PORT": _port(self.rabbitmq_url),
            "SHOP_KAFKA_PORT": _port(f"kafka://{self.kafka_bootstrap}"),
            "SHOP_SMTP_PORT": str(self.smtp_port),
        }

    def public_view(self) -> dict[str, Any]:
        """Every setting with secrets hidden: safe to log or print."""
        view: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "databases":
                value = {
                    ctx: {"primary_url": redact(db.primary_url), "replica_url": redact(db.replica_url)}
                    for ctx, db in value.items()
                }
            elif f.name == "auth":
                value = {
                    **{k.name: getattr(value, k.name) for k in fields(value)},
                    "private_key_pem": "***" if value.private_key_pem else None,
                    "code_pepper": "***",
                }
            elif f.name in ("mail", "orders"):
                value = {k.name: getattr(value, k.name) for k in fields(value)}
            elif isinstance(value, str):
                value = redact(value)
            view[f.name] = value
        return view

    def __repr__(self) -> str:
        return f"Settings({self.public_view()!r})"
