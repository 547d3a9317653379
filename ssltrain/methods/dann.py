"""DANN: domain-adversarial training. The encoder learns features that classify the
labelled source domain (`dataset`) and that a domain classifier, trained through a
gradient reversal layer, cannot tell from the unlabelled target domain's (`target_dataset`).

Ganin et al., "Domain-Adversarial Training of Neural Networks", JMLR 17(59), 2016,
https://jmlr.org/papers/v17/15-239.html (arXiv:1505.07818).

One step (sec. 5, eq. 18-19; sec. 5.2.2): a batch of B labelled source images and B target
images runs through the encoder as one batch (the paper's half-source, half-target batch);
loss = CE(label classifier(source features), labels)
     + domain_weight * [BCE(D(R(source features)), source) + BCE(D(R(target features)), target)]
where R is the gradient reversal layer (identity forward, -lambda x gradient backward) and
lambda follows the paper's ramp 2 / (1 + exp(-gamma p)) - 1 over training progress p. The
domain classifier D descends the domain loss; through R, the encoder ascends it.
domain_weight=0 trains the source-only baseline the same way (same batches, no domain loss).
A run reports the label classifier's accuracy on the held-out images of both domains
(results.json: source_accuracy, target_accuracy; the target's need labels, used for that only).

Defaults: the paper's domain classifier x -> 1024 -> 1024 -> domain with ReLU (sec. 5.2.2,
all but its MNIST experiment), gamma = 10 (sec. 5.2.2). The label classifier is linear on
the encoder's pooled features (our choice: the paper's label predictor has its own hidden
layers; a linear one keeps the class information in the encoder, which evaluation probes).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ssltrain.data.batch import Batch
from ssltrain.losses.gan import discriminator_loss
from ssltrain.methods.base import SSLMethod
from ssltrain.parts.gradient_reversal import reversal_ramp, reverse_gradient
from ssltrain.parts.heads import mlp
from ssltrain.registry import METHODS


@METHODS.register("dann")
class DANN(SSLMethod):
    views = (1, 1)
    needs_labels = True
    needs_target = True
    reports = ("source_accuracy", "target_accuracy")  # the label classifier on each domain's held-out images

    def __init__(self, encoder: nn.Module, num_classes: int = 10, domain_weight: float = 1.0, gamma: float = 10.0,
                 domain_hidden_dims: tuple[int, ...] = (1024, 1024)):
        """num_classes: the source dataset's (the run fills it in); domain_weight: 0 gives
        the source-only baseline; gamma: the reversal coefficient's ramp rate."""
        super().__init__(encoder)
        self.domain_weight, self.gamma = domain_weight, gamma
        self.reversal = 0.0  # lambda of this step (on_step_start)
        self.classifier = nn.Linear(encoder.out_dim, num_classes)
        self.domain_classifier = mlp([encoder.out_dim, *domain_hidden_dims, 1], hidden_norm=None)

    @torch.no_grad()
    def held_out_metrics(self, features: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> dict[str, float]:
        """The label classifier's top-1 accuracy on each domain's held-out images: target_accuracy
        is the number the paper reports, source_accuracy what adaptation could at best recover."""
        return {f"{domain}_accuracy": (self.classifier(domain_features).argmax(1) == labels).float().mean().item()
                for domain, (domain_features, labels) in features.items()}

    def on_step_start(self, step: int, total_steps: int) -> None:
        self.reversal = reversal_ramp(step / max(1, total_steps), self.gamma)

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        source, target = batch.views[0], batch.target.views[0]  # [B, 3, H, W], [B', 3, H, W]
        features = self.encoder(torch.cat([source, target]))  # [B + B', D]: BatchNorm over both domains
        class_logits = self.classifier(features[: len(source)])  # [B, classes]
        class_loss = F.cross_entropy(class_logits, batch.labels)
        domain_logits = self.domain_classifier(reverse_gradient(features, self.reversal)).squeeze(1)  # [B + B']
        source_logits, target_logits = domain_logits[: len(source)], domain_logits[len(source) :]
        domain_loss = discriminator_loss(source_logits, target_logits)  # source as 1, target as 0
        domain_accuracy = torch.cat([source_logits > 0, target_logits <= 0]).float().mean()
        return {"loss": class_loss + self.domain_weight * domain_loss, "class_loss": class_loss,
                "domain_loss": domain_loss, "domain_accuracy": domain_accuracy,
                "source_accuracy": (class_logits.argmax(1) == batch.labels).float().mean(),
                "reversal": torch.tensor(self.reversal, device=source.device)}
