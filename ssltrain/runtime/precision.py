"""The arithmetic a process computes in: an autocast dtype, or fp32. Pretraining, feature
extraction and the probes all enter it through `autocast`."""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from typing import Optional

import torch


@dataclass
class Precision:
    dtype: Optional[torch.dtype]  # autocast dtype; None: fp32

    @property
    def scaler_enabled(self) -> bool:
        return self.dtype is torch.float16

    def autocast(self, device_type: str):
        if self.dtype is None:
            return nullcontext()
        return torch.autocast(device_type, dtype=self.dtype)
