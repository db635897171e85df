"""The Dockerfile and .dockerignore, read as text (no Docker engine here): pinned bases, two stages, the
pinned dependency set without the dev extras, a fixed non-root uid, `shop` as the entrypoint whose
default command the CLI accepts, the health check through `shop health`, and the ports, settings and
labels the code agrees with.

The reading is a small parser of the instructions used here: `\\` continuations, comment lines (also
inside a continuation, as Docker drops them), global ARG defaults substituted into FROM."""

from __future__ import annotations

import configparser
import fnmatch
import inspect
import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import shop
from shop.cli import build_parser, health
from shop.settings import Settings

ROOT = Path(__file__).resolve().parents[3]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
_VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")
# An exact release tag (3.11.17, 3.11.17-slim-bookworm) and/or a digest; never a floating tag.
_PINNED = re.compile(r"^[\w.\-/]+(?::\d+\.\d+\.\d+(?:-[\w.\-]+)?)?(?:@sha256:[0-9a-f]{64})?$")


def pinned(image: str) -> bool:
    return bool(_PINNED.match(image)) and (":" in image or "@" in image) and "latest" not in image


@dataclass
class Stage:
    image: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]

    def one(self, keyword: str) -> str:
        found = self.all(keyword)
        assert len(found) == 1, f"{keyword}: expected once in stage {self.name}, found {len(found)}"
        return found[0]


def instructions(text: str) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) of each instruction, continuations joined and comment lines dropped."""
    result: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        result.append((keyword.upper(), " ".join(args.split())))
        pending = ""
    assert not pending, "the Dockerfile ends inside a continuation"
    return result


def stages(text: str) -> list[Stage]:
    global_args: dict[str, str] = {}
    found: list[Stage] = []
    for keyword, args in instructions(text):
        if keyword == "FROM":
            image, _, name = args.partition(" AS ")
            image = _VARIABLE.sub(lambda m: global_args[m[1] or m[2]], image.strip())
            found.append(Stage(image, name.strip() or None))
        elif not found:
            assert keyword == "ARG", f"only ARG may come before the first FROM, not {keyword}"
            key, _, default = args.partition("=")
            global_args[key] = default
        else:
            found[-1].instructions.append((keyword, args))
    return found


def pairs(args: str) -> dict[str, str]:
    """`A=1 B="two words"` (ENV, LABEL, ARG) -> {"A": "1", "B": "two words"}."""
    return dict(word.split("=", 1) for word in shlex.split(args))


@pytest.fixture(scope="module")
def all_stages() -> list[Stage]:
    return stages(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def final(all_stages) -> Stage:
    return all_stages[-1]


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("python:3.11.17-slim-bookworm", True),
        ("python:3.11.17", True),
        ("python@sha256:" + "a" * 64, True),
        ("python:3.11.17-slim-bookworm@sha256:" + "0" * 64, True),
        ("python:3.11-slim", False),
        ("python:3.11-slim-bookworm", False),
        ("python:latest", False),
        ("python", False),
        ("python:slim", False),
    ],
)
def test_the_pin_rule_itself(image, expected):
    assert pinned(image) is expected


def test_every_base_is_an_exact_version_or_a_digest(all_stages):
    names = {s.name for s in all_stages if s.name}
    for stage in all_stages:
        if stage.image in names:
            continue
        assert pinned(stage.image), f"FROM {stage.image}: pin an exact version (x.y.z) or a digest"


def test_a_builder_stage_and_a_runtime_stage_on_one_base(all_stages):
    assert len(all_stages) >= 2
    assert len({s.image for s in all_stages}) == 1, "the venv's interpreter links need the same base"
    assert all_stages[0].name == "builder"
    copied = [args for args in all_stages[-1].all("COPY") if args.startswith("--from=")]
    assert copied == ["--from=builder /opt/venv /opt/venv"], "the runtime takes the venv alone"


def test_the_install_is_the_pinned_set_without_the_dev_extras(all_stages):
    installs = [run for stage in all_stages for run in stage.all("RUN") if "pip install" in run]
    assert installs
    for run in installs:
        assert "-c constraints.txt" in run, run
        assert "--no-cache-dir" in run, run
        assert "[dev]" not in run, run
        assert "-e " not in run, run
        assert "--editable" not in run, run
    assert any("constraints.txt" in args for args in all_stages[0].all("COPY"))


def test_the_runtime_runs_as_a_fixed_non_root_uid(final):
    user = final.all("USER")[-1]
    assert re.fullmatch(r"\d+(:\d+)?", user), f"USER {user}: numeric, so runAsNonRoot can check it"
    uid, _, gid = user.partition(":")
    assert int(uid) != 0
    assert int(gid or uid) != 0
    created = " ".join(final.all("RUN"))
    assert f"--uid {uid}" in created
    assert f"--gid {gid or uid}" in created
    entry = [kw for kw, _ in final.instructions].index("ENTRYPOINT")
    assert [kw for kw, _ in final.instructions].index("USER") < entry


def test_the_entrypoint_is_shop_and_the_default_command_a_valid_process(final):
    assert json.loads(final.one("ENTRYPOINT")) == ["shop"]
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    assert "shop = shop.cli:main" in setup["options.entry_points"]["console_scripts"]
    args = build_parser().parse_args(json.loads(final.one("CMD")))
    assert (args.verb, args.process) == ("run", "gateway")


def test_the_health_check_asks_the_default_command_s_process_within_its_timeout(final):
    options, _, command = final.one("HEALTHCHECK").partition(" CMD ")
    run = build_parser().parse_args(json.loads(final.one("CMD")))
    assert json.loads(command) == ["shop", "health", run.process]
    build_parser().parse_args(json.loads(command)[1:])
    given = dict(option.removeprefix("--").split("=") for option in options.split())
    assert set(given) == {"interval", "timeout", "start-period", "retries"}
    check_timeout = inspect.signature(health).parameters["timeout"].default
    assert float(given["timeout"].removesuffix("s")) > check_timeout, "Docker must not kill a running check"


def test_every_process_port_is_exposed(final):
    defaults = Settings.from_env({})
    exposed = {int(port) for port in final.one("EXPOSE").split()}
    assert exposed == {
        defaults.gateway_port,
        defaults.workers_port,
        defaults.streams_port,
        defaults.relay_port,
    }


def test_the_environment_is_production_s(final):
    env: dict[str, str] = {}
    for args in final.all("ENV"):
        env.update(pairs(args))
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["PATH"].startswith("/opt/venv/bin:")
    shop_env = {k: v for k, v in env.items() if k.startswith("SHOP_")}
    settings = Settings.from_env(shop_env)
    assert settings.log_format == "json"
    assert settings.auth.generate_dev_key is False, "production brings its keys"
    # SHOP_HOST is the bind address and also the host of every dependency address not given: the
    # stack sets it (0.0.0.0) together with those addresses; the image cannot guess them.
    assert "SHOP_HOST" not in shop_env


def test_a_stop_is_sigterm(final):
    assert final.one("STOPSIGNAL") == "SIGTERM"


def test_the_oci_labels_agree_with_the_package(final):
    labels: dict[str, str] = {}
    for args in final.all("LABEL"):
        labels.update(pairs(args))
    build_args: dict[str, str] = {}
    for args in final.all("ARG"):
        key, _, default = args.partition("=")
        build_args[key] = default
    version = _VARIABLE.sub(lambda m: build_args[m[1] or m[2]], labels["org.opencontainers.image.version"])
    assert version == shop.__version__
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    assert labels["org.opencontainers.image.licenses"] == setup["metadata"]["license"]
    assert labels["org.opencontainers.image.title"] == "shop"
    assert "org.opencontainers.image.revision" in labels


def _matches(path: str, pattern: str) -> bool:
    """Docker's rule, closely enough for these patterns: `**/` stands for any number of folders."""
    if pattern.startswith("**/"):
        parts = path.split("/")
        return any(fnmatch.fnmatch("/".join(parts[i:]), pattern[3:]) for i in range(len(parts)))
    return fnmatch.fnmatch(path, pattern)


