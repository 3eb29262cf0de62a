"""Fingerprints of the package code a stage runs, for the rules' ``params:`` (Snakemake's params rerun trigger).

Snakemake sees a shell rule's command, not the ``whatnext`` modules behind ``python -m whatnext.X``. Each
rule therefore carries ``params: code=stage_fingerprint("whatnext.X")``: a hash of the import closure of
the stage module inside the package, so a change to a module reruns exactly the jobs whose stages import it
(directly or through other package modules), and nothing else.

The closure is read from the source text, never by importing (no torch at parse time; ~80 files read
once per Snakemake process): every ``import whatnext...`` / ``from whatnext... import`` anywhere in a
module (lazy imports inside functions too), the ``__init__`` of every package on the way, and relative
imports. A module's fingerprint covers the source of every module in the closure and the package-data
files (``*.csv``, ``*.json``) of every package folder in it (the class table is read at run time).
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
from functools import lru_cache
from pathlib import Path

PACKAGE = "whatnext"
DATA_SUFFIXES = (".csv", ".json")


@lru_cache(maxsize=None)
def package_root(package: str = PACKAGE) -> Path:
    """The folder of ``package`` as the running interpreter would import it (found without importing it)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"package {package!r} is not importable here (pip install -e . from the repository)")
    return Path(next(iter(spec.submodule_search_locations)))


@lru_cache(maxsize=None)
def module_file(module: str, root: Path) -> Path | None:
    """The source file of ``module`` (dotted, starting with the package name) under ``root``; None if absent."""
    parts = module.split(".")[1:]
    folder = root.joinpath(*parts)
    for candidate in (folder / "__init__.py", folder.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _parents(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


IMPORT_FROM = re.compile(r"^[ \t]*from[ \t]+(\.*)([\w.]*)[ \t]+import[ \t]+(\([^)]*\)|[^\n]*)", re.MULTILINE)
IMPORT = re.compile(r"^[ \t]*import[ \t]+([\w., \t]+)", re.MULTILINE)


@lru_cache(maxsize=None)
def _imports(path: Path) -> tuple[tuple[int, str, tuple[str, ...]], ...]:
    """(level, module, imported names) of every import statement in the file (plain imports: level -1).

    Read with two regular expressions, not by parsing (parsing every file costs ~0.3 s per Snakemake
    start): an import-looking line inside a docstring may add a module, which only widens the closure.
    """
    text = path.read_text(encoding="utf-8")
    found = []
    for dots, module, names in IMPORT_FROM.findall(text):
        names = re.sub(r"#[^\n]*", "", names).strip("()")
        found.append((len(dots), module, tuple(n.split()[0] for n in names.split(",") if n.strip())))
    for names in IMPORT.findall(text):
        found.extend((-1, n.split()[0], ()) for n in names.split(",") if n.strip())
    return tuple(found)


@lru_cache(maxsize=None)
def direct_imports(module: str, root: Path) -> frozenset[str]:
    """Package modules that ``module`` imports anywhere in its source, plus its parent packages."""
    path = module_file(module, root)
    if path is None:
        return frozenset()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set(_parents(module))
    for level, base, names in _imports(path):
        if level > 0:
            anchor = package.split(".")[: len(package.split(".")) - level + 1]
            base = ".".join(anchor + ([base] if base else []))
        # ``from a.b import c``: c may be a submodule (a.b.c) or a name in a.b; keep what exists
        for name in [base, *(f"{base}.{n}" for n in names)]:
            if name.split(".")[0] == module.split(".")[0] and module_file(name, root) is not None:
                found.add(name)
                found.update(_parents(name))
    found.discard(module)
    return frozenset(found)


def import_closure(module: str, root: Path | None = None) -> list[str]:
    """Every package module running ``python -m module`` may execute (itself included), sorted."""
    root = root or package_root(module.split(".")[0])
    if module_file(module, root) is None:
        raise ModuleNotFoundError(f"{module}: no such module under {root}")
    seen, todo = set(), [module]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(direct_imports(name, root) - seen)
    return sorted(seen)


@lru_cache(maxsize=None)
def stage_fingerprint(module: str) -> str:
    """12 hex digits of SHA-256 over the closure's module sources and its packages' data files."""
    root = package_root(module.split(".")[0])
    digest = hashlib.sha256()
    folders = set()
    for name in import_closure(module, root):
        path = module_file(name, root)
        digest.update(f"{name}\0".encode() + path.read_bytes() + b"\0")
        folders.add(path.parent)
    for folder in sorted(folders):
        for data in sorted(p for p in folder.iterdir() if p.suffix in DATA_SUFFIXES and p.is_file()):
            digest.update(f"{data.relative_to(root.parent).as_posix()}\0".encode() + data.read_bytes() + b"\0")
    return digest.hexdigest()[:12]
