"""Fabricated paper-tier inputs: Office-Home and ImageNet folders in every accepted layout, and a tiny random CLIP of
the paper's depth. Nothing here downloads anything; images are a few bytes each.
"""

from __future__ import annotations

import functools
from pathlib import Path

from tests._data_fixtures import image_bytes

# A CLIP of ViT-B/16's depth (12 vision layers, so the paper's 9 prompted layers and InstaPG fit) and nothing else of
# its size: 32 px, width 64, a 2-layer text encoder. Seconds per run on a CPU.
PAPER_DEPTH_CFG = {
    "name": "adu-tiny-12",
    "embed_dim": 32,
    "quick_gelu": False,
    "vision_cfg": {"image_size": 32, "layers": 12, "width": 64, "head_width": 16, "patch_size": 8},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
}


def paper_depth_checkpoint(path: Path, seed: int = 0) -> Path:
    """A self-describing random checkpoint (``adu-clip`` format) of :data:`PAPER_DEPTH_CFG`."""
    import open_clip
    import torch

    from adu_core.backbones import save_checkpoint

    torch.manual_seed(seed)
    model = open_clip.CLIP(**{k: v for k, v in PAPER_DEPTH_CFG.items() if k != "name"})
    save_checkpoint(model, PAPER_DEPTH_CFG, path, half=False)
    return path


@functools.cache
def _jpeg_of(seed: int) -> bytes:
    return image_bytes(seed, size=12)


def _jpeg(n: int) -> bytes:
    return _jpeg_of(n % 61)  # a few distinct pictures, encoded once (15,588 files are written in seconds)


def office_home_original(root: Path, real_world: str = "Real_World") -> Path:
    """Every image of the committed Office-Home lists (15,588 files, the release's layout) under ``root/office_home``.

    ``real_world``: the folder's spelling (the release zip says "Real World", the committed lists "Real_World").
    """
    from adu_core.data.splits import PACKAGE_SPLITS

    folder = root / "office_home"
    for i, line in enumerate((PACKAGE_SPLITS / "office_home" / "train.txt").read_text().splitlines()
                             + (PACKAGE_SPLITS / "office_home" / "test.txt").read_text().splitlines()):
        rel = line.split()[0]
        if rel.startswith("Real_World/"):
            rel = f"{real_world}/{rel.split('/', 1)[1]}"
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_jpeg(i))
    return folder


def office_home_dassl(root: Path, folder: str = "office_home_dg", train: int = 2, val: int = 1,
                      class_case: str = "lower") -> Path:
    """Dassl's layout: ``<folder>/{art,clipart,product,real_world}/{train,val}/<class>/*.jpg``."""
    from adu_core.data.office_home import CLASS_DIRS

    top = root / folder
    n = 0
    for dom in ("art", "clipart", "product", "real_world"):
        for cls in CLASS_DIRS:
            name = cls.lower() if class_case == "lower" else cls
            for sub, count in (("train", train), ("val", val)):
                for i in range(count):
                    path = top / dom / sub / name / f"{dom}_{name}_{sub}_{i:03d}.jpg"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(_jpeg(n))
                    n += 1
    return top


WNIDS = ("n01440764", "n01443537", "n01484850")


def imagenet_tree(root: Path, layout: str, train: int = 2, val: int = 1, sketch: int = 5) -> None:
    """ImageNet train/val and ImageNet-Sketch for :data:`WNIDS`, in torchvision's or CoOp's layout."""
    places = {"torchvision": ("imagenet/train", "imagenet/val", "imagenet/sketch"),
              "coop": ("imagenet/images/train", "imagenet/images/val", "imagenet-sketch/images")}[layout]
    n = 0
    for part, count in zip(places, (train, val, sketch), strict=True):
        for wnid in WNIDS:
            for i in range(count):
                path = root / part / wnid / f"{wnid}_{i}.JPEG"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(_jpeg(n))
                n += 1
