"""The README's example is real code: extract it and run it."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_examples_run() -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert len(blocks) == 2, "the README's examples: a server-side test and a client-side one"
    for block, name in zip(blocks, ["test_chat", "test_join_survives_a_refusal_and_a_cut"], strict=True):
        namespace: dict[str, object] = {}
        exec(compile(block, "README.md", "exec"), namespace)
        asyncio.run(namespace[name]())  # type: ignore[operator]
