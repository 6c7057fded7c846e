"""The dataset registry: names -> classes, imported on first use so that listing names stays cheap."""

from __future__ import annotations

import importlib
import os

from .base import UnknownNameError, canonical_id
from .dataset import Dataset

_REGISTRY: dict[str, str] = {
    "domainnet": "adu_core.data.domainnet:DomainNet",
    "imagenet": "adu_core.data.imagenet:ImageNetSketchPair",
    "mini_domainnet": "adu_core.data.domainnet:MiniDomainNet",
    "office_home": "adu_core.data.office_home:OfficeHome",
    "pacs": "adu_core.data.pacs:PACS",
    "synthetic": "adu_core.data.synthetic:SyntheticDataset",
}
_ALIASES = {
    "officehome": "office_home",
    "office_home_dg": "office_home",
    "minidomainnet": "mini_domainnet",
    "domain_net": "domainnet",
    "imagenet_sketch": "imagenet",
}


def list_datasets() -> list[str]:
    """Registered dataset names, sorted."""
    return sorted(_REGISTRY)


def dataset_class(name: str) -> type[Dataset]:
    key = canonical_id(name) if isinstance(name, str) else ""
    key = _ALIASES.get(key, key)
    if key not in _REGISTRY:
        raise UnknownNameError(f"unknown dataset {name!r}; valid: {', '.join(list_datasets())}")
    module, cls = _REGISTRY[key].split(":")
    return getattr(importlib.import_module(module), cls)


def get_dataset(name: str, root: str | os.PathLike[str] | None = None, **options) -> Dataset:
    """The dataset ``name`` (see :func:`list_datasets`) under the data root ``root`` (default: ``data_root()``).

    Nothing is read yet: domains and classes are known without files; samples are read when first asked for.
    ``options`` go to the dataset's constructor (e.g. ``cache_dir``; ``n_train``, ``image_size`` for synthetic).
    """
    return dataset_class(name)(root, **options)
