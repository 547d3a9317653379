"""Several evaluation protocols on the same encoder, their metrics in one results.json.

`ssltrain eval=[linear,knn,kmeans]` is shorthand (cli.py) for `eval=suite
eval.protocols=[linear,knn,kmeans]`; a protocol's own settings go under
`eval.settings.<protocol>`, added with a +: `+eval.settings.linear.epochs=50`.
"""

from __future__ import annotations

from typing import Any, Optional

import torch
from torch import nn

from ssltrain.eval.data import EvalData
from ssltrain.registry import EVALUATORS
from ssltrain.runtime.run_logger import RunLogger


@EVALUATORS.register("suite")
def suite(encoder: nn.Module, data: EvalData, device: torch.device, logger: Optional[RunLogger] = None,
          protocols: list[str] = ("linear", "knn"), settings: dict[str, dict[str, Any]] = {}) -> dict[str, float]:
    """protocols: the evaluators to run, in order; settings: each one's keyword arguments."""
    context = {"encoder": encoder, "data": data, "device": device, "logger": logger}
    results: dict[str, float] = {}
    for protocol in protocols:
        results.update(EVALUATORS.build(protocol, context=context, **settings.get(protocol, {})))
    return results
