"""Every relative link of the README and docs/ lands on a file that exists, and on a heading of it
when it names one (as GitHub makes a heading's anchor)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    text = heading.replace("`", "")
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def prose_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, line) outside fenced code, with inline code taken out."""
    lines, fenced = [], False
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced:
            lines.append((number, re.sub(r"`[^`]*`", "", line)))
    return lines


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    seen: dict[str, int] = {}
    for _, line in prose_lines(path):
        if heading := re.match(r"^#+ (.+)$", line):
            name = slug(heading[1])
            found.add(name if name not in seen else f"{name}-{seen[name]}")
            seen[name] = seen.get(name, 0) + 1
    for line in path.read_text().splitlines():  # explicit anchors: <a id="...">
        found.update(re.findall(r'<a (?:id|name)="([^"]+)"', line))
    return found


def broken_links(documents: list[Path], root: Path = ROOT) -> list[str]:
    broken = []
    for document in documents:
        for number, line in prose_lines(document):
            for target in LINK.findall(line):
                if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
                    continue
                path, _, anchor = target.partition("#")
                destination = (document.parent / path).resolve() if path else document
                where = f"{document.relative_to(root)}:{number}: {target}"
                if not destination.exists():
                    broken.append(f"{where} (no such file)")
                elif anchor and destination.suffix == ".md" and anchor not in anchors(destination):
                    broken.append(f"{where} (no such heading)")
    return broken


def test_every_relative_link_of_the_readme_and_docs_resolves():
    assert broken_links(DOCUMENTS) == []


def test_the_check_finds_a_missing_file_and_a_missing_heading(tmp_path):
    (tmp_path / "other.md").write_text("# Real heading\n")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](other.md#real-heading) [gone](missing.md) [wrong](other.md#nope)\n"
        "```\n[in code](missing.md)\n```\n"
    )
    assert broken_links([page], tmp_path) == [
        "page.md:1: missing.md (no such file)",
        "page.md:1: other.md#nope (no such heading)",
    ]
