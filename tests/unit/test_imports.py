"""What each part imports: the pure core no I/O library, the CLI no web stack, no import cycle
among videogen's modules, and a clear line when the sandbox extra is missing.

Each import check runs in a fresh interpreter, so nothing another test imported can hide or fake
an import.
"""

from __future__ import annotations

import ast
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "videogen"

PURE_CORE = [
    "videogen.models",
    "videogen.capabilities",
    "videogen.scheduler",
    "videogen.fluid",
    "videogen.jobtimes",
    "videogen.eta",
    "videogen.policy",
    "videogen.retry",
    "videogen.errors",
    "videogen.scenes",
    "videogen.config",
    "videogen.states",
    "videogen.record",
    "videogen.redis_keys",
    "videogen.progress",
    "videogen.pricing",
    "videogen.costs",
    "videogen.spend",
    "videogen.classes",
    "videogen.redis_url",
    "videogen.webhooks",
    "videogen.film",
    "videogen.cache",
]
"""Plain functions over plain values (STYLE.md rule 3)."""
IO_LIBRARIES = ("celery", "kombu", "redis", "httpx", "av", "starlette", "uvicorn")
WEB_STACK = ("starlette", "uvicorn")
"""The ``sandbox`` extra: only a command that starts a sandbox may import it."""
INSTALL_LINE = "pip install 'videogen[sandbox]'"
WITHOUT_THE_EXTRA = "import sys; sys.modules.update(dict.fromkeys(('starlette', 'uvicorn')))\n"
"""Makes ``import starlette`` fail as if the extra were not installed (None in sys.modules
raises ModuleNotFoundError), in a subprocess of its own."""


def imported_after(code: str, watched: tuple[str, ...]) -> list[str]:
    """Which of ``watched`` a fresh interpreter holds after running ``code``."""
    probe = f"{code}\nimport sys\nprint(','.join(m for m in {watched!r} if m in sys.modules))\n"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert out.returncode == 0, out.stderr
    return [m for m in out.stdout.strip().split(",") if m]


def test_the_pure_core_imports_no_io_library():
    assert imported_after(f"import {', '.join(PURE_CORE)}", IO_LIBRARIES) == []


def test_the_check_sees_an_io_import():
    assert imported_after("import httpx", IO_LIBRARIES) == ["httpx"]


def test_the_config_schema_reads_no_environment_and_imports_no_backend():
    tree = ast.parse((PACKAGE / "config.py").read_text())
    imported = {a.name for n in tree.body if isinstance(n, ast.Import) for a in n.names}
    imported |= {
        "." * n.level + (n.module or "") for n in tree.body if isinstance(n, ast.ImportFrom)
    }
    allowed = {"__future__", "enum", "pathlib", "typing", "pydantic", ".constants", ".errors"}
    allowed.add(".pricing")  # pure: the pricing schema and price functions
    allowed.add(".redis_url")  # pure: the accepted Redis URL forms
    allowed.add(".webhooks")  # pure: event names, the retry schedule, the address check
    assert imported <= allowed, imported - allowed
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    assert "os" not in names and "environ" not in names


def test_the_cli_imports_no_web_stack():
    assert imported_after("import videogen.cli", WEB_STACK) == []


def test_only_the_live_view_imports_rich():
    """rich draws ``submit --wait`` on a terminal; no other command pays for its import."""
    assert imported_after("import videogen.cli, videogen.cli_progress", ("rich",)) == []


def test_workers_and_clients_import_no_web_stack():
    code = (
        "import videogen.api, videogen.pipeline, videogen.stack, videogen.cli\n"
        "from videogen.loading import build_settings\n"
        "from workers.app import create_app\n"
        "create_app(build_settings({}, env={}))\n"
    )
    assert imported_after(code, WEB_STACK) == []


