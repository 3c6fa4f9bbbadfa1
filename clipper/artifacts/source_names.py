"""Source file names for model code pickled by value.

cloudpickle writes every code object it pickles by value with the file name
`<dynamic-code>` (so that a payload does not depend on where it was made), and a deployed
model's traceback would then name no file. The builder records, for each function of the
model's own code, the file it came from and, within a size budget, that file's text; the
loader gives the unpickled functions their file names back and hands the text to
`linecache`, so a traceback in the worker's log reads as it would where the model was
written: `File "/home/me/model.py", line 6, in helper` and the line itself.

Both sides walk the same objects (`_model_functions`): the deployed callable, class or
instance; the classes and functions of the same module it refers to (globals, closures,
methods, properties). Keys are a function's qualified name and first line, which survive
pickling.
"""

from __future__ import annotations

import linecache
from collections.abc import Iterator
from pathlib import Path
from types import CodeType, FunctionType
from typing import Any

__all__ = ["MAX_SOURCE_BYTES", "SOURCES_FIELD", "record_sources", "restore_sources"]

SOURCES_FIELD = "sources"
"""The artifact metadata field: `{"functions": {key: file}, "files": {file: text}}`."""

MAX_SOURCE_BYTES = 512 * 1024
"""Most bytes of source text an artifact carries (files past it are named, not shown)."""

_DYNAMIC = "<dynamic-code>"
_MAX_OBJECTS = 5000  # bounds the walk of a model with a very large module


def record_sources(model: object) -> dict[str, Any]:
    """The `SOURCES_FIELD` value for `model`, before it is pickled."""
    functions: dict[str, str] = {}
    for function in _model_functions(model):
        filename = function.__code__.co_filename
        if not filename.startswith("<"):
            functions[_key(function)] = filename
    files: dict[str, str] = {}
    budget = MAX_SOURCE_BYTES
    for filename in sorted(set(functions.values())):
        try:
            text = Path(filename).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if len(text.encode()) <= budget:
            files[filename] = text
            budget -= len(text.encode())
    return {"functions": functions, "files": files}


def restore_sources(model: object, sources: object) -> None:
    """Give the functions of unpickled `model` their source files back, as recorded."""
    if not isinstance(sources, dict):
        return
    functions, files = sources.get("functions"), sources.get("files")
    if not isinstance(functions, dict):
        return
    for function in _model_functions(model):
        filename = functions.get(_key(function))
        if isinstance(filename, str) and function.__code__.co_filename == _DYNAMIC:
            function.__code__ = _renamed(function.__code__, filename)
    for filename, text in (files if isinstance(files, dict) else {}).items():
        if isinstance(filename, str) and isinstance(text, str):
            # No modification time: linecache keeps the entry (checkcache skips it).
            linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)


def _key(function: FunctionType) -> str:
    return f"{function.__qualname__}:{function.__code__.co_firstlineno}"


def _renamed(code: CodeType, filename: str) -> CodeType:
    """`code` and the code nested in it (comprehensions, inner functions) from `filename`."""
    consts = tuple(_renamed(c, filename) if isinstance(c, CodeType) else c for c in code.co_consts)
    return code.replace(co_filename=filename, co_consts=consts)


def _model_functions(model: object) -> Iterator[FunctionType]:
    """The functions of the model's own module reachable from `model`, each once."""
    home = getattr(
        model if isinstance(model, (type, FunctionType)) else type(model), "__module__", None
    )
    seen: set[int] = set()
    pending: list[object] = [model]
    while pending and len(seen) < _MAX_OBJECTS:
        item = pending.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, FunctionType):
            if item.__module__ != home:
                continue
            yield item
            names = _global_names(item.__code__)  # what cloudpickle carries along too
            pending.extend(item.__globals__[name] for name in names if name in item.__globals__)
            pending.extend(cell.cell_contents for cell in item.__closure__ or () if _filled(cell))
        elif isinstance(item, type):
            if item.__module__ == home:
                pending.extend(_members(item))
        elif item is model:
            pending.append(type(item))


def _global_names(code: CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, CodeType):
            names |= _global_names(const)
    return names


def _members(cls: type) -> Iterator[object]:
    for member in vars(cls).values():
        if isinstance(member, (staticmethod, classmethod)):
            yield member.__func__
        elif isinstance(member, property):
            yield from (f for f in (member.fget, member.fset, member.fdel) if f is not None)
        else:
            yield member


def _filled(cell: Any) -> bool:
    try:
        cell.cell_contents  # noqa: B018 (an empty cell raises)
    except ValueError:
        return False
    return True
