from __future__ import annotations

from shop.db.connections import primary_options, replica_options


def test_connections_name_their_role_unless_the_url_already_does():
    plain = "postgresql://orders:orders@pgpool-orders:5432/orders"
    assert primary_options(plain) == {"prepare_threshold": None, "application_name": "shop-primary"}
    assert replica_options(plain)["application_name"] == "shop-replica"
    named = plain + "?application_name=reporting"
    assert primary_options(named) == {"prepare_threshold": None}  # the URL's own name is kept


def test_prepared_statements_only_when_asked_for():
    url = "postgresql://orders:orders@127.0.0.1:5432/orders"
    assert primary_options(url, prepared=True)["prepare_threshold"] == 5  # psycopg's default
    assert replica_options(url, prepared=True)["prepare_threshold"] == 5
    assert replica_options(url)["prepare_threshold"] is None
