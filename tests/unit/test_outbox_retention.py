"""SHOP_OUTBOX_RETENTION: how long the relay keeps sent outbox rows, a duration like the others,
shown by `shop settings`."""

from __future__ import annotations

import pytest

from shop.settings import Settings, SettingsError
from tests.unit.settings_reads import variables


def test_one_day_by_default():
    assert Settings.from_env({}).outbox_retention == 86_400.0


@pytest.mark.parametrize(("text", "seconds"), [("2h", 7_200.0), ("1h30m", 5_400.0), ("3600", 3_600.0)])
def test_read_as_a_duration(text, seconds):
    assert Settings.from_env({"SHOP_OUTBOX_RETENTION": text}).outbox_retention == seconds


def test_a_value_that_is_no_duration_is_refused():
    with pytest.raises(SettingsError, match="SHOP_OUTBOX_RETENTION"):
        Settings.from_env({"SHOP_OUTBOX_RETENTION": "forever"})


def test_everyone_can_see_it():
    assert "SHOP_OUTBOX_RETENTION" in variables()
    assert Settings.from_env({"SHOP_OUTBOX_RETENTION": "7d"}).public_view()["outbox_retention"] == 604_800.0
