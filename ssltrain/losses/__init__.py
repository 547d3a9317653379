"""Pure loss functions, one per module, each with its paper and tensor shapes documented."""

from ssltrain.losses.nt_xent import nt_xent

__all__ = ["nt_xent"]
