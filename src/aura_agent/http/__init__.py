"""The HTTP edge: Litestar controllers, DTOs, SSE encoding, auth and error mapping."""
