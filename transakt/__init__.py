"""Transakt: a distributed digital wallet backend built as a reactive actor system on asyncio."""

__version__ = "0.1.0"
__all__ = ["__version__"]
