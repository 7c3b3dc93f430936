"""The README and docs/ stay true to the code: length, links, make targets, kepu commands, KEPU_* variables.

The README is the front page (what kepu is, the two commands, the operator's path, links); everything else
lives in docs/. These checks read the Markdown as text: commands and targets count only inside code (a
`span` or a fenced block), where a reader copies them from.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from kepu.cli import build_parser
from kepu.config import ENV_VARS

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
REFERENCE = DOCS / "reference.md"
README_MAX_LINES = 200

_FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.M | re.S)
_SPAN = re.compile(r"`([^`\n]+)`")
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$", re.M)
_MAKE = re.compile(r"(?:^|[\s;&|(])make[ \t]+([a-z][\w-]*)", re.M)
# `kepu` as a command: at the start of code, after white space or a bin/ folder; never include/kepu/ or kepu_x.
_KEPU = re.compile(r"(?:^|(?<=[\s;&|(])|(?<=bin/))kepu[ \t]+([a-z][\w-]*)(?:[ \t]+([a-z][\w-]*))?", re.M)
_KEPU_VAR = re.compile(r"\bKEPU_[A-Z0-9_]+\b")


def documents() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else path.name


def without_code(text: str) -> str:
    """The prose: fenced blocks and code spans removed (a link inside code is an example, not a link)."""
    return _SPAN.sub("", _FENCE.sub("", text))


def code_of(text: str) -> list[str]:
    """Every fenced block and code span, where commands are written."""
    blocks = [m.group(0) for m in _FENCE.finditer(text)]
    return blocks + _SPAN.findall(_FENCE.sub("", text))


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation (also CJK's 、：（）) dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(text: str) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for m in _HEADING.finditer(_FENCE.sub("", text)):
        base = slug(m.group(2))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def broken_links(doc: Path, text: str) -> list[str]:
    """Relative links of ``doc`` whose file, or whose #anchor in a Markdown file, does not exist."""
    problems = []
    for target in _LINK.findall(without_code(text)):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto: …
            continue
        path_part, _, anchor = target.partition("#")
        dest = (doc.parent / path_part).resolve() if path_part else doc
        if not dest.exists():
            problems.append(f"{_rel(doc)}: {target} (no such file)")
            continue
        if anchor and dest.suffix == ".md":
            own = text if dest == doc else dest.read_text(encoding="utf-8")
            if anchor not in anchors(own):
                problems.append(f"{_rel(doc)}: {target} (no heading with that anchor in {dest.name})")
    return problems


def makefile_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    return {m.group(1) for m in re.finditer(r"^([A-Za-z][\w-]*)[ \t]*:(?!=)", text, re.M)}


def make_targets_named(text: str) -> set[str]:
    return {name for code in code_of(text) for name in _MAKE.findall(code)}


def cli_commands() -> dict[str, set[str]]:
    """Top-level kepu commands with their subcommands (empty for a command that takes arguments)."""

    def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                return dict(action.choices)
        return {}

    return {name: set(subcommands(p)) for name, p in subcommands(build_parser()).items()}


def unknown_kepu_commands(text: str, commands: dict[str, set[str]]) -> set[str]:
    bad = set()
    for code in code_of(text):
        for command, action in _KEPU.findall(code):
            if command not in commands:
                bad.add(f"kepu {command}")
            elif commands[command] and action and action not in commands[command]:
                bad.add(f"kepu {command} {action}")
            elif commands[command] and not action:
                bad.add(f"kepu {command} (which one of {', '.join(sorted(commands[command]))}?)")
    return bad


# --- the documents ---------------------------------------------------------------------------------------


def test_readme_is_a_front_page() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, (
        f"README.md has {len(lines)} lines, at most {README_MAX_LINES}: move the detail into docs/"
    )


