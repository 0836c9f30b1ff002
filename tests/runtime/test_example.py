"""The embedded-runtime example runs to completion on its own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "embedded_runtime.py"


def test_example_runs() -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "instance #2 handled 'second'" in done.stdout
    assert "alice's balance, reloaded: 70" in done.stdout
    assert done.stdout.rstrip().endswith("{'bob': 20, 'alice': 60}")
