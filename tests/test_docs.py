"""The examples in the docs are real code: extract the runnable ones and run them.

Convention: a ```python block is runnable when the line just before its fence is
the HTML comment ``<!-- doctest -->`` (invisible once rendered). The block runs
in a fresh namespace; then every function it defines named ``main`` or
``test_*`` is called, in the order defined: a sync one directly, an ``async``
one with ``asyncio.run``, or with ``trio.run`` when the comment says
``<!-- doctest: trio -->``. A block that runs its own loop (``asyncio.run(...)``
at the end, as a script does) needs no such function.

Blocks without the comment are fragments (signatures, pytest-only code) and are
not run.
"""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import re
from pathlib import Path
from typing import Any

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
FILES = ("clients.md", "testing-clients.md", "guide.md")
BLOCK = re.compile(r"^<!-- doctest(?::\s*(?P<loop>\w+))?\s*-->\n```python\n(?P<code>.*?)^```", re.M | re.S)
LOOPS = ("asyncio", "trio")


def _blocks() -> list[Any]:
    found = []
    for name in FILES:
        text = (DOCS / name).read_text(encoding="utf-8")
        for match in BLOCK.finditer(text):
            line = text.count("\n", 0, match.start("code")) + 1
            loop = match["loop"] or "asyncio"
            found.append(pytest.param(f"docs/{name}", line, loop, match["code"], id=f"{name}:{line}"))
    return found


BLOCKS = _blocks()


def test_every_doc_has_runnable_examples() -> None:
    files = {param.values[0] for param in BLOCKS}
    assert files == {f"docs/{name}" for name in FILES}


@pytest.mark.parametrize(("path", "line", "loop", "code"), BLOCKS)
def test_doc_example_runs(path: str, line: int, loop: str, code: str) -> None:
    assert loop in LOOPS, f"{path}:{line}: unknown loop {loop!r} in the doctest comment"
    module = f"docs_example_{line}"
    namespace: dict[str, Any] = {"__name__": module}
    # Pad with blank lines so that tracebacks point at the line in the Markdown file.
    if "websockets.trio" in code and importlib.util.find_spec("websockets.trio") is None:
        pytest.skip("websockets.trio is new in websockets 17")
    exec(compile("\n" * (line - 1) + code, path, "exec"), namespace)
    for name, value in list(namespace.items()):
        if not (name == "main" or name.startswith("test_")) or not inspect.isfunction(value):
            continue
        if value.__module__ != module:
            continue  # imported, not defined by the block
        if not inspect.iscoroutinefunction(value):
            value()
        elif loop == "trio":
            import trio

            trio.run(value)
        else:
            asyncio.run(value())
