"""How every connection introduces itself, so a pool in front of PostgreSQL can route it.

Behind pgpool-II with load balancing, a connection to the "primary" URL could still have its reads
answered by a lagging standby: an order read back right after its commit would be missing. Every
connection meant for the primary says so in its `application_name` (`shop-primary`), which the
deployment's pgpool routes to the primary (`app_name_redirect_preference_list`); replica
connections say `shop-replica`, unless the URL names one itself (an operator's choice wins).
Server-side prepared statements are off unless asked for (`prepared=True`, which the long-lived pools
and the relay pass from `SHOP_PG_PREPARED_STATEMENTS`): a statement prepared on one backend of a pool
does not exist on the next (PgBouncer in transaction mode), and pgpool-II pins a prepared statement to
the server that parsed it (no more load balancing for it). Straight to PostgreSQL, as in the local
stack, preparing the statements a connection runs again and again saves PostgreSQL the parse and plan
of each: about a third of the placement transaction's cost (bench/orders.py's pgbench, -M prepared
against -M extended).
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

# A synchronous connection, as every function of shop/db takes it.
Conn = psycopg.Connection[Any]

PRIMARY_APPLICATION = "shop-primary"
REPLICA_APPLICATION = "shop-replica"
PREPARE_THRESHOLD = 5  # psycopg's own default


def primary_options(url: str, prepared: bool = False) -> dict[str, Any]:
    """Connection keywords for `url`, a primary's; keywords win over the URL's own parameters.
    `prepared`: psycopg prepares a statement on the server once the connection has run it 5 times."""
    return _options(url, PRIMARY_APPLICATION, prepared)


def replica_options(url: str, prepared: bool = False) -> dict[str, Any]:
    return _options(url, REPLICA_APPLICATION, prepared)


def _options(url: str, application: str, prepared: bool) -> dict[str, Any]:
    options: dict[str, Any] = {"prepare_threshold": PREPARE_THRESHOLD if prepared else None}
    if "application_name" not in conninfo_to_dict(url):
        options["application_name"] = application
    return options
