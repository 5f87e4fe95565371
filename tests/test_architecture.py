"""Meta-tests: the dependency rule (adapters -> core, never back) holds."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN_IN_CORE = (
    "slack_bolt",
    "slack_sdk",
    "botbuilder",
    "botframework",
    "aiohttp.web",
    "adapters",
    "bots",
)


def test_importing_core_brings_no_platform_or_web_framework() -> None:
    code = (
        "import json, sys, pkgutil, importlib, core\n"
        "for m in pkgutil.walk_packages(core.__path__, 'core.'):\n"
        "    importlib.import_module(m.name)\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    loaded = json.loads(out)
    assert any(name.startswith("core.engine") for name in loaded), "walk did not import core"
    leaked = [m for m in loaded for f in FORBIDDEN_IN_CORE if m == f or m.startswith(f + ".")]
    assert leaked == []


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_core_source_imports_nothing_above_it() -> None:
    for path in (ROOT / "core").rglob("*.py"):
        for name in _imports(path):
            assert not any(name == f or name.startswith(f + ".") for f in FORBIDDEN_IN_CORE), (path, name)


def test_doors_never_import_each_other() -> None:
    doors = [p.name for p in (ROOT / "adapters").iterdir() if p.is_dir() and (p / "__init__.py").exists()]
    assert {"kakao", "slack", "teams"} <= set(doors)
    for door in doors:
        for path in (ROOT / "adapters" / door).rglob("*.py"):
            others = {f"adapters.{d}" for d in doors if d != door}
            bad = [n for n in _imports(path) if any(n == o or n.startswith(o + ".") for o in others)]
            assert bad == [], (path, bad)


def test_only_settings_reads_the_environment() -> None:
    for path in [*(ROOT / "core").rglob("*.py"), *(ROOT / "adapters").rglob("*.py")]:
        if path.name == "settings.py":
            continue
        source = path.read_text(encoding="utf-8")
        assert "os.environ" not in source and "os.getenv" not in source, path
