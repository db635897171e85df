"""ops/swarm: the Docker Swarm deployment. `docker stack config` renders the three stack files together
(data tier, the shop's processes, observability) as `docker stack deploy` reads them: interpolated,
merged, anchors resolved. Every check below reads that rendering, so a check cannot be fooled by an
anchor or an override that the deploy would see differently:

- every service has a health check (or disables it for a reason written here), an image pinned to an
  exact version, CPU and memory limits, placement constraints, update and rollback settings;
- every secret and config a service mounts is defined;
- the shop's processes name exactly the SHOP_* variables shop/settings.py reads, each secret-backed one
  as SHOP_X_FILE pointing at a secret the service mounts;
- HAProxy's configuration passes `haproxy -c`, its public port passes the public routes only (never
  the gateway's /metrics or /readyz, which Prometheus scrapes on the overlay network), and the
  gateways trust X-Forwarded-For from the `app` network only; Prometheus's configuration passes
  `promtool check config` and every name it looks up is a service (or alias) on a network
  Prometheus shares with it.

The Docker CLI (for `docker stack config`, which needs no Docker engine), HAProxy and promtool come from
Debian's packages, installed the stack's way when missing (root, apt), never skipped. Debian 12's
docker.io (20.10) has no `docker stack config`; on a machine with only that CLI the render test fails
saying so."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]

from shop.cli import build_parser
from tests.unit.ops.tools import ensure_deb, run_from_root, run_promtool
from tests.unit.settings_reads import variables

ROOT = Path(__file__).resolve().parents[3]
SWARM = ROOT / "ops" / "swarm"
# In the order of the deploy command (docs/swarm.md): the last definition of a network wins.
FILES = [SWARM / "data.yml", SWARM / "stack.yml", SWARM / "observability.yml"]
HAPROXY_CFG = SWARM / "config" / "haproxy" / "haproxy.cfg"
PROMETHEUS_SWARM = ROOT / "ops" / "prometheus" / "prometheus.swarm.yml"
PG_EXPORTER_QUERIES = SWARM / "config" / "postgres-exporter" / "queries.yaml"
LOCAL_EXPORTERS = ROOT / "ops" / "local" / "components" / "exporters.sh"
GRAFANA = ROOT / "ops" / "grafana"

# The render's environment: nothing from the caller's (a developer's SHOP_* or compose variables
# must not leak into it), a version that looks like a release.
SHOP_VERSION = "1.2.3"
SHOP_IMAGE = "registry.example.com/shop"

# The shop's processes and their commands (one image; the command picks the process). The image's
# ENTRYPOINT is `shop` (checked below against the Dockerfile): a command is `shop`'s arguments.
SHOP_COMMANDS = {
    "gateway": ["run", "gateway"],
    "workers-commands": ["run", "workers", "--queues", "auth,products,orders", "--threads", "8"],
    "workers-mail": ["run", "workers", "--queues", "mail", "--threads", "4"],
    "workers-timers": ["run", "workers", "--queues", "timers", "--threads", "4"],
    "streams": ["run", "streams"],
    "relay": ["run", "relay"],
    "migrate": ["migrate"],
    "topics": ["topics"],
}
ONE_SHOT = {"migrate", "topics"}

# Services whose health check is disabled, and why. Nothing else may go without one.
NO_HEALTHCHECK = {
    "otel-collector": "the image is FROM scratch: no shell, wget or curl to ask :13133 from inside",
    "otel-agent": "the image is FROM scratch: no shell, wget or curl to ask :13133 from inside",
    "migrate": "a one-shot job: it serves nothing, and exits when done",
    "topics": "a one-shot job: it serves nothing, and exits when done",
}

# SHOP_* variables outside the shop's processes that are not shop settings: Grafana expands this one
# in ops/grafana/provisioning/dashboards/shop.yml (the folder of the dashboards).
FOREIGN_SHOP_VARIABLES = {("grafana", "SHOP_DASHBOARDS_DIR")}

# A tag that names an exact release: at least major.minor.patch (a leading v and a suffix such as
# -alpine allowed), never a moving tag like latest, 3, 3.1 or 3-alpine.
EXACT_TAG = re.compile(r"^v?\d+\.\d+\.\d+([.+-][\w.+-]*)?$")
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")

pytestmark = pytest.mark.timeout(900)  # the first run may install Debian packages


# ---- tools ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def docker() -> str:
    """A Docker CLI that has `docker stack config` (Docker 23 and later; Debian 12's docker.io, 20.10,
    has not: then this fails, saying so)."""
    found = ensure_deb("docker.io", "docker")
    help_text = run_from_root([found, "stack", "--help"], timeout=30).stdout
    version = run_from_root([found, "--version"], timeout=30).stdout.strip()
    assert re.search(r"^\s+config\s", help_text, re.MULTILINE), (
        f"{found} ({version}) has no `docker stack config` (Debian 12's docker.io 20.10 lacks it); "
        "a Docker CLI of version 23 or later is needed to render the stack"
    )
    return found


@pytest.fixture(scope="module")
def haproxy() -> str:
    return ensure_deb("haproxy", "haproxy")


def render(docker: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    args = [docker, "stack", "config"]
    for path in FILES:
        args += ["-c", str(path.relative_to(ROOT))]
    clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/root"), **env}
    return run_from_root(args, env=clean)


@pytest.fixture(scope="module")
def rendered(docker: str) -> dict[str, Any]:
    missing = [str(p.relative_to(ROOT)) for p in FILES if not p.exists()]
    assert not missing, f"missing stack files: {missing}"
    done = render(docker, {"SHOP_VERSION": SHOP_VERSION})
    assert done.returncode == 0, f"docker stack config failed:\n{done.stderr}"
    config = yaml.safe_load(done.stdout)
    assert isinstance(config, dict), done.stdout[:2000]
    assert config.get("services"), done.stdout[:2000]
    return config


def services(rendered: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return dict(rendered["services"])


def own_services() -> set[str]:
    """The services of the two files of this issue (not the data tier's)."""
    names: set[str] = set()
    for path in (SWARM / "stack.yml", SWARM / "observability.yml"):
        names |= set(yaml.safe_load(path.read_text())["services"])
    return names


def shop_services(rendered: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in services(rendered).items()
        if str(service.get("image", "")).startswith(f"{SHOP_IMAGE}:")
    }


def split_image(image: str) -> tuple[str, str | None, bool]:
    """`repo[:tag][@digest]` -> (repo, tag, has_digest); a registry's :port is not a tag."""
    digest = bool(DIGEST.search(image))
    name = DIGEST.sub("", image)
    repo, sep, tag = name.rpartition(":")
    if not sep or "/" in tag:
        return name, None, digest
    return repo, tag, digest


def mounted(service: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    """The service's secrets or configs in long syntax (the render writes `source` and maybe `target`)."""
    out = []
    for entry in service.get(kind, []) or []:
        out.append({"source": entry} if isinstance(entry, str) else dict(entry))
    return out


def env_of(service: dict[str, Any]) -> dict[str, str]:
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) if "=" in item else (item, "") for item in environment)
    return {str(k): "" if v is None else str(v) for k, v in environment.items()}


