"""The Textual app for r2local (imports the engine; the engine never imports it)."""
