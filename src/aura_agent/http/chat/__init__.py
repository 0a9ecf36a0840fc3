"""The seed API: `POST /chat` (SSE tokens, `done`, `error`) and `/sessions/{id}`."""
