"""Test doubles and shared test data: a stand-in cloud, a fault proxy, a scripted backend."""
