"""Capturing the packages a model needs from the deploying process.

Not a blanket `pip freeze`: only the distributions that provide the modules a model
actually refers to, at the versions installed here. Modules are found

- for Python objects, while cloudpickle serialises them: every module, class, function
  and instance type the pickle refers to, plus the `import` statements inside the code of
  functions pickled by value (a function-local `import sklearn` counts);
- for a model directory, in the `import` statements of its `.py` files.

Standard-library modules, Clipper itself (every worker has it) and cloudpickle (checked at
load instead) are left out.
"""

from __future__ import annotations

import ast
import dis
import importlib.metadata as metadata
import io
import sys
import sysconfig
import types
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

import cloudpickle

from clipper.core.exceptions import InvalidRequest

__all__ = [
    "capture_pickle",
    "distributions_of",
    "imports_of_directory",
    "is_local_module",
    "read_requirements_file",
]

_ALWAYS_THERE = frozenset({"clipper", "clipper_admin", "cloudpickle", "__main__", "builtins"})
_MAX_PASSES = 5


class _RecordingPickler(cloudpickle.Pickler):  # type: ignore[misc]
    """A cloudpickle pickler that notes the module of everything it serialises."""

    def __init__(self, file: io.BytesIO, modules: set[str]) -> None:
        super().__init__(file, protocol=cloudpickle.DEFAULT_PROTOCOL)
        self.modules = modules

    def reducer_override(self, obj: Any) -> Any:
        _note_modules(obj, self.modules)
        return super().reducer_override(obj)


def _note_modules(obj: Any, modules: set[str]) -> None:
    if isinstance(obj, types.ModuleType):
        modules.add(obj.__name__)
        return
    if isinstance(obj, (types.FunctionType, type)):
        modules.add(str(getattr(obj, "__module__", None) or ""))
        if isinstance(obj, types.FunctionType):
            modules.update(_imports_in_code(obj.__code__))
        return
    module = getattr(obj, "__module__", None)
    if isinstance(module, str):  # builtin functions, methods
        modules.add(module)
    modules.add(type(obj).__module__)


def _imports_in_code(code: types.CodeType) -> set[str]:
    """Modules named by `import` statements inside a code object (and nested ones)."""
    found = {str(i.argval) for i in dis.get_instructions(code) if i.opname == "IMPORT_NAME"}
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            found |= _imports_in_code(const)
    return found


def capture_pickle(obj: Any) -> tuple[bytes, set[str]]:
    """Pickle `obj` with cloudpickle and return the bytes and the modules it refers to.

    Local modules (outside site-packages and the standard library, e.g. a script, a test
    module, an editable checkout) are pickled by value, so the worker needs no copy of
    them; this repeats until no new local module turns up.
    """
    by_value: set[str] = set()
    main_module = getattr(obj, "__module__", None) or type(obj).__module__
    if is_local_module(main_module):
        by_value.add(main_module)
    for _ in range(_MAX_PASSES):
        modules: set[str] = set()
        buffer = io.BytesIO()
        with _pickled_by_value(by_value):
            _RecordingPickler(buffer, modules).dump(obj)
        new_local = {name for name in modules if is_local_module(name)} - by_value
        if not new_local:
            return buffer.getvalue(), modules
        by_value |= new_local
    return buffer.getvalue(), modules


@contextmanager
def _pickled_by_value(names: Iterable[str]) -> Iterator[None]:
    registered = []
    already = set(cloudpickle.list_registry_pickle_by_value())
    for name in sorted(names):
        module = sys.modules.get(name)
        if module is not None and name not in already:
            cloudpickle.register_pickle_by_value(module)
            registered.append(module)
    try:
        yield
    finally:
        for module in registered:
            cloudpickle.unregister_pickle_by_value(module)


def is_local_module(name: str) -> bool:
    """True for imported modules whose file lies outside the standard library and
    site-packages (and that are not Clipper's own): code that only this machine has."""
    if not name or name.split(".")[0] in _ALWAYS_THERE:
        return False
    module = sys.modules.get(name)
    module_file = getattr(module, "__file__", None)
    if module is None or module_file is None:
        return False
    resolved = Path(module_file).resolve()
    return not any(resolved.is_relative_to(root) for root in _installed_roots())


@lru_cache(maxsize=1)
def _installed_roots() -> tuple[Path, ...]:
    paths = sysconfig.get_paths()
    roots = {paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    roots.update(p for p in sys.path if p.endswith(("site-packages", "dist-packages")))
    return tuple(Path(root).resolve() for root in roots)


def distributions_of(module_names: Iterable[str]) -> dict[str, str]:
    """`{distribution: installed version}` of the installed distributions that provide
    `module_names` (standard library, local and unknown modules are skipped)."""
    owners = metadata.packages_distributions()
    found: dict[str, str] = {}
    for top in sorted({name.split(".")[0] for name in module_names if name}):
        if top in _ALWAYS_THERE or top in sys.stdlib_module_names or top.startswith("_"):
            continue
        for distribution in owners.get(top, []):
            if distribution.lower() in ("clipper-serving", "cloudpickle"):
                continue
            try:
                found[distribution] = metadata.version(distribution)
            except metadata.PackageNotFoundError:
                continue
    return found


def imports_of_directory(directory: Path) -> set[str]:
    """Top-level modules imported by the `.py` files of a model directory, less the
    directory's own modules."""
    own = {path.stem for path in directory.glob("*.py")}
    own |= {path.name for path in directory.iterdir() if (path / "__init__.py").is_file()}
    found: set[str] = set()
    for path in directory.rglob("*.py"):
        if "__pycache__" in path.parts:
            continue
        found |= _imports_in_source(path)
    return {name for name in found if name.split(".")[0] not in own}


def _imports_in_source(path: Path) -> set[str]:
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (SyntaxError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"{path} is not valid Python: {exc}") from exc
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def read_requirements_file(path: Path, _seen: frozenset[Path] = frozenset()) -> list[str]:
    """The requirement lines of a pip requirements file; `-r other.txt` includes are
    inlined, other options (e.g. `--extra-index-url`) kept as they are."""
    resolved = path.resolve()
    if resolved in _seen:
        return []
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidRequest(f"cannot read requirements file {path}: {exc}") from exc
    lines: list[str] = []
    for line in text.replace("\\\n", " ").splitlines():
        line = line.split(" #")[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(("-r ", "--requirement ")):
            included = path.parent / line.split(maxsplit=1)[1]
            lines.extend(read_requirements_file(included, _seen | {resolved}))
        else:
            lines.append(line)
    return lines
