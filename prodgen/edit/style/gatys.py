"""Style transfer by optimisation (Gatys, Ecker & Bethge 2016): start from the content photo and move
its pixels until the feature network's Gram matrices match the style image's, while a content loss
keeps the feature maps of the deeper layers close to the photo's."""

from __future__ import annotations

import torch

from prodgen.edit.style.features import StyleFeatures, gram, gram_distance

LEARNING_RATE = 0.02  # Adam on pixels in [0, 1]: a 200-step run moves a pixel by up to ~0.5 where the style asks


def content_distance(features: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]) -> torch.Tensor:
    """Per image (N,): mean over layers of ||F - F_target||^2 / ||F_target||^2."""
    terms = [((features[k] - targets[k]) ** 2).sum(dim=(1, 2, 3)) / (targets[k] ** 2).sum(dim=(1, 2, 3)).clamp_min(1e-12) for k in targets]
    return torch.stack(terms).mean(0)


def gatys(network: StyleFeatures, content: torch.Tensor, style: torch.Tensor, steps: int = 200, strength: float = 0.9) -> torch.Tensor:
    """Stylise content (1, 3, H, W) in [0, 1] after style (1, 3, H', W'). `strength` in [0, 1] weighs the
    style loss against the content loss (strength 1: no content loss; the start from the photo and
    the finite number of steps still keep some of its layout)."""
    with torch.no_grad():
        style_targets = {k: gram(v) for k, v in network.features(style, network.style_layers).items()}
        content_targets = network.features(content, network.content_layers)
    layers = tuple(dict.fromkeys(network.style_layers + network.content_layers))
    image = content.clone().requires_grad_(True)
    optimiser = torch.optim.Adam([image], lr=LEARNING_RATE)
    for _ in range(steps):
        features = network.features(image, layers)
        style_loss = gram_distance({k: gram(features[k]) for k in style_targets}, style_targets)
        loss = strength * style_loss + (1 - strength) * content_distance(features, content_targets)
        optimiser.zero_grad(set_to_none=True)
        loss.sum().backward()
        optimiser.step()
        with torch.no_grad():
            image.clamp_(0, 1)
    return image.detach()
