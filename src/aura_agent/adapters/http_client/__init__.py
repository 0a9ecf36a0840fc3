"""HTTP plumbing shared by the LLM adapters: the upstream client, its transports, the raw POST.

No LLM knowledge here: `client.build_client` makes the one pooled `httpx.AsyncClient`,
`transport.AsyncioTransport` is the default transport under it, and `upstream_http` sends the
adapters' streaming POSTs straight to the client's transport. See docs/transports.md.
"""
