"""`.env.example` lists every setting, with its default, and nothing that is not a setting."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from transakt.config import Settings

EXAMPLE = Path(__file__).resolve().parent.parent / ".env.example"
_LINE = re.compile(r"^# TRANSAKT_([A-Z0-9_]+)=(.*)$", re.MULTILINE)


def _listed() -> dict[str, str]:
    return {name.lower(): value for name, value in _LINE.findall(EXAMPLE.read_text())}


def _default(settings: Settings, flat_name: str) -> Any:
    """A setting's value by its flat name (``bank_url`` is ``settings.bank.url``)."""
    dumped = settings.model_dump(by_alias=True)
    if flat_name in dumped:
        return dumped[flat_name]
    group, _, rest = flat_name.partition("_")
    return dumped[group][rest]


def test_every_setting_is_listed_and_nothing_else() -> None:
    listed = set(_listed())
    names = set(Settings.flat_names())
    assert names - listed == set(), "settings missing from .env.example"
    assert listed - names == set(), ".env.example lists what is not a setting"


def test_the_values_shown_are_the_defaults() -> None:
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    # Examples of values to set (URLs, secrets, hosts) show a shape, not the default.
    examples = {"database_url", "redis_url", "rabbitmq_url", "smtp_host", "smtp_username"}
    for name, shown in _listed().items():
        if name in examples:
            continue
        value = _default(defaults, name)
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        expected = (
            "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
        )
        assert shown.strip('"') == expected, name


def test_the_file_uncommented_is_a_valid_configuration_of_every_group(tmp_path: Path) -> None:
    # Every value shown, set (empty ones mean "unset"): the settings load and equal the defaults
    # in every group but the examples of values to set.
    lines = [
        f"TRANSAKT_{name.upper()}={value}" for name, value in _listed().items() if value.strip()
    ]
    env_file = tmp_path / "example.env"
    env_file.write_text("\n".join(lines) + "\n")
    loaded = Settings(_env_file=env_file)  # type: ignore[call-arg]
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    shapes = {"database", "redis", "rabbitmq", "smtp"}  # example URLs and hosts, not defaults
    for group, value in defaults.model_dump().items():
        if group not in shapes:
            assert loaded.model_dump()[group] == value, group
