"""Sluicegate: an OpenAI-compatible LLM gateway.

The public API is deliberately small: build an app from settings, or run the CLI.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
