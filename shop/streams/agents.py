"""Every stream agent, by the topic it consumes. Context agents (inventory, price feed) are added
here as they land."""

from __future__ import annotations

from shop.streams.runner import Agent

AGENTS: dict[str, Agent] = {}
