"""The cluster's tracing and logging configurations (ops/otel, ops/tempo, ops/loki).

The collector's trace pipeline is validated by a real OpenTelemetry Collector: the stack's Jaeger v2
binary is one (`jaeger validate`), and it has every component that pipeline uses. Its log pipeline
(filelog, Loki) and the Tempo and Loki files are checked for what the deployment relies on: the
components a pipeline names exist, and the ports and service names agree across the files.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parents[2]
JAEGER = ROOT / "var" / "bin" / "jaeger"  # built by `make up` (ops/local/components/jaeger.sh)


def _load(relative: str) -> dict[str, Any]:
    document = yaml.safe_load((ROOT / relative).read_text())
    assert isinstance(document, dict)
    return document


def _validate(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(JAEGER), "validate", f"--config=file:{config}"], capture_output=True, text=True
    )


def test_every_pipeline_of_the_collector_names_components_it_defines():
    collector = _load("ops/otel/collector.yml")
    for name, pipeline in collector["service"]["pipelines"].items():
        for kind in ("receivers", "processors", "exporters"):
            for component in pipeline.get(kind, []):
                assert component in collector[kind], (
                    f"pipeline {name}: {kind[:-1]} {component} is not defined"
                )
    assert set(collector["service"]["pipelines"]) == {"traces", "logs"}
    assert collector["exporters"]["otlp/tempo"]["endpoint"] == "tempo:4317"
    assert collector["exporters"]["otlphttp/loki"]["endpoint"] == "http://loki:3100/otlp"


def test_the_trace_pipeline_is_accepted_by_a_real_collector(tmp_path):
    collector = _load("ops/otel/collector.yml")
    traces = collector["service"]["pipelines"]["traces"]
    subset = {
        kind: {name: collector[kind][name] for name in traces[kind]}
        for kind in ("receivers", "processors", "exporters")
    }
    subset["service"] = {"pipelines": {"traces": traces}}
    config = tmp_path / "traces.yml"
    config.write_text(yaml.safe_dump(subset))
    result = subprocess.run(
        [str(JAEGER), "validate", f"--config=file:{config}"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
    # The check is real: a mistyped setting is refused.
    subset["exporters"]["otlp/tempo"]["tls"]["insecure"] = "maybe"
    config.write_text(yaml.safe_dump(subset))
    refused = subprocess.run(
        [str(JAEGER), "validate", f"--config=file:{config}"], capture_output=True, text=True
    )
    assert refused.returncode != 0


def test_tempo_receives_what_the_collector_sends_and_loki_listens_where_it_pushes():
    tempo = _load("ops/tempo/tempo.yml")
    assert tempo["distributor"]["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"].endswith(":4317")
    assert tempo["server"]["http_listen_port"] == 3200  # Grafana's Tempo data source
    assert tempo["storage"]["trace"]["backend"] in tempo["storage"]["trace"]
    loki = _load("ops/loki/loki.yml")
    assert loki["server"]["http_listen_port"] == 3100
    assert loki["limits_config"]["allow_structured_metadata"] is True  # OTLP log attributes
    assert loki["schema_config"]["configs"][0]["schema"] == "v13"
