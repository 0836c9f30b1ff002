"""Configuration: one pydantic-settings object, built at start and passed down."""

from transakt.config.services import ResolvedServices
from transakt.config.settings import InsecureSettings, Settings

__all__ = ["InsecureSettings", "ResolvedServices", "Settings"]
