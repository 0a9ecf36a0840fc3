"""Language-model adapters: each turns one vendor's streaming API into the domain's chat events."""
