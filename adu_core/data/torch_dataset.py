"""``ImageDataset``: a torch ``Dataset`` over a list of samples (images decoded per item)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch.utils.data import Dataset as TorchDataset
from torchvision.transforms.functional import pil_to_tensor

from .base import DataError, Sample
from .dataset import Dataset


class ImageDataset(TorchDataset):
    """``(image_tensor, label, domain_index)`` per item, ``domain_index = ds.domains.index(sample.domain)``.

    Without a ``transform`` the image comes back as a float tensor in [0, 1], shape [3, H, W].
    """

    def __init__(self, ds: Dataset, samples: Sequence[Sample], transform: Callable | None = None):
        self.ds = ds
        self.samples = list(samples)
        self.transform = transform
        self._domain_index = {d: i for i, d in enumerate(ds.domains)}
        unknown = {s.domain for s in self.samples} - set(self._domain_index)
        if unknown:
            raise DataError(f"samples carry domains {sorted(unknown)} that {ds.name} does not have "
                            f"({', '.join(ds.domains)})")

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, int]:
        sample = self.samples[index]
        image = self.ds.open_image(sample)
        x = self.transform(image) if self.transform is not None else pil_to_tensor(image).float().div_(255.0)
        return x, sample.label, self._domain_index[sample.domain]

    @property
    def labels(self) -> list[int]:
        return [s.label for s in self.samples]

    @property
    def domain_indices(self) -> list[int]:
        return [self._domain_index[s.domain] for s in self.samples]
