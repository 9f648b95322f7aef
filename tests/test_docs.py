"""The documentation's links and pictures resolve, and it holds today's facts rather than issue history."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
ISSUE = re.compile(r"\bissues? ?#?\d+|\(#\d+\)", re.IGNORECASE)


def anchors(page: Path) -> set[str]:
    """GitHub's heading anchors of a Markdown page, plus its explicit ``<a id=...>`` targets."""
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.DOTALL)
    found, seen = set(re.findall(r'<a id="([^"]+)"', text)), {}
    for heading in re.findall(r"^#{1,6} +(.+?) *$", text, flags=re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        found.add(slug if n == 0 else f"{slug}-{n}")
    return found


def links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.DOTALL)
    return [t for t in LINK.findall(text) if not re.match(r"[a-z]+:", t)]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_and_pictures_resolve(page):
    broken = []
    for target in links(page):
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}: no heading or id #{anchor} in {dest.name}")
    assert not broken, f"{page.name}: " + "; ".join(broken)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_issue_numbers(page):
    hits = [m.group(0) for m in ISSUE.finditer(page.read_text())]
    assert not hits, f"{page.name} names issues {hits}: history lives in git, docs say what is true now"


def test_the_checks_catch_a_broken_link_and_an_issue_number(tmp_path):
    page = tmp_path / "p.md"
    page.write_text("# Top\n[a](missing.md) [b](#top) [c](#gone) ![d](p.md)\nfixed in issue 12\n")
    assert links(page) == ["missing.md", "#top", "#gone", "p.md"]
    assert anchors(page) == {"top"}
    assert ISSUE.search(page.read_text())
