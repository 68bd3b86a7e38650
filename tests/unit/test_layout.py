"""The source tree's promises: no module imports one that imports it back, and no source file
hides behind the ignore rules a project made from the standard Python template has (which is
why the builder is ``twelve.builder``, never ``build/``)."""
from __future__ import annotations

import ast
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
PYTHON_GITIGNORE = ROOT / "tests" / "fixtures" / "gitignore" / "Python.gitignore"


def module_files() -> dict[str, Path]:
    """twelve's modules by dotted name; gen/templates holds templates, not modules."""
    modules = {}
    for path in sorted((SRC / "twelve").rglob("*.py")):
        if "templates" in path.relative_to(SRC).parts:
            continue
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def imported_modules(name: str, path: Path, known: set[str]) -> set[str]:
    """Every twelve module ``name`` imports, at the top or inside a function (lazily)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                       for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def test_no_module_imports_one_that_imports_it_back():
    modules = module_files()
    graph = {name: imported_modules(name, path, set(modules)) for name, path in modules.items()}
    assert "twelve.runtime.commands" in graph["twelve.runtime.boot"]
    assert "twelve.runtime.release" in graph["twelve.runtime.commands"]
    assert import_cycles(graph) == []


def test_the_cycle_finder_finds_a_lazy_import_back():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert import_cycles(graph) == [["a", "b", "c"]]


def test_the_import_reader_sees_lazy_and_relative_imports(tmp_path):
    path = tmp_path / "boot.py"
    path.write_text("from . import commands\n\ndef main():\n    from twelve.x.y import z\n")
    known = {"twelve.x.commands", "twelve.x.y", "twelve.x.y.z", "twelve.x.boot"}
    assert imported_modules("twelve.x.boot", path, known) == {"twelve.x.commands", "twelve.x.y.z"}


def ignored(paths: list[str], tmp_path: Path) -> list[str]:
    """The paths that a repository whose .gitignore is the Python template would not track."""
    repo = tmp_path / "project"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    shutil.copy(PYTHON_GITIGNORE, repo / ".gitignore")
    proc = subprocess.run(["git", "-C", str(repo), "check-ignore", "--no-index", "--stdin"],
                          input="\n".join(paths) + "\n", capture_output=True, text=True)
    assert proc.returncode in (0, 1), proc.stderr  # 1: nothing ignored
    return proc.stdout.split()


def source_files() -> list[str]:
    """Every file of the repository (git ls-files), or of src/ in a copy without .git."""
    proc = subprocess.run(["git", "-C", str(ROOT), "ls-files"], capture_output=True, text=True)
    if proc.returncode == 0 and proc.stdout.strip():
        return proc.stdout.split("\n")[:-1]
    return [str(p.relative_to(ROOT)) for p in SRC.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts]


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_the_python_gitignore_template_hides_no_file_of_twelve(tmp_path):
    files = source_files()
    assert "src/twelve/builder/pipeline.py" in files
    assert ignored(files, tmp_path) == []


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_the_template_does_hide_a_package_named_build(tmp_path):
    assert ignored(["src/shop/build/pipeline.py", "src/shop/builder/pipeline.py"],
                   tmp_path) == ["src/shop/build/pipeline.py"]