def _ignored(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore drops `path`: a dropped folder drops its content; the last match decides."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    result = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        pattern = pattern.removeprefix("!").rstrip("/")
        if any(_matches(prefix, pattern) for prefix in prefixes):
            result = not negated
    return result


def test_the_dockerignore_keeps_out_the_repository_s_rest_but_not_what_is_copied(all_stages):
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for kept_out in (".git", ".venv", "var", "var/keys/a.pem", "tests", "bench", ".ci", "shop.egg-info"):
        assert _ignored(kept_out, patterns), kept_out
    for cache in ("shop/__pycache__", "shop/db/__pycache__/migrate.cpython-311.pyc", ".mypy_cache"):
        assert _ignored(cache, patterns), cache
    for stage in all_stages:
        for args in stage.all("COPY"):
            if args.startswith("--from="):
                continue
            *sources, _ = args.split()
            for source in sources:
                assert (ROOT / source).exists(), source
                assert not _ignored(source, patterns), f"{source} is copied but .dockerignore drops it"


def test_the_wheel_carries_the_migrations_and_the_mail_templates():
    """The image installs the package (not editable): files outside setup.cfg's package_data are lost."""
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    globs = [g.strip() for g in setup["options.package_data"]["shop"].split(",")]
    package = ROOT / "shop"
    data = [*package.glob("db/migrations/**/*.sql"), *(package / "mail" / "templates").iterdir()]
    assert len(data) > 10
    for path in data:
        relative = path.relative_to(package).as_posix()
        assert any(fnmatch.fnmatch(relative, g) for g in globs), f"{relative} would not be in the image"
