"""Use cases: what the service does with the ports, independent of HTTP and of any vendor."""
