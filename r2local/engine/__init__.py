"""The engine: one turn of a conversation, from plan to answer, every call through the gates and the recorder."""
