"""The domain: what a chat is, what can go wrong, and the ports the outside world must implement.

Nothing here imports from the rest of the package, so the rules stay testable without any I/O.
"""
