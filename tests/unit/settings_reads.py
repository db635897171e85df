"""Which SHOP_* variables the settings read: asked of an empty environment that writes down every
name `Settings.from_env` looks up (each may also come as SHOP_*_FILE)."""

from __future__ import annotations

from typing import Any

from shop.settings import Settings


class _RecordingEnvironment(dict[str, str]):
    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.names.add(key)
        return default

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            self.names.add(key)
        return False


def variables() -> frozenset[str]:
    """Every SHOP_* variable the settings read, with every default taken."""
    env = _RecordingEnvironment()
    Settings.from_env(env)
    return frozenset(name for name in env.names if name.startswith("SHOP_"))
