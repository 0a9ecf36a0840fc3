"""The OpenAI-compatible API under `/v1`: its DTOs, chunks, error shape and routes."""
