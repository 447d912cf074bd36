"""Breakwater: an LLM gateway. See README.md and docs/architecture.md."""

__version__ = "0.1.0"
__all__ = ["__version__"]
