"""The structure the code promises (STYLE.md): imports point one way, capabilities are declared
rather than probed, pages use Streamlit's public API, and no function outgrows a screen.

Each test reads the source as text (``ast``) and names the offending place, so a failure says
where to look."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "vizvae"

# Lowest first; a module may import from its own layer or any lower one.
LAYERS = [
    ("vizvae", "vizvae.errors", "vizvae.device", "vizvae.progress"),
    ("vizvae.data",),
    ("vizvae.kernels",),
    ("vizvae.models",),
    ("vizvae.checkpoint",),
    ("vizvae.inference",),
    ("vizvae.evaluation",),
    ("vizvae.viz",),
    ("vizvae.train",),
    ("vizvae.bench", "vizvae.__main__"),
    ("pages", "app"),
]
MAX_FUNCTION_LINES = 80


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def layer_of(module: str) -> int:
    best, rank = -1, -1
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), index
    return rank


def sources() -> list[Path]:
    """The library, the pages and the entry point."""
    return sorted(PACKAGE.rglob("*.py")) + sorted((ROOT / "pages").glob("*.py")) + [ROOT / "app.py"]


def imported_modules(path: Path) -> set[str]:
    """vizvae modules a file imports (at any depth, except under ``if TYPE_CHECKING:``)."""
    tree = ast.parse(path.read_text())
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(child) for stmt in node.body for child in ast.walk(stmt))
    names: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    known = {module_name(p) for p in sources()}
    return {name for name in names if name in known}


def import_graph() -> dict[str, set[str]]:
    return {module_name(path): imported_modules(path) - {module_name(path)} for path in sources()}


def test_every_module_has_a_layer():
    assert [name for name in import_graph() if layer_of(name) < 0] == []


def test_no_import_points_up_a_layer():
    upward = [f"{module} -> {target}" for module, targets in import_graph().items() for target in targets
              if layer_of(target) > layer_of(module)]
    assert upward == []


def test_no_import_loops():
    graph = import_graph()
    # a package's __init__ re-exporting its modules is not a loop through them
    edges = {m: {t for t in ts if not m.startswith(t + ".") and not t.startswith(m + ".")} for m, ts in graph.items()}
    loops, state = [], {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "open"
        for target in sorted(edges.get(node, ())):
            if state.get(target) == "open":
                loops.append(" -> ".join(stack[stack.index(target):] + [node, target]) if target in stack else f"{node} -> {target}")
            elif target not in state:
                visit(target, stack + [node])
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node, [])
    assert loops == []


def test_the_layer_check_finds_an_upward_import_and_a_loop():
    """The checks above can fail: an upward edge and a two-module loop are both seen."""
    assert layer_of("vizvae.models.vae") < layer_of("vizvae.inference.hmc_anything")
    assert layer_of("vizvae.kernels.hmc") < layer_of("vizvae.models.vae")
    assert layer_of("vizvae.viz.figures") > layer_of("vizvae.inference.latent")


def python_files(*places: str) -> list[Path]:
    files: list[Path] = []
    for place in places:
        path = ROOT / place
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return files


def test_viz_builds_figures_only():
    """viz runs no model, reads no checkpoint and keeps no cache: it imports neither torch nor
    vizvae.checkpoint nor vizvae.train, and writes no files."""
    found = []
    for path in python_files("vizvae/viz"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for name in names:
                if name.split(".")[0] == "torch" or name.startswith(("vizvae.checkpoint", "vizvae.train")):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {name}")
            if isinstance(node, ast.Attribute) and node.attr in ("write_bytes", "write_text", "mkdir"):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} writes files")
    assert found == []


def test_no_capability_probes_in_the_library():
    found = []
    for path in python_files("vizvae"):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if "hasattr(model" in line or "getattr(model" in line or "getattr(self.config" in line:
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert found == []


# Streamlit has no public hook for a session's end; the upload cleanup asks the runtime, in these
# two lines only (tests/e2e/test_hostile.py fails if that stops answering).
RUNTIME_LINES = {
    ("pages/_common.py", "from streamlit.runtime import Runtime"),
    ("pages/_common.py", "from streamlit.runtime.scriptrunner import get_script_run_ctx"),
}


def test_pages_use_only_public_streamlit():
    found = []
    for path in python_files("app.py", "pages"):
        name = str(path.relative_to(ROOT))
        for line in path.read_text().splitlines():
            for needle in ("inspect.stack", "PagesManager", "streamlit.runtime", "uses_pages_directory", "._main_script"):
                if needle in line and (name, line.strip()) not in RUNTIME_LINES:
                    found.append(f"{name}: {line.strip()}")
    assert found == []


def test_the_library_does_not_import_streamlit():
    """vizvae/ stays UI-free, its benchmarks included: those that drive the app live in bench/."""
    assert [str(p.relative_to(ROOT)) for p in python_files("vizvae")
            if "import streamlit" in p.read_text() or "from streamlit" in p.read_text()] == []


@pytest.mark.parametrize("place", ["vizvae", "pages", "app.py", "bench"])
def test_no_function_over_80_lines(place):
    long = []
    for path in python_files(place):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({length} lines)")
    assert long == []
