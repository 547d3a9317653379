"""Encoders: every registered builder returns an `Encoder` (see base.py)."""

from ssltrain.encoders.base import Encoder

__all__ = ["Encoder"]
