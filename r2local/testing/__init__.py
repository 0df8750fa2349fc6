"""Test doubles shipped for tests and benchmark scripts, never used by the engine:
a stand-in cloud (``python -m llama_cpp.server`` on loopback), a fault-injecting
proxy in front of it, and a scripted fake backend.
"""
