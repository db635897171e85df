"""The character classes rules on text are written with, held to this Python's Unicode database."""

from __future__ import annotations

import re
import unicodedata

from shop.domain import text

EVERY_CHARACTER = "".join(map(chr, range(0x110000)))


def _members(character_class: str) -> set[str]:
    return set(re.findall(f"[{character_class}]", EVERY_CHARACTER))


def _where(predicate) -> set[str]:
    return {c for c in EVERY_CHARACTER if predicate(c)}


def test_space_is_what_str_strip_trims():
    assert _members(text.SPACE) == _where(str.isspace)
    assert all(not c.strip() for c in _members(text.SPACE))


def test_control_is_every_control_character():
    assert _members(text.CONTROL) == _where(lambda c: unicodedata.category(c) == "Cc")


def test_format_is_every_format_character_and_nothing_assigned_to_another_category():
    members = _members(text.FORMAT)
    assert members >= _where(lambda c: unicodedata.category(c) == "Cf")
    # Beyond this Python's Unicode version, only characters it does not know yet (Cf in a newer one).
    assert {unicodedata.category(c) for c in members} <= {"Cf", "Cn"}


def test_nul_is_nul():
    assert _members(text.NUL) == {"\x00"}
