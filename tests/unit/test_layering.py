"""The package's layers: a module imports only its own layer or a lower one, and no two parts import each other.

From the bottom: the core (campaign, configuration, the steps' context, records, storage, findings, the
rule registry and the batches of mapped tasks), the media checks, the intake stage, judging, the awards
(certificates and publication), then what faces people and machines (dashboard, command line, the Airflow
kit, the embedded Airflow). The generators of the demo and the benchmarks (:mod:`kepu.devtools`) sit apart:
only the command line may offer them. Every import counts, also one inside a function. The few edges that
break the order are listed with their reason; the test also fails when one of them is gone, so the list only
shrinks.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

PACKAGE = Path(__file__).resolve().parents[2] / "include" / "kepu"

CORE = (
    "errors",
    "rules",
    "campaign",
    "config",
    "context",
    "clock",
    "findings",
    "cells",
    "provinces",
    "storage",
    "db",
    "childproc",
    "mailsink",
    "safezip",
    "xlsx_read",
    "texttable",
    "batches",
)
#: Layer of each part (a top-level module or subpackage of kepu), lowest first.
LAYERS: dict[str, int] = {
    **dict.fromkeys(CORE, 0),
    "media": 1,
    "intake": 2,
    "judging": 3,
    "certificates": 4,
    "publication": 4,
    **dict.fromkeys(("dashboard", "orchestration", "localairflow", "cli"), 5),
    "devtools": 6,
}
#: Parts that form one unit for the cycle check: certificates and publication are the awards stage.
UNITS = {"certificates": "awards", "publication": "awards"}

#: Imports against the order, each with why it is still there. Remove an entry when its import goes.
ALLOWED: dict[tuple[str, str], str] = {
    ("cli", "devtools"): "`kepu sample` writes the demo's sample inbox",
    ("judging", "publication"): "the judges' link e-mails use the result e-mails' mail path (publication.notify)",
}


def _part(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "kepu" else None


def imports() -> dict[tuple[str, str], list[str]]:
    """(importing part, imported part) → the modules where that import is written."""
    found: dict[tuple[str, str], list[str]] = defaultdict(list)
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        module = ".".join(rel.parts)
        here = _part(module)
        if here is None:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                targets = [f"{node.module}.{a.name}" if node.module == "kepu" else node.module for a in node.names]
            for target in targets:
                there = _part(target)
                if there is not None and there != here and there != "__init__":
                    found[(here, there)].append(module)
    return dict(found)


def test_every_part_has_a_layer() -> None:
    parts = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()}
    parts = {p for p in parts if not p.startswith(("_", ".")) and p not in ("py", "__pycache__")}
    parts = {p for p in parts if (PACKAGE / f"{p}.py").exists() or (PACKAGE / p / "__init__.py").exists()}
    assert sorted(parts - set(LAYERS)) == [], "give each new module or package of kepu a layer in LAYERS"
    assert sorted(set(LAYERS) - parts) == [], "LAYERS names a part that no longer exists"


def test_no_part_imports_a_higher_layer() -> None:
    wrong = {
        (a, b): sorted(set(where))
        for (a, b), where in imports().items()
        if LAYERS[b] > LAYERS[a] and (a, b) not in ALLOWED
    }
    assert wrong == {}, "a lower layer imports a higher one (importer, imported): modules"


def test_nothing_but_the_command_line_imports_the_devtools() -> None:
    users = {a: sorted(set(w)) for (a, b), w in imports().items() if b == "devtools" and a != "devtools"}
    assert set(users) <= {"cli"}, users


def test_the_allowed_exceptions_are_still_needed() -> None:
    edges = imports()
    assert [edge for edge in ALLOWED if edge not in edges] == [], "remove the entries whose import is gone"
    assert all(LAYERS[b] > LAYERS[a] for a, b in ALLOWED), "an entry of ALLOWED that follows the order"


#: Modules outside :mod:`kepu.orchestration` that import Airflow, each with why. Remove an entry when it goes.
AIRFLOW_USERS: dict[str, str] = {
    "kepu.dashboard.auth": "the dashboard's login is Airflow's (its auth manager and JWT cookie)",
    "kepu.publication.notify": "the result e-mails read the kepu_smtp connection through Airflow's hooks",
    "kepu.publication.platforms": "the partner platforms' endpoints are Airflow HTTP connections",
}


def airflow_users() -> set[str]:
    """Modules of kepu that import Airflow, also inside a function."""
    found = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            if any(n == "airflow" or n.startswith("airflow.") for n in names):
                found.add(module)
    return found


def test_airflow_is_imported_by_the_orchestration_kit_only() -> None:
    users = airflow_users()
    assert {m for m in users if m.startswith("kepu.orchestration.")}, "the kit imports Airflow: the scan is broken"
    outside = {m for m in users if not m.startswith("kepu.orchestration.")}
    assert sorted(outside - set(AIRFLOW_USERS)) == [], "Airflow-facing code belongs in kepu.orchestration"
    assert sorted(set(AIRFLOW_USERS) - outside) == [], "remove the entries that no longer import Airflow"


def _cycles(edges: set[tuple[str, str]]) -> list[list[str]]:
    """Strongly connected groups of more than one unit (Tarjan)."""
    graph: dict[str, set[str]] = defaultdict(set)
    for a, b in edges:
        graph[a].add(b)
        graph.setdefault(b, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_two_parts_import_each_other() -> None:
    units = {(UNITS.get(a, a), UNITS.get(b, b)) for a, b in imports()}
    assert _cycles({(a, b) for a, b in units if a != b}) == []


def test_the_checks_see_a_cycle_and_a_wrong_import() -> None:
    # The checks themselves: a made-up graph with a cycle, and an upward import.
    assert _cycles({("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")}) == [["a", "b", "c"]]
    assert LAYERS["storage"] < LAYERS["intake"] < LAYERS["dashboard"]


def _is_module(name: str) -> bool:
    """Whether ``name`` (``kepu.…``) is a module or package of the package."""
    where = PACKAGE.joinpath(*name.split(".")[1:])
    return where.with_suffix(".py").is_file() or (where / "__init__.py").is_file()


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _dotted(node: ast.expr, modules: dict[str, str]) -> str | None:
    """The kepu module an expression such as ``steps`` or ``kepu.intake.steps`` names, else None."""
    if isinstance(node, ast.Name):
        return modules.get(node.id)
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value, modules)
        return f"{base}.{node.attr}" if base is not None else None
    return None


def private_imports() -> dict[str, list[str]]:
    """``module.name`` of each private name (a leading underscore) one module takes from another → those modules.

    A private name is its module's own business, also within a part: another module that needs it needs a
    public name. Both ``from kepu.x import _name`` and ``x._name`` on an imported module count.
    """
    found: dict[str, list[str]] = defaultdict(list)
    for path in sorted(PACKAGE.rglob("*.py")):
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
        tree = ast.parse(path.read_text(encoding="utf-8"))
        modules: dict[str, str] = {}  # a name bound to a module of kepu → that module
        taken: list[str] = []
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == "kepu":
                        modules[alias.asname or "kepu"] = alias.name if alias.asname else "kepu"
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                if node.module.split(".")[0] != "kepu":
                    continue
                for alias in node.names:
                    target = f"{node.module}.{alias.name}"
                    if _private(alias.name):
                        taken.append(target)
                    elif _is_module(target):
                        modules[alias.asname or alias.name] = target
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and _private(node.attr):
                base = _dotted(node.value, modules)
                if base is not None and _is_module(base):
                    taken.append(f"{base}.{node.attr}")
        for target in taken:
            if target.rsplit(".", 1)[0] != module:
                found[target].append(module)
    return dict(found)


def test_no_module_imports_a_private_name_of_another() -> None:
    assert private_imports() == {}, "make the name public where another module needs it"


def test_the_private_import_check_sees_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The check on a made-up package: media modules taking private names of the core and of their own part,
    # by name and as an attribute of the module; a module's own private names and dunders are no finding.
    fake = tmp_path / "kepu"
    (fake / "media").mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "media" / "__init__.py").write_text("")
    (fake / "media" / "probe.py").write_text(
        "from kepu.storage import _check\nfrom kepu.media.runner import _own\nfrom kepu.media import runner\n\n"
        "runner._limit()\n"
    )
    (fake / "media" / "timing.py").write_text(
        "import kepu.media.runner\nimport kepu.storage as store\n\nkepu.media.runner._own()\nprint(store.__name__)\n"
    )
    (fake / "media" / "runner.py").write_text("def _own() -> None: ...\ndef _limit() -> None: ...\n\n_own()\n")
    (fake / "storage.py").write_text("def _check() -> None: ...\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    assert private_imports() == {
        "kepu.storage._check": ["kepu.media.probe"],
        "kepu.media.runner._own": ["kepu.media.probe", "kepu.media.timing"],
        "kepu.media.runner._limit": ["kepu.media.probe"],
    }