def setting_name(variable: str) -> str:
    return variable[: -len("_FILE")] if variable.endswith("_FILE") else variable


# ---- rendering --------------------------------------------------------------------------------------


def test_the_three_files_render_together(rendered):
    names = set(services(rendered))
    assert set(SHOP_COMMANDS) | {"haproxy"} <= names
    assert {"prometheus", "grafana", "loki", "tempo", "otel-collector", "redis-exporter"} <= names
    for name, command in SHOP_COMMANDS.items():
        assert services(rendered)[name]["command"] == command, name


def test_the_version_must_be_given(docker, rendered):
    done = render(docker, {})
    assert done.returncode != 0
    assert "set SHOP_VERSION" in done.stderr, done.stderr


# ---- every service --------------------------------------------------------------------------------


def test_every_service_has_a_health_check(rendered):
    problems = []
    for name, service in services(rendered).items():
        check = service.get("healthcheck")
        if not isinstance(check, dict):
            problems.append(f"{name}: no healthcheck")
        elif check.get("disable") or check.get("test") in (["NONE"], "NONE"):
            if name not in NO_HEALTHCHECK:
                problems.append(f"{name}: healthcheck disabled without a reason in NO_HEALTHCHECK")
        elif not check.get("test"):
            problems.append(f"{name}: healthcheck without a test")
    assert not problems, "\n".join(problems)
    assert set(NO_HEALTHCHECK) <= set(services(rendered)), "NO_HEALTHCHECK names a service that is gone"


