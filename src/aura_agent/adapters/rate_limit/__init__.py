"""Adapters of the `RateLimiter` port: in-process (memory) and shared by every instance (Redis)."""
