"""How the book writes methods, metrics and datasets."""

from __future__ import annotations

__all__ = ["DATASET_NAMES", "EXTRA_METHODS", "METHOD_NAMES", "METRIC_NAMES", "PAPER_METHODS", "dataset_name"]

PAPER_METHODS = ("lp++", "clipfit", "bbf", "baseline", "adu")  # Table 1's rows, in the paper's order
EXTRA_METHODS = ("zeroshot", "gate", "kvw")  # rows the paper does not have: zero-shot CLIP, a training-free gate
# and a training-free weight edit
METHOD_NAMES = {"zeroshot": "Zero-shot CLIP", "gate": "Domain gate", "lp++": "LP++", "clipfit": "CLIPFit",
                "bbf": "BBF", "baseline": "Baseline", "adu": "ADU", "kvw": "KVW (weight edit)"}
METRIC_NAMES = {"h": "H", "mem": "Mem", "for": "For", "domain_acc": "Domain acc. (probe)",
                "domain_acc_head": "Domain acc. (ADU head)", "pseudo_label_acc": "Pseudo-label acc."}
DATASET_NAMES = {"imagenet": "ImageNet", "office_home": "Office-Home", "mini_domainnet": "Mini DomainNet",
                 "pacs": "PACS", "synthetic": "synthetic", "domainnet": "DomainNet"}


def dataset_name(name: str) -> str:
    """The dataset's name as the book writes it (its registry id when it has none)."""
    return DATASET_NAMES.get(name, name)
