"""Where a scenario's results land: `var/bench/NAME.json`, and `NAME.md` when it has a table."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from bench import report


def test_a_scenario_with_a_table_writes_both_files_and_values_json_cannot_hold_as_text(tmp_path: Path):
    at = datetime(2026, 12, 7, tzinfo=UTC)
    written = report.save("relay", {"rows": 5, "at": at}, "| a |\n", tmp_path / "bench")
    assert written == [tmp_path / "bench" / "relay.json", tmp_path / "bench" / "relay.md"]
    assert json.loads(written[0].read_text()) == {"rows": 5, "at": str(at)}
    assert written[1].read_text() == "| a |\n"


def test_a_scenario_without_a_table_writes_only_its_json(tmp_path: Path):
    assert report.save("timers", {"fired": 1}, None, tmp_path) == [tmp_path / "timers.json"]
    assert not (tmp_path / "timers.md").exists()


def test_publishing_saves_then_prints_the_table_and_where_it_went(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setattr(report, "OUT_DIR", tmp_path)
    monkeypatch.setattr(report.save, "__defaults__", (tmp_path,))
    written = report.publish("relay", {"run_seconds": 12}, "| a |\n")
    assert written == [tmp_path / "relay.json", tmp_path / "relay.md"]
    assert capsys.readouterr().out == f"| a |\n\n(12 s; written: {written[0]}, {written[1]})\n"
    report.publish("chaos", {}, "| b |\n")
    assert capsys.readouterr().out.endswith(
        f"(written: {tmp_path / 'chaos.json'}, {tmp_path / 'chaos.md'})\n"
    )