def test_the_shop_processes_ask_shop_health_of_the_process_their_command_runs(rendered):
    """`shop health PROCESS [--port N]` with the process and port of the service's `shop run`; the
    one-shot jobs serve nothing, and must not inherit the image's check (the gateway's)."""
    for name, command in SHOP_COMMANDS.items():
        check = services(rendered)[name]["healthcheck"]
        if name in ONE_SHOT:
            assert check.get("disable") is True, name
            continue
        run = build_parser().parse_args(command)
        port = ["--port", str(run.port)] if run.port is not None else []
        assert check["test"] == ["CMD", "shop", "health", run.process, *port], name
        build_parser().parse_args(check["test"][2:])


def test_the_commands_are_arguments_of_the_images_entrypoint():
    entrypoints = re.findall(r"^ENTRYPOINT\s+(\[.*\])\s*$", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert entrypoints, "the Dockerfile has no ENTRYPOINT in exec form"
    assert yaml.safe_load(entrypoints[-1]) == ["shop"]
    parser = build_parser()
    for command in SHOP_COMMANDS.values():
        parser.parse_args(command)  # exits (SystemExit) on anything `shop` would refuse


def test_every_image_is_pinned_to_an_exact_version(rendered):
    problems = []
    for name, service in services(rendered).items():
        image = str(service.get("image", ""))
        _, tag, digest = split_image(image)
        if name in SHOP_COMMANDS:
            if image != f"{SHOP_IMAGE}:{SHOP_VERSION}":
                problems.append(f"{name}: {image} is not the shop image at SHOP_VERSION")
        elif tag == "latest" or not (digest or (tag and EXACT_TAG.match(tag))):
            problems.append(f"{name}: {image} is not pinned (want repo:X.Y.Z[-suffix] or a digest)")
    assert not problems, "\n".join(problems)


def test_every_service_has_limits_placement_and_update_settings(rendered):
    own = own_services()
    problems = []
    for name, service in services(rendered).items():
        deploy = service.get("deploy") or {}
        resources = deploy.get("resources") or {}
        limits = resources.get("limits") or {}
        if not (limits.get("cpus") and limits.get("memory")):
            problems.append(f"{name}: deploy.resources.limits needs cpus and memory")
        reservations = resources.get("reservations") or {}
        if name in own and not (reservations.get("cpus") and reservations.get("memory")):
            problems.append(f"{name}: deploy.resources.reservations needs cpus and memory")
        if not (deploy.get("placement") or {}).get("constraints"):
            problems.append(f"{name}: no placement constraints")
        for key in ("update_config", "rollback_config"):
            if not deploy.get(key):
                problems.append(f"{name}: no deploy.{key}")
        if name in own and not deploy.get("restart_policy"):
            problems.append(f"{name}: no deploy.restart_policy")
        logging = service.get("logging") or {}
        if name in own and not (
            logging.get("driver") == "json-file" and (logging.get("options") or {}).get("max-size")
        ):
            problems.append(f"{name}: logging must be json-file with max-size (the otel-agent tails it)")
    assert not problems, "\n".join(problems)


def test_stateless_shop_processes_roll_forward_start_first_and_back_on_failure(rendered):
    for name in set(SHOP_COMMANDS) - ONE_SHOT:
        update = services(rendered)[name]["deploy"]["update_config"]
        assert update["parallelism"] == 1, name
        assert update["order"] == "start-first", name
        assert update["failure_action"] == "rollback", name
        assert services(rendered)[name]["deploy"]["placement"]["constraints"] == [
            "node.labels.shop.tier == app"
        ], name


def test_one_shot_tasks_are_not_rolled_back_for_finishing(rendered):
    """Swarm's updater counts a task that exits during `monitor` as a failure, even with status 0:
    with failure_action rollback, every successful `shop migrate` would roll its update back."""
    for name in ONE_SHOT:
        deploy = services(rendered)[name]["deploy"]
        assert deploy.get("replicas") == 1, name
        assert deploy["restart_policy"]["condition"] == "on-failure", name
        assert deploy["update_config"]["failure_action"] != "rollback", name
        assert deploy["rollback_config"]["failure_action"] != "rollback", name


def test_the_replica_counts(rendered):
    expected = {"haproxy": 2, "gateway": 3, "streams": 3, "relay": 2}
    for name, replicas in expected.items():
        assert services(rendered)[name]["deploy"]["replicas"] == replicas, name
    assert services(rendered)["otel-agent"]["deploy"]["mode"] == "global"


def test_every_mounted_secret_and_config_is_defined(rendered):
    problems = []
    for kind in ("secrets", "configs"):
        defined = rendered.get(kind) or {}
        for name, service in services(rendered).items():
            for entry in mounted(service, kind):
                if entry["source"] not in defined:
                    problems.append(f"{name}: {kind[:-1]} {entry['source']!r} is not defined")
        for name, definition in defined.items():
            if not (definition.get("file") or definition.get("external")):
                problems.append(f"{kind} {name}: neither file nor external")
    assert not problems, "\n".join(problems)


def test_config_files_exist_and_names_are_unique(rendered):
    configs = rendered.get("configs") or {}
    for name, definition in configs.items():
        assert Path(definition["file"]).is_file(), f"config {name}: {definition['file']} does not exist"
    names = [definition.get("name", key) for key, definition in configs.items()]
    assert len(names) == len(set(names)), names


# ---- the shop's settings ----------------------------------------------------------------------------


# Settings the cluster leaves empty on purpose, each named in stack.yml with an empty value.
OFF_IN_THE_CLUSTER = {
    "SHOP_MAILPIT_URL": "the storefront's link to Mailpit: the cluster's Mailpit is not published",
    "SHOP_TRACE_QUERY_URL": "the order journey's Jaeger query API: the cluster's traces are in Tempo",
}


def test_the_settings_off_in_the_cluster_are_named_there_empty(rendered):
    for name, service in shop_services(rendered).items():
        environment = env_of(service)
        for variable in OFF_IN_THE_CLUSTER:
            assert environment.get(variable) == "", f"{name}: {variable} is not named empty"


def test_the_shop_processes_name_exactly_the_settings_variables(rendered):
    read = variables()
    assert {"SHOP_RABBITMQ_URL", "SHOP_REDIS_CLUSTER"} <= read  # read as intended
    shop = shop_services(rendered)
    assert set(shop) == set(SHOP_COMMANDS)
    problems = []
    given: set[str] = set()
    for name, service in shop.items():
        for variable, value in env_of(service).items():
            if not variable.startswith("SHOP_"):
                continue
            if setting_name(variable) not in read:
                problems.append(f"{name}: {variable} is no setting of shop/settings.py")
            if value:
                given.add(setting_name(variable))
    for missing in sorted(read - given - set(OFF_IN_THE_CLUSTER)):
        problems.append(f"{missing}: no shop service sets it (it would fall back to a local default)")
    for name, service in services(rendered).items():
        if name in shop:
            continue
        for variable in env_of(service):
            if variable.startswith("SHOP_") and (name, variable) not in FOREIGN_SHOP_VARIABLES:
                problems.append(f"{name}: {variable} is no shop setting and not in FOREIGN_SHOP_VARIABLES")
    assert not problems, "\n".join(problems)


def test_the_shop_processes_share_one_environment(rendered):
    """One anchor for all: apart from the service name and the secrets a process mounts, the shop's
    processes see the same settings."""
    shop = shop_services(rendered)
    common = None
    for name, service in shop.items():
        env = {k: v for k, v in env_of(service).items() if not k.endswith("_FILE")}
        env.pop("OTEL_SERVICE_NAME")
        common = env if common is None else common
        assert env == common, name
    assert common is not None
    assert common["SHOP_HOST"] == "0.0.0.0"
    assert common["SHOP_LOG_FORMAT"] == "json"
    assert common["SHOP_REDIS_CLUSTER"] == "true"
    assert common["SHOP_KAFKA_REPLICATION_FACTOR"] == "3"
    assert common["SHOP_JWT_GENERATE_DEV_KEY"] == "false"
    assert common["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4318"
    assert len(common["SHOP_KAFKA_BOOTSTRAP"].split(",")) == 3
    names = [env_of(service)["OTEL_SERVICE_NAME"] for service in shop.values()]
    assert len(set(names)) == len(names), names
    assert all(n.startswith("shop-") for n in names), names


def test_secret_files_point_at_secrets_the_service_mounts(rendered):
    problems = []
    for name, service in shop_services(rendered).items():
        targets = {
            "/run/secrets/" + str(entry.get("target") or entry["source"]): entry["source"]
            for entry in mounted(service, "secrets")
        }
        used = set()
        for variable, value in env_of(service).items():
            if not (variable.startswith("SHOP_") and variable.endswith("_FILE")) or not value:
                continue
            if value not in targets:
                problems.append(f"{name}: {variable}={value} is not a secret the service mounts")
            used.add(value)
        for path in sorted(set(targets) - used):
            problems.append(f"{name}: mounts {path} but no SHOP_*_FILE reads it")
    assert not problems, "\n".join(problems)


def test_only_the_gateway_holds_the_signing_key_and_the_replicas(rendered):
    for name, service in shop_services(rendered).items():
        sources = {entry["source"] for entry in mounted(service, "secrets")}
        if name != "gateway":
            assert "jwt_signing_key" not in sources, name
            assert not any(s.endswith("_replica_url") for s in sources), name
    gateway = {entry["source"] for entry in mounted(services(rendered)["gateway"], "secrets")}
    assert {"jwt_signing_key", "auth_code_pepper", "shop_auth_db_replica_url"} <= gateway


def test_the_mail_workers_hold_the_pepper_that_derives_a_verification_code(rendered):
    # Without it they would derive every code with the development pepper: a wrong code in every email.
    service = services(rendered)["workers-mail"]
    assert "auth_code_pepper" in {entry["source"] for entry in mounted(service, "secrets")}
    assert service["environment"]["SHOP_AUTH_CODE_PEPPER_FILE"] == "/run/secrets/auth_code_pepper"


# ---- HAProxy and the gateways -----------------------------------------------------------------------


def test_haproxy_accepts_its_configuration(haproxy):
    done = run_from_root([haproxy, "-c", "-f", str(HAPROXY_CFG)])
    assert done.returncode == 0, f"$ haproxy -c -f {HAPROXY_CFG}\n{done.stdout}{done.stderr}"


def test_haproxy_runs_the_checked_file_and_finds_the_gateways(rendered):
    haproxy = services(rendered)["haproxy"]
    (config,) = mounted(haproxy, "configs")
    assert config["target"] == "/usr/local/etc/haproxy/haproxy.cfg"
    assert Path(rendered["configs"][config["source"]]["file"]) == HAPROXY_CFG
    text = HAPROXY_CFG.read_text()
    port = env_of(services(rendered)["gateway"])["SHOP_GATEWAY_PORT"]
    assert re.search(rf"^\s*server-template \S+ \d+ tasks\.gateway:{port} .*\bcheck\b", text, re.MULTILINE)
    assert re.search(r"^\s*option forwardfor\b", text, re.MULTILINE)
    assert re.search(r"^\s*nameserver \S+ 127\.0\.0\.11:53$", text, re.MULTILINE)
    assert "http-request use-service prometheus-exporter" in text
    (published,) = haproxy["ports"]
    assert published["published"] == 80, published
    assert published["mode"] == "host", published
    assert re.search(rf"^\s*bind :{published['target']}$", text, re.MULTILINE)


def haproxy_sections(text: str) -> dict[str, list[str]]:
    """`frontend http` -> its lines (comments and blank lines dropped)."""
    sections: dict[str, list[str]] = {}
    current: list[str] = []
    for raw in text.splitlines():
        line = raw.rstrip()
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line[0].isspace():
            current = sections.setdefault(line.strip(), [])
        else:
            current.append(line.strip())
    return sections


def test_the_public_frontend_passes_only_public_routes(rendered):
    """/metrics and /readyz (which names each dependency and its error) are the gateway's, for
    Prometheus and the orchestrator on the overlay network; port 80 answers them 404 itself.
    (tests/integration/test_haproxy.py runs this configuration against every spelling.)"""
    public = haproxy_sections(HAPROXY_CFG.read_text())["frontend http"]
    prefixes: list[str] = []
    exact: list[str] = []
    for line in public:
        if match := re.fullmatch(r"acl public_route path_beg (.+)", line):
            prefixes += match[1].split()
        elif match := re.fullmatch(r"acl public_route path (.+)", line):
            exact += match[1].split()
    assert "http-request deny deny_status 404 unless public_route !dot_segment" in public
    assert not [line for line in public if line.startswith(("use_backend", "http-request allow"))], public
    for private in ("/metrics", "/readyz"):
        assert private not in exact
        assert not private.startswith(tuple(prefixes)), private
    assert "/healthz" in exact  # says only "alive"; the backend's checks ask each gateway directly
    from shop.http.routing import ROUTES

    closed = [r.path for r in ROUTES if r.path not in exact and not r.path.startswith(tuple(prefixes))]
    assert not closed, f"public routes HAProxy would refuse: {closed}"


def test_prometheus_scrapes_the_gateways_directly_not_through_haproxy(rendered):
    port = int(env_of(services(rendered)["gateway"])["SHOP_GATEWAY_PORT"])
    jobs = {job["job_name"]: job for job in yaml.safe_load(PROMETHEUS_SWARM.read_text())["scrape_configs"]}
    (sd,) = jobs["gateway"]["dns_sd_configs"]
    assert sd["names"] == ["tasks.gateway"]
    assert sd["port"] == port
    assert "observability" in networks_of(services(rendered)["gateway"])
    # The gateway's own health check asks from inside its container, not through HAProxy.
    assert "haproxy" not in " ".join(services(rendered)["gateway"]["healthcheck"]["test"])


def test_the_gateways_trust_forwarded_addresses_from_the_app_network_only(rendered):
    app = rendered["networks"]["app"]
    (subnet,) = [pool["subnet"] for pool in app["ipam"]["config"]]
    assert env_of(services(rendered)["gateway"])["SHOP_TRUSTED_PROXIES"] == subnet
    for name in ("haproxy", "gateway"):
        assert "app" in networks_of(services(rendered)[name]), name
    # Nothing else on the app network could pass a forged X-Forwarded-For as trusted.
    on_app = {name for name, service in services(rendered).items() if "app" in networks_of(service)}
    assert on_app == {"haproxy", "gateway"}, on_app


def test_every_network_is_an_attachable_overlay(rendered):
    for name, network in rendered["networks"].items():
        assert network.get("driver") == "overlay", name
        assert network.get("attachable") is True, name


def networks_of(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    networks = service.get("networks") or {}
    if isinstance(networks, list):
        return {name: {} for name in networks}
    return {name: dict(value or {}) for name, value in networks.items()}


# ---- Prometheus, Grafana, exporters -----------------------------------------------------------------


def test_promtool_accepts_the_swarm_configuration(promtool):
    run_promtool(promtool, "check", "config", str(PROMETHEUS_SWARM.relative_to(ROOT)))


def test_every_name_prometheus_looks_up_is_a_service_it_can_reach(rendered):
    everything = services(rendered)
    reachable = set(networks_of(everything["prometheus"]))
    # DNS name -> the networks on which it resolves: the service name and its aliases.
    names: dict[str, set[str]] = {}
    for name, service in everything.items():
        for network, options in networks_of(service).items():
            for alias in [name, *(options.get("aliases") or [])]:
                names.setdefault(alias, set()).add(network)
    problems = []
    for job in yaml.safe_load(PROMETHEUS_SWARM.read_text())["scrape_configs"]:
        looked_up = [n for sd in job.get("dns_sd_configs", []) for n in sd["names"]]
        for static in job.get("static_configs", []):
            looked_up += [target.split("//")[-1] for target in static["targets"]]
        for relabel in job.get("relabel_configs", []):
            if relabel.get("target_label") == "__address__":
                looked_up.append(relabel["replacement"])
        for target in looked_up:
            host = target.removeprefix("tasks.").rsplit(":", 1)[0]
            if host == "localhost":
                continue
            if not names.get(host, set()) & reachable:
                problems.append(f"job {job['job_name']}: {target} is no service on {sorted(reachable)}")
    assert not problems, "\n".join(problems)


def test_prometheus_loads_the_checked_files(rendered):
    prometheus = services(rendered)["prometheus"]
    files = {
        entry["target"]: Path(rendered["configs"][entry["source"]]["file"])
        for entry in mounted(prometheus, "configs")
    }
    assert files["/etc/prometheus/prometheus.yml"] == PROMETHEUS_SWARM
    rules = {target: path for target, path in files.items() if target.startswith("/etc/prometheus/rules/")}
    expected = sorted((ROOT / "ops" / "prometheus" / "rules").glob("*.rules.yml"))
    assert sorted(rules.values()) == expected
    assert all(Path(target).name == path.name for target, path in rules.items())


def test_grafana_gets_every_dashboard_and_data_source(rendered):
    grafana = services(rendered)["grafana"]
    files = {
        Path(rendered["configs"][entry["source"]]["file"]): entry["target"]
        for entry in mounted(grafana, "configs")
    }
    env = env_of(grafana)
    for dashboard in sorted((GRAFANA / "dashboards").glob("*.json")):
        assert files.get(dashboard) == f"{env['SHOP_DASHBOARDS_DIR']}/{dashboard.name}", dashboard.name
    for kind in ("datasources", "dashboards"):
        for path in sorted((GRAFANA / "provisioning" / kind).glob("*.yml")):
            assert files.get(path) == f"/etc/grafana/provisioning/{kind}/{path.name}", path.name
    uids = {
        source["uid"]
        for path in (GRAFANA / "provisioning" / "datasources").glob("*.yml")
        for source in yaml.safe_load(path.read_text())["datasources"]
    }
    assert uids == {"prometheus", "tempo", "loki"}
    assert env["PROMETHEUS_URL"] == "http://prometheus:9090"
    assert env["GF_SECURITY_ADMIN_PASSWORD__FILE"] == "/run/secrets/grafana_admin_password"


def test_the_postgres_exporters_run_the_local_stacks_query():
    script = LOCAL_EXPORTERS.read_text()
    match = re.search(r"<<'YAML'[^\n]*\n(.*?)\nYAML\n", script, re.DOTALL)
    assert match, f"no queries.yaml heredoc in {LOCAL_EXPORTERS}"
    assert yaml.safe_load(PG_EXPORTER_QUERIES.read_text()) == yaml.safe_load(match[1])