def test_readme_links_every_document() -> None:
    linked = {t.partition("#")[0] for t in _LINK.findall(without_code(README.read_text(encoding="utf-8")))}
    missing = [f"docs/{p.name}" for p in sorted(DOCS.glob("*.md")) if f"docs/{p.name}" not in linked]
    assert not missing, f"README.md does not link {missing}"


def test_every_relative_link_resolves() -> None:
    problems = [p for doc in documents() for p in broken_links(doc, doc.read_text(encoding="utf-8"))]
    assert not problems, "broken links:\n" + "\n".join(problems)


def test_every_make_target_named_exists() -> None:
    targets = makefile_targets()
    assert {"demo", "test", "setup"} <= targets  # the parse works
    missing = {
        f"{_rel(doc)}: make {name}"
        for doc in documents()
        for name in make_targets_named(doc.read_text(encoding="utf-8"))
        if name not in targets
    }
    assert not missing, f"make targets named in the docs but not in the Makefile: {sorted(missing)}"


def test_every_kepu_command_named_exists() -> None:
    commands = cli_commands()
    assert {"demo", "check", "judging"} <= set(commands)  # the parse works
    bad = {
        f"{_rel(doc)}: {c}"
        for doc in documents()
        for c in unknown_kepu_commands(doc.read_text(encoding="utf-8"), commands)
    }
    assert not bad, f"kepu commands named in the docs but not in kepu.cli.build_parser: {sorted(bad)}"


def test_reference_lists_every_kepu_command() -> None:
    text = REFERENCE.read_text(encoding="utf-8")
    leaves = [f"kepu {c} {a}".strip() for c, actions in cli_commands().items() for a in sorted(actions) or [""]]
    missing = [leaf for leaf in leaves if f"`{leaf}" not in text]
    assert not missing, f"docs/reference.md does not list {missing}"


def test_reference_documents_exactly_the_kepu_variables() -> None:
    named = set(_KEPU_VAR.findall(REFERENCE.read_text(encoding="utf-8")))
    assert not set(ENV_VARS) - named, f"undocumented in docs/reference.md: {sorted(set(ENV_VARS) - named)}"
    assert not named - set(ENV_VARS), (
        f"named in docs/reference.md but not in kepu.config.ENV_VARS: {sorted(named - set(ENV_VARS))}"
    )


# --- the checks themselves catch what they are for --------------------------------------------------------


def test_slug_follows_github() -> None:
    assert slug("Two commands 两条命令") == "two-commands-两条命令"
    assert (
        slug("1. Formal review and compliance (形式审查、内容合规审查)")
        == "1-formal-review-and-compliance-形式审查内容合规审查"
    )
    assert slug("3. A round 评审轮次: DAG `kepu_judging`") == "3-a-round-评审轮次-dag-kepu_judging"
    assert anchors("# A\n## A\n```\n# not a heading\n```\n") == {"a", "a-1"}


def test_link_check_finds_a_missing_file_and_anchor(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Present 在\n", encoding="utf-8")
    doc = tmp_path / "doc.md"
    text = (
        "[ok](other.md#present-在) [file](missing.md) [anchor](other.md#absent) [self](#nowhere) "
        "[web](https://example.org/x.md) `[code](missing-too.md)`\n"
    )
    problems = broken_links(doc, text)
    assert [p.split(": ", 1)[1].split(" ")[0] for p in problems] == ["missing.md", "other.md#absent", "#nowhere"]


def test_command_checks_find_what_does_not_exist() -> None:
    commands = {"judging": {"status", "roster"}, "check": set()}
    text = (
        "Run `kepu judging status`, `.venv/bin/kepu check 作品.zip`, `kepu judging rank` and `kepu nothing`;"
        " not include/kepu/ nor `kepu_intake`.\n```bash\nmake demo && make missing-target\n```\n"
    )
    assert unknown_kepu_commands(text, commands) == {"kepu judging rank", "kepu nothing"}
    assert make_targets_named(text) == {"demo", "missing-target"}
    assert make_targets_named("`force` makes them all again; make it so") == set()
