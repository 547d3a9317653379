"""Pure loss functions, one per module, each with its paper and tensor shapes documented.

Import a loss from its module: `from ssltrain.losses.nt_xent import nt_xent`.
"""
