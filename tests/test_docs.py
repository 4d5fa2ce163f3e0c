"""README.md and docs/*.md: every relative link resolves, every `handpose` command has a section.

- Links: inline links and images (`[text](target)`, `![alt](target)`), reference definitions
  (`[name]: target`) and HTML `href` / `src` attributes, outside fenced code blocks, inline code
  and HTML comments. A relative target must be a file or folder inside the repository (GitHub
  cannot follow a link out of it); a `#anchor` on a Markdown file (or alone: the same file) must
  be the GitHub slug of one of its headings.
- Commands: the parser `handpose --help` builds (`handpose.cli.build_parser`, so only the
  commands whose modules are installed), each command's own arguments added as `handpose CMD`
  adds them, walked down through sub-actions (`handpose data teacher`, `handpose convert keras`,
  ...). Each must appear in a heading of some docs/*.md page as a code span that starts with the
  command's words and does not go on with one of its sub-actions.
Neither part imports TensorFlow (the command modules import it only when they run).
"""

from __future__ import annotations

import argparse
import importlib
import re
from pathlib import Path

import pytest

from handpose.cli import COMMANDS, build_parser

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [ROOT / "README.md", *DOCS]

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
COMMENT = re.compile(r"<!--.*?-->", re.S)
CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.S)
INLINE_LINK = re.compile(
    r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)"
)
REF_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.M)
HTML_ATTR = re.compile(r"""\b(?:href|src)\s*=\s*["']([^"']+)["']""", re.I)
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def _prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) outside fenced code blocks, HTML comments blanked."""
    text = COMMENT.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    lines, fence = [], None
    for number, line in enumerate(text.splitlines(), 1):
        opened = FENCE.match(line)
        if fence is not None:
            if opened and opened.group(1)[0] == fence[0] and len(opened.group(1)) >= len(fence):
                fence = None
            continue
        if opened:
            fence = opened.group(1)
            continue
        lines.append((number, line))
    return lines


def headings(path: Path) -> list[str]:
    """The heading texts of a Markdown file, in order (not those inside code blocks)."""
    out = []
    for _, line in _prose_lines(path.read_text(encoding="utf-8")):
        match = HEADING.match(line)
        if match:
            out.append(match.group(2))
    return out


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: its rendered text, lower case, punctuation dropped
    (letters, digits, `_`, `-` and spaces kept), spaces turned into hyphens."""
    text = re.sub(r"!\[[^\]]*\]\([^)]*\)", "", heading)  # images render no text
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # links render their text
    text = CODE_SPAN.sub(lambda m: m.group(2), text)
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML tags
    text = re.sub(r"(\*\*|__|\*)(.+?)\1", r"\2", text)  # emphasis markers
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a Markdown file, repeated slugs numbered as GitHub does."""
    seen: dict[str, int] = {}
    out = set()
    for heading in headings(path):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        out.add(base if count == 0 else f"{base}-{count}")
    return out


def links(path: Path) -> list[tuple[int, str]]:
    """(line number, target) of every link of a Markdown file, outside code and comments."""
    out = []
    for number, line in _prose_lines(path.read_text(encoding="utf-8")):
        prose = CODE_SPAN.sub(lambda m: " " * len(m.group(0)), line)
        for pattern in (INLINE_LINK, REF_DEFINITION, HTML_ATTR):
            out.extend((number, m.group(1)) for m in pattern.finditer(prose))
    return out


def broken_links(path: Path, root: Path = ROOT) -> list[str]:
    """One line per link of `path` that does not resolve inside `root` (module docstring)."""
    problems = []
    for number, target in links(path):
        where = f"{path.relative_to(root)}:{number}: {target}"
        if not target or SCHEME.match(target) or target.startswith("//"):
            continue  # web links and e-mail are not checked here
        file_part, _, anchor = target.partition("#")
        file_part = file_part.split("?")[0]
        resolved = (path.parent / file_part).resolve() if file_part else path
        if file_part.startswith("/"):
            problems.append(f"{where}: absolute path (use a relative one)")
            continue
        if not resolved.is_relative_to(root.resolve()):
            problems.append(f"{where}: leads out of the repository")
            continue
        if not resolved.exists():
            problems.append(f"{where}: no such file")
            continue
        if anchor and resolved.suffix.lower() == ".md" and anchor not in anchors(resolved):
            problems.append(f"{where}: no heading with anchor #{anchor} in {resolved.name}")
    return problems


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page):
    assert page.is_file()
    assert broken_links(page) == []


def _sub_actions(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return {name: sub for action in actions for name, sub in action.choices.items()}


def handpose_commands() -> dict[tuple[str, ...], set[str]]:
    """Every `handpose` command as its words -> the names of its sub-actions (empty: a leaf)."""
    parser, subparsers = build_parser()
    for name, sub in subparsers.items():
        importlib.import_module(COMMANDS[name][0]).add_arguments(sub)
    out: dict[tuple[str, ...], set[str]] = {}

    def walk(words: tuple[str, ...], node: argparse.ArgumentParser) -> None:
        children = _sub_actions(node)
        if words:
            out[words] = set(children)
        for name, child in children.items():
            walk((*words, name), child)

    walk((), parser)
    return out


def documented(words: tuple[str, ...], children: set[str], spans: list[list[str]]) -> bool:
    """A heading code span starts with `handpose WORDS` and does not name a sub-action next."""
    full = ["handpose", *words]
    return any(
        span[: len(full)] == full and (len(span) == len(full) or span[len(full)] not in children)
        for span in spans
    )


def heading_code_spans() -> list[list[str]]:
    return [
        m.group(2).split()
        for page in DOCS
        for heading in headings(page)
        for m in CODE_SPAN.finditer(heading)
    ]


def test_the_command_walk_finds_every_installed_command():
    commands = handpose_commands()
    _, installed = build_parser()
    assert {words[0] for words in commands} == set(installed)
    for words, children in commands.items():
        if words in (("data",), ("convert",)):
            assert children, words  # these have sub-actions (render, keras, ...)


def test_every_handpose_command_has_a_docs_section():
    spans = heading_code_spans()
    missing = [
        "handpose " + " ".join(words)
        for words, children in handpose_commands().items()
        if not documented(words, children, spans)
    ]
    assert missing == [], f"no docs/*.md heading with these commands in a code span: {missing}"


def test_slugs_follow_github():
    assert slug("`handpose run` — the app, locally or on the Pi") == (
        "handpose-run--the-app-locally-or-on-the-pi"
    )
    assert slug("Settings (`setting_schema.json`, `act_settings.json`)") == (
        "settings-setting_schemajson-act_settingsjson"
    )
    assert slug("[Real photos](x.md): **how** they do") == "real-photos-how-they-do"


def test_the_checker_catches_broken_links(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs/a.md").write_text("# A page\n\n## `handpose run` — the app\n")
    page = tmp_path / "README.md"
    page.write_text(
        "# Title\n\n[ok](docs/a.md#handpose-run--the-app) [top](#title) [web](https://x.org)\n"
        "[gone](docs/b.md) [bad anchor](docs/a.md#nope) [out](../elsewhere.md)\n"
        "`[in code](docs/b.md)`\n<!-- [commented](docs/b.md) -->\n"
        "```\n[fenced](docs/b.md)\n```\n![img](docs/c.png)\n[ref]: docs/d.md\n"
    )
    problems = broken_links(page, root=tmp_path)
    assert [p.split(": ")[1] for p in problems] == [
        "docs/b.md",
        "docs/a.md#nope",
        "../elsewhere.md",
        "docs/c.png",
        "docs/d.md",
    ]
