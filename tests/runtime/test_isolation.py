"""The runtime stands alone: it imports only the standard library and itself."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import transakt.runtime

RUNTIME = Path(transakt.runtime.__file__).parent


def test_runtime_imports_only_stdlib_and_itself() -> None:
    for source in sorted(RUNTIME.glob("*.py")):
        tree = ast.parse(source.read_text(), filename=str(source))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if name.startswith("transakt"):
                    assert name.startswith("transakt.runtime"), f"{source.name} imports {name}"
                else:
                    assert top in sys.stdlib_module_names, f"{source.name} imports {name}"


def test_public_names_are_documented() -> None:
    for name in transakt.runtime.__all__:
        obj = getattr(transakt.runtime, name)
        if isinstance(obj, str):
            continue
        assert obj.__doc__, f"{name} has no docstring"
