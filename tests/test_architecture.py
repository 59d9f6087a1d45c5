"""The layout rule of ARCHITECTURE.md, checked on every module's imports (lazy ones included):
records -> privacy, llm, embed, pe -> runner -> release, audit, evaluate, cli."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "augpe"
BASE = {"config", "errors", "timing", "resources", "atomic"}
LOW = BASE | {"records"}
ALLOWED: dict[str, set[str]] = {
    "records": BASE,
    # privacy.vote ranks neighbours with the embedding side's exact k-NN search (embed.knn)
    "privacy": LOW | {"embed"},
    "llm": BASE,
    "embed": BASE,
    "pe": LOW | {"llm", "embed"},
    "scale": LOW | {"llm", "embed", "privacy", "pe", "scale"},
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
                found.add(".".join(parts[1:3]) if parts[1] == "scale" else parts[1])
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
