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


def test_only_the_package_and_its_clocks_are_public() -> None:
    public = sorted(
        source.stem
        for source in RUNTIME.glob("*.py")
        if not source.stem.startswith("_") or source.stem == "__init__"
    )
    assert public == ["__init__", "clock"]  # everything else is an internal ``_module``


def test_runtime_errors_have_their_own_root() -> None:
    root = transakt.runtime.ActorSystemError
    assert root.__bases__ == (Exception,)
    assert transakt.runtime.RuntimeFailure is root  # the former name
    errors = [
        obj
        for obj in map(vars(transakt.runtime).get, transakt.runtime.__all__)
        if isinstance(obj, type) and issubclass(obj, BaseException)
    ]
    assert len(errors) >= 8
    assert all(issubclass(error, root) for error in errors)
    assert issubclass(transakt.runtime.AskTimeout, TimeoutError)
