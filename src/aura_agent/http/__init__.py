"""The HTTP edge, in wings named after what they serve.

`chat/` is the seed API, `openai/` the `/v1` API, `sse/` the event-stream plumbing both use,
`ops/` probes, metrics and the playground. Beside them: `auth` (keys, tenants), `limits`
(admission), `problems` (problem+json), `record` and `request_context` (the canonical log
line), `validation` (rules every API shares) and `dependencies` (what handlers are given).
"""
