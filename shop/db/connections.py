"""How every connection introduces itself, so a pool in front of PostgreSQL can route it.

Behind pgpool-II with load balancing, a connection to the "primary" URL could still have its reads
answered by a lagging standby: an order read back right after its commit would be missing. Every
connection meant for the primary says so in its `application_name` (`shop-primary`), which the
deployment's pgpool routes to the primary (`app_name_redirect_preference_list`); replica
connections say `shop-replica`, unless the URL names one itself (an operator's choice wins).
Server-side prepared statements are off everywhere: a statement prepared on one backend of a pool
does not exist on the next (pgpool, PgBouncer in transaction mode).
"""

from __future__ import annotations

from typing import Any

from psycopg.conninfo import conninfo_to_dict

PRIMARY_APPLICATION = "shop-primary"
REPLICA_APPLICATION = "shop-replica"


def primary_options(url: str) -> dict[str, Any]:
    """Connection keywords for `url`, a primary's; keywords win over the URL's own parameters."""
    return _options(url, PRIMARY_APPLICATION)


def replica_options(url: str) -> dict[str, Any]:
    return _options(url, REPLICA_APPLICATION)


def _options(url: str, application: str) -> dict[str, Any]:
    options: dict[str, Any] = {"prepare_threshold": None}
    if "application_name" not in conninfo_to_dict(url):
        options["application_name"] = application
    return options
