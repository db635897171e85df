"""Flame graphs from collapsed stacks (py-spy's `--format raw`: `frame;frame;frame COUNT` per line).

A small renderer of our own, so that one py-spy run per process gives both the picture (SVG, each
frame's width its share of the samples, hover for the name and the share) and the numbers (the
functions that cost the most, by their own samples and with what they call).
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

WIDTH = 1600
ROW = 16
MIN_WIDTH = 0.5  # pixels: narrower frames are not drawn (they are still counted)


@dataclass
class Frame:
    name: str
    samples: int = 0
    children: dict[str, Frame] = field(default_factory=dict)


def read_collapsed(path: Path) -> list[tuple[list[str], int]]:
    stacks = []
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks.append((stack.split(";"), int(count)))
    return stacks


def tree(stacks: Iterable[tuple[list[str], int]]) -> Frame:
    root = Frame("all")
    for frames, count in stacks:
        root.samples += count
        node = root
        for name in frames:
            node = node.children.setdefault(name, Frame(name))
            node.samples += count
    return root


def top_functions(stacks: list[tuple[list[str], int]], limit: int = 25) -> list[tuple[str, float, float]]:
    """(function, % of samples in it alone, % with what it calls), the costliest first by the latter
    among functions of our own and the libraries' (not the interpreter's bootstrap frames)."""
    total = sum(count for _, count in stacks) or 1
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for frames, count in stacks:
        own[frames[-1]] += count
        for name in set(frames):
            inclusive[name] += count
    ranked = sorted(own, key=lambda name: -own[name])[:limit]
    return [(name, 100 * own[name] / total, 100 * inclusive[name] / total) for name in ranked]


def _color(name: str) -> str:
    digest = sum(ord(c) for c in name)
    if "shop/" in name or "shop." in name:
        return f"rgb(230,{120 + digest % 80},{40 + digest % 40})"  # our code: orange
    return f"rgb({200 + digest % 50},{60 + digest % 90},{50 + digest % 40})"


def svg(root: Frame, title: str) -> str:
    depth = _depth(root)
    height = (depth + 2) * ROW
    scale = WIDTH / max(root.samples, 1)
    rects: list[str] = []

    def draw(node: Frame, x: float, level: int) -> None:
        width = node.samples * scale
        if width < MIN_WIDTH:
            return
        y = height - (level + 1) * ROW
        share = 100 * node.samples / max(root.samples, 1)
        label = html.escape(node.name)
        text = label if width > 60 else ""
        rects.append(
            f'<g><title>{label} ({share:.1f}%)</title><rect x="{x:.1f}" y="{y}" width="{width:.1f}"'
            f' height="{ROW - 1}" fill="{_color(node.name)}"/>'
            f'<text x="{x + 3:.1f}" y="{y + ROW - 4}" clip-path="inset(0 0 0 0)">'
            f"{text[: max(0, int(width / 7))]}</text></g>"
        )
        offset = x
        for child in sorted(node.children.values(), key=lambda c: c.name):
            draw(child, offset, level + 1)
            offset += child.samples * scale

    draw(root, 0, 0)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}"'
        ' font-family="monospace" font-size="11">'
        f'<text x="4" y="12">{html.escape(title)} ({root.samples} samples)</text>'
        + "".join(rects)
        + "</svg>\n"
    )


def _depth(node: Frame) -> int:
    return 1 + max((_depth(child) for child in node.children.values()), default=0)


def render(collapsed: Path, out: Path, title: str) -> list[tuple[str, float, float]]:
    """Writes `out` (SVG) from `collapsed`; the costliest functions."""
    stacks = read_collapsed(collapsed)
    out.write_text(svg(tree(stacks), title))
    return top_functions(stacks)
