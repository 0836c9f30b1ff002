"""The one rule for missing test dependencies: fail in CI, skip on a laptop."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def in_ci() -> bool:
    """True when running under CI, where every service and tool must be present."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def unavailable(reason: str, remedy: str) -> NoReturn:
    """Fail loudly in CI (a suite that skips its integration tests must not pass); else skip."""
    if in_ci():
        pytest.fail(f"{reason}; CI must provide it (.ci/run does)", pytrace=False)
    pytest.skip(f"{reason}; {remedy}")
