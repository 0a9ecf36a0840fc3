"""Where conversations are remembered: `MemorySessionStore` for one process, `RedisSessionStore`
for several replicas (standalone Redis or Redis Cluster). Both implement `SessionStore`."""
