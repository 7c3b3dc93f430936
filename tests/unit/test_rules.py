"""The rule registry (kepu.rules) against RULES.md, the campaign file and the code that emits each rule."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, get_args

import pytest

from kepu import rules
from kepu.campaign import load_campaign
from kepu.cli import main
from kepu.config import DEFAULT_CAMPAIGN_FILE
from kepu.rules import BY_CODE, CODES, RULES, STAGE_CODES, STAGES, Code, Rule

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "include" / "kepu"
#: A copy of the contract, so that a clone without ``../shared`` checks the registry too.
RULES_COPY = ROOT / "tests" / "data" / "RULES.md"
CODE_SHAPED = re.compile(r"^[A-Z]-[A-Z]+(?:-[A-Z]+)*$")
SEVERITY_WORD = re.compile(r"\b(error|warning|info)\b", re.I)


def shared_rules() -> Path | None:
    """``../shared/RULES.md`` next to the clone (or next to the folder holding its worktree)."""
    for parent in (ROOT.parent, ROOT.parent.parent):
        candidate = parent / "shared" / "RULES.md"
        if candidate.is_file():
            return candidate
    return None


def parse_rules_md(text: str) -> dict[str, tuple[frozenset[str], str]]:
    """Each code of RULES.md with the severities its rule names and its ``##`` section.

    Codes are declared in table rows (``| `CODE` | severity | rule |``, or ``| `CODE` | rule |`` in a
    table of errors) and in bullets (``- `CODE` severity — rule``); a rule's text may name a second
    severity for a band (``Error below −36``).
    """
    out: dict[str, tuple[frozenset[str], str]] = {}
    section, has_severity_column = "", False
    for line in text.splitlines():
        if line.startswith("## "):
            section = re.sub(r"\s*\(.*\)\s*$", "", line[3:]).strip()
            continue
        if line.startswith("| code |"):
            has_severity_column = "| severity |" in line
            continue
        row = re.match(r"^\| `([A-Z]-[A-Z-]+)` \|(.*)$", line)
        bullet = re.match(r"^- `([A-Z]-[A-Z-]+)` (error|warning|info) —(.*)$", line)
        if row:
            code, rest = row.group(1), row.group(2)
            if has_severity_column:
                cell, _, rule = rest.partition("|")
                severities = {w.lower() for w in SEVERITY_WORD.findall(cell)}
            else:
                severities, rule = {"error"}, rest  # "Hard numbers from the notice — errors"
        elif bullet:
            code, severities, rule = bullet.group(1), {bullet.group(2)}, bullet.group(3)
        else:
            continue
        severities |= {w.lower() for w in SEVERITY_WORD.findall(rule)}
        assert code not in out, f"{code} declared twice in RULES.md"
        out[code] = (frozenset(severities), section)
    return out


def resolve(check: str) -> Callable[..., Any]:
    module, _, qualname = check.partition(":")
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    assert callable(obj), check
    return obj  # type: ignore[no-any-return]


def code_literals() -> list[tuple[str, str, int]]:
    """Every code-shaped string literal of include/kepu as (code, module, line)."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and CODE_SHAPED.match(node.value):
                found.append((node.value, module, node.lineno))
    return found


def test_the_registry_is_the_code_type_in_rules_md_order() -> None:
    assert get_args(Code) == CODES
    assert len(set(CODES)) == len(RULES) == len(BY_CODE)


def test_the_registry_equals_rules_md() -> None:
    source = shared_rules() or RULES_COPY
    declared = parse_rules_md(source.read_text(encoding="utf-8"))
    assert list(declared) == list(CODES), f"codes differ from {source}"
    for rule in RULES:
        severities, section = declared[rule.code]
        assert rule.severities == severities, f"{rule.code}: {sorted(rule.severities)} vs RULES.md {sorted(severities)}"
        assert rule.section == section, rule.code


def test_the_copy_of_rules_md_is_current() -> None:
    shared = shared_rules()
    if shared is None:
        pytest.skip("no ../shared/RULES.md next to this clone: the copy in tests/data is the contract")
    assert RULES_COPY.read_text(encoding="utf-8") == shared.read_text(encoding="utf-8"), (
        f"RULES.md changed: copy {shared} to {RULES_COPY.relative_to(ROOT)} and update kepu/rules.py"
    )


