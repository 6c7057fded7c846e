"""Datasets: registry, split files, few-shot sampler, synthetic generator, downloads, tensor cache.

    from adu_core.data import get_dataset
    ds = get_dataset("pacs")              # under $ADU_DATA_ROOT (or the user cache dir)
    train = ds.few_shot(shots=8, seed=1)  # committed split file, checked by sha256
    test = ds.samples("test")
    img = ds.open_image(test[0])          # RGB PIL image

``ImageDataset`` (a torch ``Dataset``) is imported lazily so that this package and the CLI's ``--help`` stay cheap.
"""

from __future__ import annotations

from .base import DataError, FewShotShortfallWarning, Sample, UnknownNameError
from .dataset import Dataset
from .locations import cache_dir, data_root
from .registry import get_dataset, list_datasets

__all__ = [
    "DataError",
    "Dataset",
    "FewShotShortfallWarning",
    "ImageDataset",
    "Sample",
    "UnknownNameError",
    "cache_dir",
    "data_root",
    "get_dataset",
    "list_datasets",
]


def __getattr__(name: str):
    if name == "ImageDataset":
        from .torch_dataset import ImageDataset

        return ImageDataset
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
