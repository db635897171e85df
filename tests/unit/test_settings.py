from __future__ import annotations

import pytest

from shop.settings import Settings, SettingsError, parse_duration, redact


def test_defaults_point_at_the_local_stack():
    s = Settings.from_env({})
    assert s.gateway_port == 8080
    assert s.databases["orders"].primary_url == "postgresql://orders:orders@127.0.0.1:5432/orders"
    assert s.databases["orders"].replica_url == "postgresql://orders:orders@127.0.0.1:5433/orders"
    assert s.kafka_bootstrap == "127.0.0.1:9092"
    assert s.max_body_bytes == 1024 * 1024
    assert s.pg_prepared_statements  # straight to PostgreSQL; the Swarm stack turns it off


def test_environment_overrides_defaults():
    s = Settings.from_env(
        {
            "SHOP_GATEWAY_PORT": "9999",
            "SHOP_KAFKA_PORT": "19092",
            "SHOP_AUTH_DB_URL": "postgresql://a:b@h/auth",
            "SHOP_PG_PREPARED_STATEMENTS": "false",
        }
    )
    assert not s.pg_prepared_statements
    assert s.gateway_port == 9999
    assert s.kafka_bootstrap == "127.0.0.1:19092"
    assert s.databases["auth"].primary_url == "postgresql://a:b@h/auth"


def test_a_non_numeric_port_is_refused_with_the_variable_named():
    with pytest.raises(SettingsError, match="SHOP_GATEWAY_PORT"):
        Settings.from_env({"SHOP_GATEWAY_PORT": "eighty"})


def test_stream_threads_default_and_lower_bound():
    assert Settings.from_env({}).stream_threads == 4
    assert Settings.from_env({"SHOP_STREAM_THREADS": "1"}).stream_threads == 1
    with pytest.raises(SettingsError, match="SHOP_STREAM_THREADS"):
        Settings.from_env({"SHOP_STREAM_THREADS": "0"})


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


def test_order_timer_defaults():
    s = Settings.from_env({})
    assert s.orders.ttl == 86400
    assert s.orders.reminders == (14400.0, 43200.0, 79200.0)
    assert s.orders.timer_grace == 60
    assert s.orders.sweep_interval == 10


def test_order_durations_are_parsed():
    s = Settings.from_env({"SHOP_ORDER_REMINDERS": "90s,1h30m", "SHOP_ORDER_TTL": "2h"})
    assert s.orders.reminders == (90, 5400)
    assert s.orders.ttl == 7200


def test_spaces_around_the_reminders_are_ignored():
    s = Settings.from_env({"SHOP_ORDER_REMINDERS": " 1h, 2h ,3h "})
    assert s.orders.reminders == (3600, 7200, 10800)


@pytest.mark.parametrize("raw", ["", "none", "None", "  "])
def test_orders_may_have_no_reminders(raw):
    assert Settings.from_env({"SHOP_ORDER_REMINDERS": raw}).orders.reminders == ()


def test_an_empty_ttl_means_the_default():
    assert Settings.from_env({"SHOP_ORDER_TTL": ""}).orders.ttl == 86400


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"SHOP_ORDER_REMINDERS": "2h,1h"}, "SHOP_ORDER_REMINDERS"),
        ({"SHOP_ORDER_REMINDERS": "1h,1h"}, "SHOP_ORDER_REMINDERS"),
        ({"SHOP_ORDER_REMINDERS": "4h,24h"}, "SHOP_ORDER_REMINDERS"),
        ({"SHOP_ORDER_REMINDERS": "4h,25h"}, "SHOP_ORDER_REMINDERS"),
        ({"SHOP_ORDER_REMINDERS": "1h", "SHOP_ORDER_TTL": "30m"}, "SHOP_ORDER_REMINDERS"),
        ({"SHOP_ORDER_REMINDERS": "0s"}, "SHOP_ORDER_REMINDERS"),
        ({"SHOP_ORDER_REMINDERS": "soon"}, "SHOP_ORDER_REMINDERS"),
        ({"SHOP_ORDER_REMINDERS": "4h,,12h"}, "SHOP_ORDER_REMINDERS"),
        ({"SHOP_ORDER_TTL": "0s"}, "SHOP_ORDER_TTL"),
        ({"SHOP_ORDER_TTL": "tomorrow"}, "SHOP_ORDER_TTL"),
        ({"SHOP_TIMER_GRACE": "0"}, "SHOP_TIMER_GRACE"),
        ({"SHOP_TIMER_SWEEP_INTERVAL": "0s"}, "SHOP_TIMER_SWEEP_INTERVAL"),
    ],
)
def test_unusable_order_timer_settings_are_refused_with_the_variable_named(env, variable):
    with pytest.raises(SettingsError, match=variable):
        Settings.from_env(env)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90),
        ("1.5", 1.5),
        ("90s", 90),
        ("10m", 600),
        ("4h", 14400),
        ("1h30m", 5400),
        ("1d12h", 129600),
        ("1.5d", 129600),
        ("250ms", 0.25),
        ("1s500ms", 1.5),
        (" 4h ", 14400),
    ],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "  ", "h", "1x", "1h 30m", "-1h", "1h-30m", "four hours"])
def test_parse_duration_refuses_what_is_not_a_duration(text):
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


def test_the_printable_view_includes_the_order_settings():
    view = Settings.from_env({"SHOP_ORDER_TTL": "2h", "SHOP_ORDER_REMINDERS": "1h"}).public_view()
    assert isinstance(view["orders"], dict)
    assert view["orders"]["ttl"] == 7200
    assert view["orders"]["reminders"] == (3600,)
    assert view["orders"]["timer_grace"] == 60


def test_any_setting_can_come_from_a_file_like_a_docker_secret(tmp_path):
    secret = tmp_path / "orders_db_url"
    secret.write_text("postgresql://orders:s3cret@pgpool-orders:5432/orders\n")
    pepper = tmp_path / "pepper"
    pepper.write_text("no-newline")
    settings = Settings.from_env(
        {"SHOP_ORDERS_DB_URL_FILE": str(secret), "SHOP_AUTH_CODE_PEPPER_FILE": str(pepper)}
    )
    assert settings.databases["orders"].primary_url == "postgresql://orders:s3cret@pgpool-orders:5432/orders"
    assert settings.auth.code_pepper == "no-newline"
    with pytest.raises(SettingsError, match="SHOP_AUTH_CODE_PEPPER or SHOP_AUTH_CODE_PEPPER_FILE"):
        Settings.from_env({"SHOP_AUTH_CODE_PEPPER": "x", "SHOP_AUTH_CODE_PEPPER_FILE": str(pepper)})
    with pytest.raises(SettingsError, match="SHOP_REDIS_URL_FILE: cannot read"):
        Settings.from_env({"SHOP_REDIS_URL_FILE": str(tmp_path / "missing")})


def test_the_settings_know_every_variable_they_read():
    from tests.unit.settings_reads import variables

    names = variables()
    assert {"SHOP_REDIS_URL", "SHOP_REDIS_CLUSTER", "SHOP_RABBITMQ_URL", "SHOP_ORDERS_DB_URL"} <= names
    assert all(name.startswith("SHOP_") for name in names)
    assert "SHOP_NOT_A_SETTING" not in names
