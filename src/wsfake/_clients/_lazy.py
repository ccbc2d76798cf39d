"""Run a callback when a module is imported (at once if it already is).

Hooks on a client library are applied only when the code under test imports
it, so wsfake neither imports libraries that are not used nor changes what
their import does (``websockets.legacy`` warns about its deprecation when it is
imported; that warning must still come from the user's own import).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import threading
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

_lock = threading.RLock()


class _Finder(importlib.abc.MetaPathFinder):
    """Wraps the loader of watched modules so that their callbacks run after they execute."""

    def __init__(self) -> None:
        self.watched: dict[str, list[Callable[[ModuleType], None]]] = {}

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in self.watched:
            return None
        for finder in sys.meta_path:
            if finder is self:
                continue
            find = getattr(finder, "find_spec", None)
            if find is None:
                continue
            spec: importlib.machinery.ModuleSpec | None = find(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _Loader(spec.loader, self)
                return spec
        return None


class _Loader(importlib.abc.Loader):
    def __init__(self, loader: Any, finder: _Finder) -> None:
        self._loader = loader
        self._finder = finder

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        create = getattr(self._loader, "create_module", None)
        return create(spec) if create is not None else None

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        with _lock:
            callbacks = list(self._finder.watched.get(module.__name__, ()))
        for callback in callbacks:
            callback(module)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


_finder = _Finder()


def when_imported(name: str, callback: Callable[[ModuleType], None]) -> Callable[[], None]:
    """Call ``callback(module)`` now if ``name`` is imported, else right after its import; returns the cancel."""
    with _lock:
        module = sys.modules.get(name)
        if module is None:
            _finder.watched.setdefault(name, []).append(callback)
            if _finder not in sys.meta_path:
                sys.meta_path.insert(0, _finder)
    if module is not None:
        callback(module)
        return lambda: None

    def cancel() -> None:
        with _lock:
            callbacks = _finder.watched.get(name, [])
            if callback in callbacks:
                callbacks.remove(callback)
            if not callbacks:
                _finder.watched.pop(name, None)
            if not _finder.watched and _finder in sys.meta_path:
                sys.meta_path.remove(_finder)

    return cancel
