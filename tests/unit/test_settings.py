from __future__ import annotations

import pytest

from shop.settings import Settings, SettingsError, redact


def test_defaults_point_at_the_local_stack():
    s = Settings.from_env({})
    assert s.gateway_port == 8080
    assert s.databases["orders"].primary_url == "postgresql://orders:orders@127.0.0.1:5432/orders"
    assert s.databases["orders"].replica_url == "postgresql://orders:orders@127.0.0.1:5433/orders"
    assert s.kafka_bootstrap == "127.0.0.1:9092"
    assert s.max_body_bytes == 1024 * 1024


def test_environment_overrides_defaults():
    s = Settings.from_env(
        {
            "SHOP_GATEWAY_PORT": "9999",
            "SHOP_KAFKA_PORT": "19092",
            "SHOP_AUTH_DB_URL": "postgresql://a:b@h/auth",
        }
    )
    assert s.gateway_port == 9999
    assert s.kafka_bootstrap == "127.0.0.1:19092"
    assert s.databases["auth"].primary_url == "postgresql://a:b@h/auth"


def test_a_non_numeric_port_is_refused_with_the_variable_named():
    with pytest.raises(SettingsError, match="SHOP_GATEWAY_PORT"):
        Settings.from_env({"SHOP_GATEWAY_PORT": "eighty"})


def test_unknown_log_format_is_refused():
    with pytest.raises(SettingsError, match="SHOP_LOG_FORMAT"):
        Settings.from_env({"SHOP_LOG_FORMAT": "xml"})


def test_secrets_never_show_in_the_printable_view_or_repr():
    s = Settings.from_env(
        {
            "SHOP_ORDERS_DB_URL": "postgresql://orders:hunter2@db/orders",
            "SHOP_RABBITMQ_URL": "amqp://u:s3cr3t@mq/v",
        }
    )
    assert "hunter2" not in repr(s)
    assert "s3cr3t" not in repr(s)
    view = s.public_view()
    assert view["databases"]["orders"]["primary_url"] == "postgresql://orders:***@db/orders"
    assert view["rabbitmq_url"] == "amqp://u:***@mq/v"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("redis://:pw@h:6379/0", "redis://:***@h:6379/0"),
        ("no url here", "no url here"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
        ("a amqp://x:y@h b postgresql://p:q@h", "a amqp://x:***@h b postgresql://p:***@h"),
    ],
)
def test_redact(text, expected):
    assert redact(text) == expected
