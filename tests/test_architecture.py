"""The layout rules of ARCHITECTURE.md, checked on every module's imports (lazy ones included):
one-way layers, no import circle, the table in ARCHITECTURE.md equal to the rules enforced here,
and the sizes the project holds itself to (modules, README)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "augpe"
BASE = {"config", "errors", "timing", "resources", "atomic"}
LOW = BASE | {"records"}
ALLOWED: dict[str, set[str]] = {
    "records": BASE,
    "privacy": LOW | {"embed"},  # the vote ranks with the embedding side's exact k-NN search
    "llm": BASE,
    "embed": BASE,
    "pe": LOW | {"llm", "embed"},
    "scale": LOW | {"llm", "embed", "privacy", "pe"},
    "runner": LOW | {"llm", "embed", "pe", "privacy", "scale"},
    # the top tier (release, audit, evaluate) may use each other without cycles: evaluate is lowest
    "evaluate": LOW | {"embed", "runner"},
    "release": LOW | {"privacy", "runner", "evaluate"},
    "audit": LOW | {"llm", "embed", "pe", "privacy", "runner", "evaluate"},
}
TOP = {"cli", "demo", "__init__", "__main__"}  # the application: may import anything


def _layer(path: Path) -> str:
    rel = path.relative_to(PACKAGE).with_suffix("")
    return rel.parts[0]


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for n in names:
            parts = n.split(".")
            if parts[0] == "augpe" and len(parts) > 1:
                found.add(parts[1])
    return found


def test_imports_flow_one_way() -> None:
    broken = []
    for path in sorted(PACKAGE.rglob("*.py")):
        layer = _layer(path)
        if layer in TOP or layer.startswith("_") or layer in BASE:  # the base: checked below
            continue
        allowed = ALLOWED[layer] | {layer}
        for target in sorted(_imports(path)):
            head = target.split(".")[0]
            if target not in allowed and head not in allowed:
                broken.append(f"{path.relative_to(PACKAGE)} imports augpe.{target}")
    assert broken == []


def test_base_modules_import_only_the_base() -> None:
    for name in BASE:
        files = [PACKAGE / f"{name}.py"] if (PACKAGE / f"{name}.py").is_file() else []
        files += sorted((PACKAGE / name).glob("*.py"))
        assert files, name
        for path in files:
            assert _imports(path) <= BASE, path


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _module_graph() -> dict[str, set[str]]:
    """module -> the augpe modules it imports (lazily or for types included)."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for a in node.names:
                    sub = f"{node.module}.{a.name}"
                    deps.add(sub if sub in modules else node.module)
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names)
        # a module importing its own package's __init__ is not a circle of modules
        graph[name] = {d for d in deps if d in modules and not name.startswith(d + ".")} - {name}
    return graph


def test_no_module_imports_a_module_that_imports_it_back() -> None:
    graph = _module_graph()
    circles = []
    for start in graph:  # a path from a module back to itself
        stack, seen = [(start, [start])], set()
        while stack:
            node, path = stack.pop()
            for nxt in graph[node]:
                if nxt == start:
                    circles.append(" -> ".join([*path, start]))
                elif nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, [*path, nxt]))
    assert circles == []


def _rules_table() -> str:
    order = ["records", "embed", "llm", "privacy", "pe", "scale", "runner", "evaluate"]
    order += ["release", "audit"]
    assert sorted(order) == sorted(ALLOWED)
    rows = ["| layer | may import |", "|---|---|"]
    for layer in order:
        named = sorted(ALLOWED[layer] - BASE, key=lambda x: (x != "records", x))
        rows.append(f"| `{layer}` | " + ", ".join(["base", *(f"`{x}`" for x in named)]) + " |")
    return "\n".join(rows)


def test_architecture_md_states_the_rules_this_test_enforces() -> None:
    text = (PACKAGE.parent / "ARCHITECTURE.md").read_text(encoding="utf-8")
    block = text.split("<!-- import-rules")[1].split("<!-- /import-rules -->")[0]
    table = block.split("-->", 1)[1].strip()
    assert table == _rules_table()


def test_no_module_is_over_400_lines_and_the_readme_is_under_250() -> None:
    long = [
        f"{p.relative_to(PACKAGE)}: {n}"
        for p in sorted(PACKAGE.rglob("*.py"))
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > 400
    ]
    assert long == []
    readme = (PACKAGE.parent / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(readme) < 250


def test_docs_config_md_is_generated_from_the_models_and_every_setting_is_described() -> None:
    from augpe.config.reference import reference_markdown, reference_rows

    assert (PACKAGE.parent / "docs" / "config.md").read_text(encoding="utf-8") == (
        reference_markdown()
    ), "regenerate: python -m augpe.config.reference > docs/config.md"
    assert [name for _, name, _, desc in reference_rows() if not desc] == []
