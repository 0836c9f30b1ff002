"""The two-process remote-asks example runs to completion against the local broker."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "remote_asks.py"


async def test_the_remote_asks_example_runs(rabbitmq_url: str) -> None:
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, str(EXAMPLE), rabbitmq_url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "alice after withdrawing 30: 70" in done.stdout
    assert "refused, as itself: alice holds only 70" in done.stdout
    assert "hello, remote world" in done.stdout
    assert "AskTimeout" in done.stdout
    assert done.stdout.rstrip().endswith("sum 499500")
    assert "Traceback" not in done.stderr
