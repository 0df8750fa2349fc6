"""r2local: route each subtask of a question to the cheapest model that can answer it."""

__version__ = "0.1.0"
