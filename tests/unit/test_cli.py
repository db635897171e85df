from __future__ import annotations

import pytest

from shop.cli import build_parser, main

VERBS = [
    ["migrate"],
    ["topics"],
    ["settings"],
    ["admin"],
    ["keys"],
    ["replay"],
    ["keys", "new"],
    ["admin", "grant"],
    ["admin", "revoke"],
    ["run"],
    ["run", "gateway"],
    ["run", "workers"],
    ["run", "streams"],
    ["run", "relay"],
    ["run", "all"],
    ["health"],
]


@pytest.mark.parametrize("verb", VERBS, ids=" ".join)
def test_every_verb_has_help(verb, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([*verb, "--help"])
    assert exit_info.value.code == 0
    assert f"usage: shop {' '.join(verb)} " in capsys.readouterr().out


def test_an_unknown_process_is_refused_with_usage(capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["run", "everything"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_workers_take_a_comma_separated_queue_list():
    args = build_parser().parse_args(["run", "workers", "--queues", "orders, order_timers,"])
    assert args.queues == ["orders", "order_timers"]


def test_a_bad_setting_exits_2_naming_the_variable(monkeypatch, capsys):
    monkeypatch.setenv("SHOP_GATEWAY_PORT", "eighty")
    assert main(["settings"]) == 2
    assert "SHOP_GATEWAY_PORT" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SHOP_ORDER_REMINDERS", "12h,4h"),
        ("SHOP_ORDER_REMINDERS", "4h,25h"),
        ("SHOP_ORDER_REMINDERS", "soon"),
        ("SHOP_ORDER_TTL", "0s"),
        ("SHOP_TIMER_GRACE", "a minute"),
    ],
)
def test_bad_order_timer_settings_stop_every_process_at_start(monkeypatch, capsys, variable, value):
    monkeypatch.setenv(variable, value)
    for argv in (["settings"], ["run", "workers"], ["run", "gateway"]):
        assert main(argv) == 2
        assert variable in capsys.readouterr().err


def test_settings_prints_without_passwords(monkeypatch, capsys):
    monkeypatch.setenv("SHOP_ORDERS_DB_URL", "postgresql://orders:hunter2@db/orders")
    assert main(["settings"]) == 0
    out = capsys.readouterr().out
    assert "hunter2" not in out
    assert "postgresql://orders:***@db/orders" in out


def test_keys_new_writes_a_key_once(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("SHOP_JWT_KEYS_DIR", str(tmp_path))
    assert main(["keys", "new", "2026-11-25"]) == 0
    assert (tmp_path / "2026-11-25.pem").exists()
    assert main(["keys", "new", "2026-11-25"]) == 1
    assert "already exists" in capsys.readouterr().err


def test_run_all_takes_worker_pools():
    args = build_parser().parse_args(
        ["run", "all", "--worker-pool", "commands=auth, orders,products", "--worker-pool", "mail=mail"]
    )
    assert args.worker_pools == [("commands", ["auth", "orders", "products"]), ("mail", ["mail"])]
    assert build_parser().parse_args(["run", "all"]).worker_pools == []


@pytest.mark.parametrize("bad", ["mail", "=mail", "mail=", "mail=,"])
def test_a_malformed_worker_pool_is_refused(bad, capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["run", "all", "--worker-pool", bad])
    assert exit_.value.code == 2
    assert "NAME=QUEUE" in capsys.readouterr().err


def test_settings_shell_prints_the_host_and_ports_by_their_variables(monkeypatch, capsys):
    monkeypatch.setenv("SHOP_REDIS_URL", "redis://cache:7000/0")
    monkeypatch.setenv("SHOP_KAFKA_BOOTSTRAP", "k1:19092,k2:19092")
    monkeypatch.setenv("SHOP_RELAY_PORT", "9200")
    assert main(["settings", "--shell"]) == 0
    printed = dict(line.split("=", 1) for line in capsys.readouterr().out.splitlines())
    assert printed["SHOP_REDIS_PORT"] == "7000"
    assert printed["SHOP_KAFKA_PORT"] == "19092"
    assert printed["SHOP_RELAY_PORT"] == "9200"
