"""Test helpers for Aura Agent users.

A mocked OpenRouter for pytest-httpx and a loopback fake server.
"""
