"""ops/local/lib.sh, sourced as stack.sh and the tests source it: the shop's host and ports are the
settings' defaults, a caller's variable wins, and it works before the venv exists."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from shop.settings import Settings

ROOT = Path(__file__).resolve().parents[3]
LIB = ROOT / "ops" / "local" / "lib.sh"
DEFAULTS = Settings.from_env({}).addresses()


def sourced(lib: Path, names: list[str], env: dict[str, str]) -> dict[str, str]:
    """The values of `names` after `set -euo pipefail; . lib.sh`, in a clean environment plus `env`."""
    script = 'set -euo pipefail; . "$0"; ' + "; ".join(f'echo "{n}=${{{n}}}"' for n in names)
    result = subprocess.run(
        ["bash", "-c", script, str(lib)],
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return dict(line.split("=", 1) for line in result.stdout.splitlines())


def test_lib_sh_parses():
    subprocess.run(["bash", "-n", str(LIB)], check=True)


def test_the_shop_s_host_and_ports_come_from_its_settings_and_a_caller_s_variable_wins():
    assert DEFAULTS["SHOP_REDIS_PORT"] == "6379"
    values = sourced(LIB, [*DEFAULTS, "SHOP_MAILPIT_SMTP_PORT"], {"SHOP_KAFKA_PORT": "19092"})
    assert values == {
        **DEFAULTS,
        "SHOP_KAFKA_PORT": "19092",
        "SHOP_MAILPIT_SMTP_PORT": DEFAULTS["SHOP_SMTP_PORT"],
    }


def test_a_caller_s_bad_setting_does_not_stop_the_stack_scripts():
    values = sourced(LIB, ["SHOP_HOST"], {"SHOP_ORDER_TTL": "forever", "SHOP_RATE_LIMITS": "basket=1/1s"})
    assert values["SHOP_HOST"] == DEFAULTS["SHOP_HOST"]


def test_no_default_of_a_setting_is_repeated_in_lib_sh():
    written = set(re.findall(r'^: "\$\{(SHOP_[A-Z0-9_]+):=', LIB.read_text(), re.MULTILINE))
    assert not written & set(DEFAULTS)


def test_before_the_venv_exists_the_system_python_reads_the_source(tmp_path):
    """`make down` (or `stack.sh status`) on a fresh machine runs before `make` has made .venv."""
    python = shutil.which("python3.11", path="/usr/local/bin:/usr/bin:/bin")
    assert python, "the stack needs Python 3.11 (the Makefile's venv asserts it too)"
    shutil.copytree(ROOT / "shop", tmp_path / "shop", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "ops" / "local", tmp_path / "ops" / "local")
    path = f"{Path(python).parent}:/usr/bin:/bin"
    values = sourced(tmp_path / "ops" / "local" / "lib.sh", list(DEFAULTS), {"PATH": path})
    assert values == DEFAULTS
