"""Self-supervised methods: one module per method, each registered in METHODS."""

from ssltrain.methods.base import SSLMethod

__all__ = ["SSLMethod"]