def run_videogen(*args: str, prelude: str = "", **env: str) -> subprocess.CompletedProcess[str]:
    """``videogen ARGS`` in a fresh interpreter, with ``python -X importtime`` listing every
    module it imports on stderr."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("VIDEOGEN_")} | env
    code = f"{prelude}from videogen.cli import main\nmain()\n"
    return subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code, *args],
        capture_output=True, text=True, cwd=REPO, env=clean, timeout=120,
    )  # fmt: skip


def imported_modules(importtime_stderr: str) -> set[str]:
    lines = [line for line in importtime_stderr.splitlines() if line.startswith("import time:")]
    return {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in lines}


@pytest.mark.parametrize(
    "args", [("--help",), ("worker", "--help"), ("submit", "examples/scenes.json")]
)
def test_commands_that_start_no_sandbox_import_no_web_stack(args):
    # submit reaches the client (api, store) and stops at the unreachable Redis.
    out = run_videogen(*args, VIDEOGEN_REDIS_URL="redis://127.0.0.1:9/0")
    assert "Usage: videogen" in out.stdout or "Is the pipeline running?" in out.stderr
    modules = imported_modules(out.stderr)
    assert "videogen" in modules and "click" in modules  # importtime did list the imports
    assert not modules & set(WEB_STACK)


def test_the_sandbox_command_imports_the_web_stack():
    """The counterpart of the tests above: the listing does show starlette when it is used."""
    with socket.socket() as busy:  # the sandbox cannot bind it, so the command stops at once
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        out = run_videogen("sandbox", "--only", "svd", "--port-base", port)
    assert out.returncode == 1 and "could not start the sandboxes" in out.stderr
    assert {"starlette", "uvicorn"} <= imported_modules(out.stderr)


@pytest.mark.parametrize(
    "args",
    [
        ("sandbox",),
        ("generate", "--sandbox", "-b", "luma", "-p", "a lighthouse"),
        ("probe", "--sandbox", "runway"),
    ],
)
def test_without_the_sandbox_extra_a_sandbox_command_says_what_to_install(args):
    out = run_videogen(*args, prelude=WITHOUT_THE_EXTRA)
    assert out.returncode == 1
    errors = [line for line in out.stderr.splitlines() if not line.startswith("import time:")]
    assert errors in (
        [f"Error: the vendor sandboxes need {m}, which is not installed: {INSTALL_LINE}"]
        for m in WEB_STACK
    )


def test_without_the_sandbox_extra_other_commands_run():
    out = run_videogen("config", prelude=WITHOUT_THE_EXTRA)
    assert out.returncode == 0, out.stderr
    assert "strategy:" in out.stdout


# -- no import cycle among videogen's modules --------------------------------------------------


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def runtime_statements(body: list[ast.stmt]) -> list[ast.stmt]:
    """The statements a module runs at import: nested ``if``/``try`` blocks included,
    ``if TYPE_CHECKING:`` and function bodies left out."""
    found: list[ast.stmt] = []
    for node in body:
        if isinstance(node, ast.If):
            if "TYPE_CHECKING" not in ast.unparse(node.test):
                found += runtime_statements(node.body + node.orelse)
        elif isinstance(node, ast.Try):
            blocks = node.body + node.orelse + node.finalbody
            found += runtime_statements(blocks + [s for h in node.handlers for s in h.body])
        else:
            found.append(node)
    return found


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The videogen modules ``path`` imports when it is imported (``from . import x`` counts
    as importing submodule ``x`` where there is one)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in runtime_statements(ast.parse(path.read_text()).body):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            parts = package.split(".")[: len(package.split(".")) - max(node.level - 1, 0)]
            base = node.module if not node.level else ".".join([*parts, node.module or ""])
            base = base.rstrip(".")
            found |= {
                f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names
            }
    return found & known


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle as a path (``[a, b, a]``), or ``[]`` when there is none."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str]:
        if node in path:
            return path[path.index(node) :] + [node]
        if node in done:
            return []
        for target in sorted(graph.get(node, ())):
            cycle = visit(target, [*path, node])
            if cycle:
                return cycle
        done.add(node)
        return []

    for start in sorted(graph):
        cycle = visit(start, [])
        if cycle:
            return cycle
    return []


@pytest.mark.parametrize(
    ("graph", "cycle"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
        ({"a": {"b"}, "b": {"a"}}, ["a", "b", "a"]),
        ({"a": {"b", "c"}, "b": {"c"}, "c": {"d"}, "d": {"b"}}, ["b", "c", "d", "b"]),
        ({"a": {"a"}}, ["a", "a"]),
    ],
)
def test_find_cycle(graph, cycle):
    assert find_cycle(graph) == cycle


def test_the_import_graph_sees_relative_and_package_imports():
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    known = set(files)
    assert "videogen.loading" in imports_of(files["videogen"], known)  # from .loading import
    assert "videogen.config" in imports_of(files["videogen.backends.base"], known)  # from ..config
    assert "videogen.cli_up" in imports_of(files["videogen.cli"], known)  # from . import x
    sandbox = imports_of(files["videogen.sandbox"], known)
    assert "videogen.sandbox.server" not in sandbox  # only under TYPE_CHECKING, or lazily


def test_no_import_cycle_among_videogen_modules():
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {name: imports_of(path, set(files)) for name, path in files.items()}
    assert find_cycle(graph) == []
