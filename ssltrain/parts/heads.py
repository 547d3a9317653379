"""MLP projectors and predictors, built from a list of layer widths."""

from __future__ import annotations

from typing import Callable, Optional, Sequence

from torch import nn

NORMS: dict[str, Callable[[int], nn.Module]] = {
    "batch": nn.BatchNorm1d,
    "batch_noaffine": lambda dim: nn.BatchNorm1d(dim, affine=False),
    "layer": nn.LayerNorm,
}
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": lambda: nn.ReLU(inplace=True),
    "gelu": nn.GELU,
}


def _norm(name: Optional[str], dim: int) -> list[nn.Module]:
    if name is None:
        return []
    if name not in NORMS:
        raise ValueError(f"unknown norm '{name}'; choose one of: {', '.join(NORMS)}")
    return [NORMS[name](dim)]


def mlp(dims: Sequence[int], hidden_norm: Optional[str] = "batch", last_norm: Optional[str] = None,
        activation: str = "relu") -> nn.Sequential:
    """Linear layers through `dims` = [in, hidden..., out].

    Every hidden layer is Linear -> norm -> `activation` (a key of ACTIVATIONS); the last is
    Linear -> `last_norm`.
    A linear layer followed by a norm has no bias (the norm's shift does its job).
    """
    if len(dims) < 2:
        raise ValueError(f"an MLP needs at least [in, out] widths, got {list(dims)}")
    layers: list[nn.Module] = []
    for index, (width_in, width_out) in enumerate(zip(dims[:-1], dims[1:])):
        last = index == len(dims) - 2
        norm = last_norm if last else hidden_norm
        layers.append(nn.Linear(width_in, width_out, bias=norm is None))
        layers.extend(_norm(norm, width_out))
        if not last:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)
