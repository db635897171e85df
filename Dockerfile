# syntax=docker/dockerfile:1
#
# One image for every process of the shop; the command picks the process (ENTRYPOINT is `shop`):
#   docker run IMAGE                                   the gateway (CMD `run gateway`, port 8080)
#   docker run IMAGE run workers --queues orders       dramatiq workers (health and metrics on 9101)
#   docker run IMAGE run streams                       Kafka stream agents (9102)
#   docker run IMAGE run relay                         the outbox relay (9103)
#   docker run IMAGE migrate | topics                  one-shot jobs
#
# The health check asks the gateway, the default command's process. Another command brings its own:
# `docker run --health-cmd "shop health workers" IMAGE run workers ...` (its process, and the --port
# it is given, if any), `--no-healthcheck` for a one-shot job; ops/swarm/stack.yml does so per service.
#
# What the stack must set (the image cannot): SHOP_HOST=0.0.0.0, or the processes listen on the
# container's loopback only (the health check, which calls the loopback, would still pass). SHOP_HOST
# is also the host of every dependency address that is not given, so alongside it the stack sets each
# of them: SHOP_{AUTH,CATALOG,ORDERS}_DB_URL and _DB_REPLICA_URL, SHOP_REDIS_URL, SHOP_RABBITMQ_URL,
# SHOP_KAFKA_BOOTSTRAP, SHOP_SMTP_HOST. Signing keys come mounted in SHOP_JWT_KEYS_DIR (default
# /app/var/keys) or as SHOP_JWT_PRIVATE_KEY_FILE (a secret); passwords likewise as SHOP_*_FILE.
# Stop grace period: at least 20 s (the gateway drains for up to 10 s, `run all` waits 15 s per child).

# An exact patch release on Debian 12, the Debian of the development and CI machines. Both stages use
# it, so the venv's interpreter links are the same in the runtime stage. Refresh deliberately.
ARG PYTHON_IMAGE=python:3.11.17-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/venv

# Dependencies first, in a layer of their own that only a change of setup.cfg or constraints.txt
# rebuilds: the package's metadata (and its version, from shop/__init__.py) is all pip needs here.
# Every dependency has a manylinux wheel (psycopg-binary, confluent-kafka, jsonschema-rs,
# argon2-cffi-bindings, cryptography...): no compiler, no -dev package.
COPY constraints.txt setup.cfg pyproject.toml README.md ./
COPY shop/__init__.py shop/__init__.py
RUN /opt/venv/bin/pip install --no-cache-dir -c constraints.txt .

# The package itself, not editable: the wheel carries the SQL migrations and mail templates
# (setup.cfg [options.package_data]). Then pip and setuptools leave the venv: nothing runs them there,
# and they are 24 MB of its 157.
COPY shop shop
RUN /opt/venv/bin/pip install --no-cache-dir --no-deps --force-reinstall -c constraints.txt . \
    && /opt/venv/bin/pip check \
    && /opt/venv/bin/pip uninstall --yes --quiet pip setuptools

FROM ${PYTHON_IMAGE} AS runtime

ARG PYTHON_IMAGE
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="shop" \
      org.opencontainers.image.description="Event-driven e-commerce backend: gateway, workers, streams and relay in one image; the command picks the process" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.base.name="docker.io/library/${PYTHON_IMAGE}"

# A fixed uid/gid, so that mounted volumes and secrets can be given to it, and numeric in USER, so
# that Kubernetes' runAsNonRoot can check it.
RUN groupadd --system --gid 10001 shop \
    && useradd --system --uid 10001 --gid 10001 --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin shop \
    && install -d -o 10001 -g 10001 -m 0750 /app

# Owned by root: the application cannot rewrite its own code.
COPY --from=builder /opt/venv /opt/venv

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SHOP_LOG_FORMAT=json \
    SHOP_JWT_GENERATE_DEV_KEY=false

WORKDIR /app
USER 10001:10001

EXPOSE 8080 9101 9102 9103
# Every process stops gracefully on SIGTERM (aiohttp's run_app, shop/processes/host.py, the supervisor).
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 CMD ["shop", "health", "gateway"]

ENTRYPOINT ["shop"]
CMD ["run", "gateway"]
