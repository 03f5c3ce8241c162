"""Process start-up: what can be skipped before the heavy imports of a serving process.

Gradio regenerates the ``.pyi`` type stub of each of its ~80 component classes every time it is imported
(``gradio.component_meta.create_or_modify_pyi``: reading each class's source, parsing it and rendering a
Jinja template), a development aid that took 1–2 s of every ``python app.py`` start on these machines and
writes into site-packages. :func:`skip_gradio_stub_generation` turns it into a no-op; call it before gradio
is first imported. Nothing at run time reads those stubs.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

_MODULE = "gradio.component_meta"


class _SkipStubs(importlib.abc.MetaPathFinder):
    """Finds ``gradio.component_meta`` like the normal import system, and disables its stub writer once loaded."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != _MODULE:
            return None
        with _removed(self):
            spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        loader: Any = spec.loader
        exec_module = loader.exec_module

        def exec_and_patch(module: ModuleType) -> None:
            exec_module(module)
            _disable(module)

        loader.exec_module = exec_and_patch
        return spec


class _removed:
    def __init__(self, finder: importlib.abc.MetaPathFinder) -> None:
        self.finder = finder

    def __enter__(self) -> None:
        if self.finder in sys.meta_path:
            sys.meta_path.remove(self.finder)

    def __exit__(self, *exc: object) -> None:
        return None


def _disable(module: ModuleType) -> None:
    if hasattr(module, "create_or_modify_pyi"):
        module.create_or_modify_pyi = lambda *args, **kwargs: None  # type: ignore[attr-defined]


def skip_gradio_stub_generation() -> None:
    """Make gradio skip rewriting its component stubs when it is imported (a no-op if it already was)."""
    loaded = sys.modules.get(_MODULE)
    if loaded is not None:
        _disable(loaded)  # too late for the built-in components, but custom ones defined later skip it
        return
    if not any(isinstance(f, _SkipStubs) for f in sys.meta_path):
        sys.meta_path.insert(0, _SkipStubs())
