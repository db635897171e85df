"""The `shop` command: migrations, topics and every process of the stack."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Mapping, Sequence

from shop.settings import CONTEXTS, Settings, SettingsError

log = logging.getLogger("shop.cli")

PROCESSES = ("gateway", "workers", "streams", "relay")


def _queues(value: str) -> list[str]:
    return [q.strip() for q in value.split(",") if q.strip()]


def _worker_pool(value: str) -> tuple[str, list[str]]:
    """`commands=auth,orders,products` -> ("commands", ["auth", "orders", "products"])."""
    name, sep, queues = value.partition("=")
    if not sep or not name.strip() or not _queues(queues):
        raise argparse.ArgumentTypeError(f"{value!r}: expected NAME=QUEUE[,QUEUE...], e.g. mail=mail")
    return name.strip(), _queues(queues)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shop",
        description="Event-driven e-commerce backend. Configuration comes from SHOP_* environment "
        "variables (see docs/local-stack.md); defaults fit the local stack of `make up`.",
    )
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    migrate = verbs.add_parser(
        "migrate",
        help="apply pending SQL migrations to each context's primary database",
        description="Apply shop/db/migrations/<context>/NNNN_*.sql in order, recording each in "
        "schema_migrations. Safe to rerun: applied files are skipped.",
    )
    migrate.add_argument(
        "--context", choices=CONTEXTS, action="append", help="only this database (repeatable; default: all)"
    )

    verbs.add_parser(
        "topics",
        help="create the project's Kafka topics with their partition counts",
        description="Create missing Kafka topics and grow any with too few partitions. Safe to rerun.",
    )

    admin = verbs.add_parser(
        "admin",
        help="grant or revoke the admin role",
        description="Grant or revoke the admin role of an account, by email. Takes effect at the "
        "account's next login or token refresh.",
    )
    admin_actions = admin.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action in ("grant", "revoke"):
        action_parser = admin_actions.add_parser(
            action, help=f"{action} the admin role", description=f"{action.capitalize()} the admin role."
        )
        action_parser.add_argument("email", help="the account's email address")

    replay = verbs.add_parser(
        "replay",
        help="rebuild a projection from its events and compare",
        description="Rebuild the projection from the event stream into a scratch table, print every "
        "difference with the live projection and exit 1 if there is any; --apply replaces the projection.",
    )
    replay.add_argument("projection", choices=["products"], help="the projection to rebuild")
    replay.add_argument("--apply", action="store_true", help="replace the live projection with the rebuild")

    keys = verbs.add_parser(
        "keys",
        help="manage the keys that sign access tokens",
        description="Rotation: `shop keys new KID` adds a key to SHOP_JWT_KEYS_DIR. Gateways started "
        "after that sign with the newest key (by file name) and still verify and publish the old ones; "
        "delete the old file once every token it signed has expired (SHOP_ACCESS_TOKEN_TTL).",
    )
    key_actions = keys.add_subparsers(dest="action", required=True, metavar="ACTION")
    new_key = key_actions.add_parser(
        "new", help="write a new Ed25519 signing key", description="Write KID.pem."
    )
    new_key.add_argument("kid", help="key id, e.g. the date: 2026-11-25")

    health_check = verbs.add_parser(
        "health",
        help="a container's health check: does its `shop run PROCESS` answer /healthz",
        description="GET /healthz of PROCESS on its port (--port, else its SHOP_*_PORT) on the loopback "
        "with a 2 s timeout: exit 0 on 200, 1 otherwise; `all` asks every process `shop run all` starts. "
        "Give it the PROCESS and --port of the container's `shop run` (the image's HEALTHCHECK asks the "
        "gateway, its default command; ops/swarm/stack.yml gives each service its own).",
    )
    health_check.add_argument("process", choices=(*PROCESSES, "all"), help="the process `shop run` runs")
    health_check.add_argument("--port", type=int, help="the --port given to `shop run PROCESS`")

    show_settings = verbs.add_parser(
        "settings",
        help="print the effective settings, secrets hidden",
        description="Print the effective SHOP_* settings as JSON with passwords hidden; --shell prints "
        "the host and ports they expect the shop's processes and dependencies on, as the SHOP_* "
        "variables that set them (ops/local/lib.sh takes the local stack's defaults from it).",
    )
    show_settings.add_argument(
        "--shell", action="store_true", help="the host and ports, one NAME=VALUE a line, instead of JSON"
    )

    run = verbs.add_parser(
        "run",
        help="run one process of the stack, or all of them",
        description="Run one process in the foreground; `all` supervises every one.",
    )
    processes = run.add_subparsers(dest="process", required=True, metavar="PROCESS")

    def process(name: str, summary: str, description: str, port: str) -> argparse.ArgumentParser:
        parser = processes.add_parser(name, help=summary, description=description)
        parser.add_argument("--port", type=int, help=f"{port} instead of SHOP_{name.upper()}_PORT")
        return parser

    process(
        "gateway",
        "the HTTP gateway",
        "The aiohttp gateway on SHOP_GATEWAY_PORT (default 8080).",
        "listen on this port",
    )
    workers = process(
        "workers",
        "dramatiq actors on RabbitMQ",
        "Dramatiq worker threads consuming RabbitMQ queues; health on SHOP_WORKERS_PORT.",
        "health/metrics port",
    )
    workers.add_argument(
        "--queues",
        type=_queues,
        default=[],
        help="comma-separated queues to consume (default: every declared queue)",
    )
    workers.add_argument("--threads", type=int, default=8, help="worker threads (default 8)")
    process(
        "streams",
        "Kafka stream agents",
        "The Kafka stream agents; health on SHOP_STREAMS_PORT.",
        "health/metrics port",
    )
    process(
        "relay",
        "the outbox relay to Kafka",
        "Publishes committed outbox rows to Kafka; health on SHOP_RELAY_PORT.",
        "health/metrics port",
    )

    all_processes = processes.add_parser(
        "all",
        help="every process under one supervisor",
        description="Run gateway, workers, streams and relay; restart any that dies; "
        "Ctrl-C or SIGTERM stops them all.",
    )
    all_processes.add_argument(
        "--worker-pool",
        dest="worker_pools",
        type=_worker_pool,
        action="append",
        default=[],
        metavar="NAME=QUEUES",
        help="a workers process `workers-NAME` for these comma-separated queues, instead of one for every"
        " queue (repeatable, e.g. --worker-pool commands=auth,orders,products --worker-pool mail=mail"
        " --worker-pool timers=timers); the n-th pool's health port is SHOP_WORKERS_PORT + n",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Before bootstrap, whose imports take ~0.3 s of CPU (at every health check) and need the venv
    # (ops/local/lib.sh asks for the settings before `make` has made it).
    if args.verb == "health":
        return health(os.environ, args.process, args.port)
    if args.verb == "settings":
        return _print_settings(os.environ, args.shell)
    from shop import bootstrap  # after parsing, so `--help` works without any dependency up

    try:
        settings = bootstrap.load_settings()
    except SettingsError as exc:
        print(f"shop: {exc}", file=sys.stderr)
        return 2

    if args.verb == "migrate":
        from shop.db.migrate import MigrationError, migrate_all

        contexts = args.context or list(CONTEXTS)
        try:
            applied = migrate_all({c: settings.databases[c].primary_url for c in contexts})
        except MigrationError as exc:
            print(f"shop migrate: {exc}", file=sys.stderr)
            return 1
        for context, migrations in applied.items():
            names = ", ".join(f"{m.version:04d}_{m.name}" for m in migrations) or "up to date"
            print(f"{context}: {names}")
        return 0
    if args.verb == "replay":
        from shop.handlers.replay import replay_products

        count, differences = replay_products(settings.databases["catalog"].primary_url, args.apply)
        for line in differences:
            print(line)
        if not differences:
            print(f"products: {count} rebuilt from their events; no difference")
            return 0
        if args.apply:
            print(f"products: {len(differences)} difference(s) found and replaced by the rebuild")
            return 0
        print(f"products: {len(differences)} difference(s); run with --apply to replace the projection")
        return 1
    if args.verb == "keys":
        from pathlib import Path

        from shop.security.keys import KeyringError, generate_key_file

        try:
            path = generate_key_file(Path(settings.auth.keys_dir), args.kid)
        except KeyringError as exc:
            print(f"shop keys new: {exc}", file=sys.stderr)
            return 1
        print(f"wrote {path}; restart the gateways to sign with it")
        return 0
    if args.verb == "admin":
        return _admin(args.action, args.email, settings)
    if args.verb == "topics":
        from confluent_kafka.admin import AdminClient

        from shop.streams.topics import ensure_topics

        changes = ensure_topics(
            AdminClient(bootstrap.kafka_config(settings)),
            replication_factor=settings.kafka_replication_factor,
        )
        print("\n".join(changes) if changes else "topics up to date")
        return 0
    return _run(args, settings)


def _print_settings(env: Mapping[str, str], shell: bool) -> int:
    try:
        settings = Settings.from_env(env)
    except SettingsError as exc:
        print(f"shop: {exc}", file=sys.stderr)
        return 2
    if shell:
        print("\n".join(f"{name}={value}" for name, value in settings.addresses().items()))
    else:
        print(json.dumps(settings.public_view(), indent=2))
    return 0


def health(env: Mapping[str, str], process: str, port: int | None = None, timeout: float = 2.0) -> int:
    """Docker runs a HEALTHCHECK beside the container's process with the container's environment, so
    the settings (and ports) are that process's; what its command line says (the process, a --port)
    the health check's own command repeats. Exit codes are Docker's: 0 healthy, 1 unhealthy (never 2,
    which Docker reserves)."""
    import time
    import urllib.error
    import urllib.request
    from http.client import HTTPException

    try:
        settings = Settings.from_env(env)
    except SettingsError as exc:
        print(f"shop health: {exc}", file=sys.stderr)
        return 1
    if process == "all" and port is not None:
        print("shop health: --port names the port of one process, not of `all`", file=sys.stderr)
        return 1
    ports = settings.process_ports()
    targets = ports if process == "all" else {process: ports[process] if port is None else port}
    # A wildcard bind answers on the loopback; any other address is where the process listens.
    host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(settings.host, settings.host)
    netloc = f"[{host}]" if ":" in host else host
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through HTTP_PROXY
    deadline = time.monotonic() + timeout
    for name, port in targets.items():
        url = f"http://{netloc}:{port}/healthz"
        try:
            with opener.open(url, timeout=max(deadline - time.monotonic(), 0.05)) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except (OSError, HTTPException) as exc:
            reason = getattr(exc, "reason", None) or exc
            print(f"shop health: {name}: {url}: {reason}", file=sys.stderr)
            return 1
        if status != 200:
            print(f"shop health: {name}: {url} answered {status}", file=sys.stderr)
            return 1
    print(f"shop health: {', '.join(targets)} healthy")
    return 0


def _admin(action: str, raw_email: str, settings: Settings) -> int:
    import psycopg

    from shop.db.auth import grant_role, revoke_role
    from shop.db.connections import primary_options
    from shop.domain.auth import ADMIN_ROLE, InvalidEmail, normalize_email

    try:
        email = normalize_email(raw_email)
    except InvalidEmail:
        print(f"shop admin {action}: {raw_email!r} is not an email address", file=sys.stderr)
        return 2
    change = grant_role if action == "grant" else revoke_role
    url = settings.databases["auth"].primary_url
    with psycopg.connect(url, **primary_options(url)) as conn:
        found = change(conn, email, ADMIN_ROLE)
    if not found:
        print(f"shop admin {action}: no account with email {email}", file=sys.stderr)
        return 1
    print(f"{email}: admin role {'granted' if action == 'grant' else 'revoked'}")
    return 0


def _run(args: argparse.Namespace, settings: Settings) -> int:
    if args.process != "all":  # the supervisor only starts the others
        from shop.observability.logs import set_service
        from shop.observability.tracing import configure_tracing

        set_service(os.environ.get("OTEL_SERVICE_NAME") or f"shop-{args.process}")
        configure_tracing(args.process)  # before any database or Redis connection opens
    if args.process == "gateway":
        from shop.processes.gateway import run_gateway

        return run_gateway(settings, args.port)
    if args.process == "workers":
        from shop.processes.workers import run_workers

        return run_workers(settings, args.queues, args.threads, args.port)
    if args.process == "streams":
        from shop.processes.streams import run_streams

        return run_streams(settings, args.port)
    if args.process == "relay":
        from shop.processes.relay import run_relay

        return run_relay(settings, args.port)
    from shop.processes.supervisor import run_all, shop_program

    programs = [shop_program(name) for name in PROCESSES if not (name == "workers" and args.worker_pools)]
    for n, (pool, queues) in enumerate(args.worker_pools):
        port = str(settings.workers_port + n)
        programs.append(
            shop_program("workers", "--queues", ",".join(queues), "--port", port, name=f"workers-{pool}")
        )
    return run_all(programs)
