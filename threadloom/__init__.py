"""threadloom: a self-hosted runs server for AI assistants."""

__version__ = "0.1.0"
