"""Input pipeline: images decoded once into uint8 tensors (``adu_core.data.tensor_cache``), then augmented and
normalised on the device.

Few-shot training sets are small (Office-Home: 2,080 images), so decoding every image once and augmenting whole
batches on the device removes JPEG decoding and per-sample Python from the training step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F


def normalize(images: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 or [0, 1] float images -> normalised float32 on the same device."""
    x = images.float()
    if images.dtype == torch.uint8:
        x = x / 255.0
    m = torch.tensor(mean, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
    s = torch.tensor(std, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
    return (x - m) / s


def random_resized_crop_flip(images: torch.Tensor, generator: torch.Generator,
                             scale: tuple[float, float] = (0.08, 1.0),
                             ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> torch.Tensor:
    """Batched random-resized-crop + horizontal flip through one affine resampling (float images in, same size out).

    Crop area fraction ~ U(scale), aspect ratio log-uniform in ``ratio``; sides are clamped to the image instead of
    torchvision's rejection loop. All random numbers come from ``generator`` so an epoch is reproducible.
    """
    n = images.shape[0]
    dev = images.device
    u = torch.rand((n, 5), generator=generator, device=generator.device).to(dev)
    area = scale[0] + (scale[1] - scale[0]) * u[:, 0]
    log_r = math.log(ratio[0]) + (math.log(ratio[1]) - math.log(ratio[0])) * u[:, 1]
    r = torch.exp(log_r)
    w = torch.sqrt(area * r).clamp(max=1.0)
    h = torch.sqrt(area / r).clamp(max=1.0)
    cx = (1 - w) * (2 * u[:, 2] - 1)
    cy = (1 - h) * (2 * u[:, 3] - 1)
    flip = torch.where(u[:, 4] < 0.5, -1.0, 1.0).to(dev)
    theta = torch.zeros((n, 2, 3), device=dev, dtype=images.dtype)
    theta[:, 0, 0] = w * flip
    theta[:, 0, 2] = cx
    theta[:, 1, 1] = h
    theta[:, 1, 2] = cy
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def balanced_batches(domains: torch.Tensor, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    """One epoch of domain-balanced batches: each batch holds batch_size // n_domains samples of every domain.

    MMD² between domains needs every domain in every batch. An epoch has ceil(N / batch_size) batches; a domain
    whose images run out is reshuffled and drawn again, so small domains are oversampled, large ones cycled.
    """
    present = torch.unique(domains)
    per = max(1, batch_size // len(present))
    pools = {int(d): torch.nonzero(domains == d).flatten() for d in present}
    queues = {d: idx[torch.randperm(len(idx), generator=generator)] for d, idx in pools.items()}
    pos = dict.fromkeys(pools, 0)
    n_batches = max(1, math.ceil(len(domains) / (per * len(present))))
    batches = []
    for _ in range(n_batches):
        parts = []
        for d, idx in pools.items():
            take = []
            need = per
            while need:
                if pos[d] >= len(queues[d]):
                    queues[d] = idx[torch.randperm(len(idx), generator=generator)]
                    pos[d] = 0
                k = min(need, len(queues[d]) - pos[d])
                take.append(queues[d][pos[d]:pos[d] + k])
                pos[d] += k
                need -= k
            parts.append(torch.cat(take))
        batches.append(torch.cat(parts))
    return batches


def random_batches(n: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    """One epoch of batches from a random permutation of the ``n`` samples, whatever their domains: floor(n / B)
    full batches (the last, partial one is dropped, as Dassl's loader does with ``drop_last``), or one batch of all
    ``n`` when there are fewer than B."""
    order = torch.randperm(n, generator=generator)
    if n < batch_size:
        return [order]
    return list(order[: (n // batch_size) * batch_size].view(-1, batch_size).unbind())


def steps_per_epoch(n: int, n_domains: int, batch_size: int, sampler: str = "balanced") -> int:
    """Batches per epoch of a pool of ``n`` images over ``n_domains`` domains (:func:`balanced_batches` or
    :func:`random_batches`)."""
    if sampler == "random":
        return 1 if n < batch_size else n // batch_size
    if sampler != "balanced":
        raise ValueError(f"unknown sampler {sampler!r}; choose balanced or random")
    per = max(1, batch_size // n_domains)
    return max(1, math.ceil(n / (per * n_domains)))