def test_the_parser_reads_severity_bands_and_errors_only_tables() -> None:
    text = (
        "## Sound (x)\n| code | severity | rule |\n|---|---|---|\n"
        "| `A-SYNC` | warning / error | apart |\n| `A-LRA` | warning | wide |\n"
        "## Hard\n| code | rule |\n|---|---|\n| `V-SIZE` | **error** outside, **warning** inside |\n"
        "| `V-NO-AUDIO` | no audio |\n- `Q-QUOTA` error — over quota\n"
    )
    assert parse_rules_md(text) == {
        "A-SYNC": (frozenset({"warning", "error"}), "Sound"),
        "A-LRA": (frozenset({"warning"}), "Sound"),
        "V-SIZE": (frozenset({"error", "warning"}), "Hard"),
        "V-NO-AUDIO": (frozenset({"error"}), "Hard"),
        "Q-QUOTA": (frozenset({"error"}), "Hard"),
    }


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.code)
def test_each_check_exists_and_names_its_code(rule: Rule) -> None:
    assert rule.checks and rule.stages
    for check in rule.checks:
        source = inspect.getsource(resolve(check))
        assert f'"{rule.code}"' in source, f"{check} does not name {rule.code}"


def test_codes_are_named_only_by_their_checks() -> None:
    """A code-shaped literal is a declared code, in rules.py, a reader, or a module of one of its checks."""
    problems = []
    for code, module, line in code_literals():
        rule = BY_CODE.get(code)  # type: ignore[call-overload]
        if rule is None:
            problems.append(f"{module}:{line}: {code} is not declared in kepu/rules.py")
            continue
        allowed = {"kepu.rules", *rules.READERS, *(c.partition(":")[0] for c in rule.checks)}
        if module not in allowed:
            problems.append(f"{module}:{line}: {code} is emitted here but kepu/rules.py does not name {module}")
    assert not problems, "\n".join(problems)


def test_the_scan_sees_every_emitting_module() -> None:
    """The scan above can fail: it finds the literals of the checks the registry declares."""
    seen = {(code, module) for code, module, _ in code_literals()}
    for rule in RULES:
        for check in rule.checks:
            assert (rule.code, check.partition(":")[0]) in seen, (rule.code, check)


def test_the_campaign_file_lists_exactly_the_registry_with_its_severities() -> None:
    campaign = load_campaign(DEFAULT_CAMPAIGN_FILE)
    assert list(campaign.findings) == list(CODES)
    for rule in RULES:
        spec = campaign.finding(rule.code)
        assert (spec.severity, spec.soft_severity) == (rule.severity, rule.soft), rule.code


def test_stage_lists_derive_from_the_registry() -> None:
    from kepu.intake.checker import CAMPAIGN_ONLY, CHANNEL_ONLY
    from kepu.intake.package_checks import _CAMPAIGN_DECIDED

    assert set(STAGE_CODES) == set(STAGES) and all(STAGE_CODES.values())
    assert set().union(*STAGE_CODES.values()) == set(CODES)
    assert "V-TRUNCATED" in STAGE_CODES["media"] and "V-TRUNCATED" not in STAGE_CODES["probe"]
    assert {"M-FORM-FIELD", "K-FORM-FIELD", "M-FORM-CONTACT", "M-SUMMARY-LENGTH"} <= _CAMPAIGN_DECIDED
    assert CAMPAIGN_ONLY == ("Q-QUOTA", "Q-CHANNEL", "D-LATE", "D-EXTENDED", "O-DUPLICATE-FILE", "O-DUPLICATE-CONTENT")
    assert CHANNEL_ONLY == ("M-FORM-SEAL",)


def test_a_finding_outside_its_stage_is_refused() -> None:
    from kepu.findings import make_finding
    from kepu.intake.steps import save_findings

    campaign = load_campaign(DEFAULT_CAMPAIGN_FILE)
    wrong = make_finding(campaign, "V-TRUNCATED", stage="probe")
    with pytest.raises(ValueError, match=r"V-TRUNCATED \(probe\)"):
        save_findings(None, "sid", ("probe", "media"), [wrong], "run")  # type: ignore[arg-type]


def test_the_table_lists_every_code_once() -> None:
    table = rules.markdown_table()
    for code in CODES:
        assert table.count(f"| `{code}` |") == 1, code


def test_generated_tables_in_the_docs_are_current() -> None:
    files = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    for path in files:
        text = path.read_text(encoding="utf-8")
        if rules.TABLE_START in text:
            assert rules.with_table(text) == text, f"{path.name}: run `kepu rules --update {path.name}`"


def test_kepu_rules_updates_a_marked_block(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = tmp_path / "reference.md"
    doc.write_text(f"# Codes\n\n{rules.TABLE_START}\nold\n{rules.TABLE_END}\n\nafter\n", encoding="utf-8")
    assert main(["rules", "--update", str(doc)]) == 0
    text = doc.read_text(encoding="utf-8")
    assert "old" not in text and text.endswith(f"{rules.TABLE_END}\n\nafter\n")
    assert rules.with_table(text) == text and "| `V-TRUNCATED` |" in text
    capsys.readouterr()
    assert main(["rules"]) == 0
    assert capsys.readouterr().out == rules.markdown_table()
    (tmp_path / "plain.md").write_text("no markers\n", encoding="utf-8")
    assert main(["rules", "--update", str(tmp_path / "plain.md")]) == 2
