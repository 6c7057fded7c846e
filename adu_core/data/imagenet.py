"""ImageNet with its second domain, ImageNet-Sketch: the paper's two-domain benchmark (domains ``real``, ``sketch``).

Which second domain the paper used is not stated; ImageNet-Sketch is our documented choice (see PAPER.md §1: the
Mem/For numbers fit CLIP ViT-B/16 on ImageNet + ImageNet-Sketch, not ImageNet-R's 200 classes).

ImageNet itself is user-supplied (its licence forbids redistribution). Two layouts under the data root are read in
place (each part is looked for in both places; ``adu data verify imagenet`` says which were found)::

    torchvision's (``torchvision``)              CoOp's (``coop``: its DATASETS.md)
    imagenet/train/<wnid>/*.JPEG                 imagenet/images/train/<wnid>/*.JPEG    ILSVRC-2012 train, 1,281,167
    imagenet/val/<wnid>/*.JPEG                   imagenet/images/val/<wnid>/*.JPEG      ILSVRC-2012 val, 50,000
    imagenet/sketch/<wnid>/*.JPEG                imagenet-sketch/images/<wnid>/*.JPEG   ImageNet-Sketch, 50,889

``adu data download imagenet`` fetches ImageNet-Sketch into ``imagenet/sketch`` unless a complete copy is already
in either place. If train/val are missing but the official archives (``ILSVRC2012_img_train.tar``,
``ILSVRC2012_img_val.tar``, ``ILSVRC2012_devkit_t12.tar.gz``) sit in ``imagenet/``, it checks their md5 (the values
torchvision publishes) and unpacks them with ``torchvision.datasets.ImageNet``. Sample paths are logical
(``train|val|sketch/<wnid>/<file>``), so both layouts give the same split and few-shot files.

Splits (protocol ``imagenet-val+sketch-80-20``): ``real`` trains on ImageNet train and tests on ImageNet val, as the
authors do. ImageNet-Sketch has no split. The authors drew one (their development history before release 50a43db,
``datasets/imagenet_sketch.py`` from commit 0bc985b on, used by ``imagenet_df.py``): per class folder, in sorted
folder order, the files as ``os.listdir`` returns them (Dassl's ``listdir_nohidden`` without sorting), then one
``StratifiedShuffleSplit(n_splits=1, test_size=0.2, random_state=42)`` over all files by label: 80 % train, 20 %
test. That draw **cannot be redrawn**: the indices it picks are fixed by the per-class counts, but they index a file
order that depends on the file system of the authors' machine, not on a sorted list. So we keep their proportion and
stratification and draw by our rule ``adu-split-v1`` with a 20 % test fraction per class (about 40 train and 10 test
images per class, enough for 16 shots): the same sizes as theirs, other images. Classes: the 1000 ILSVRC classes in
wnid order (the authors' sorted folders), named as in OpenAI's CLIP prompts (``open_clip``'s
``IMAGENET_CLASSNAMES``). Few-shot files are generated at first use into the cache dir (the train list is the user's).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .base import DataError, Sample
from .dataset import Dataset
from .download import Resource
from .splits import holdout_split
from .verify import IMAGE_SUFFIXES, VerifyReport, file_digest

N_CLASSES = 1000
SKETCH_TEST_FRACTION = 0.2  # the authors' 80/20 (see the module doc: their draw itself cannot be redrawn)
COOP_SKETCH = ("imagenet-sketch", "images")  # CoOp's ImageNet-Sketch folder, beside imagenet/ under the data root
EXPECTED = {"train": 1_281_167, "val": 50_000, "sketch": 50_889}
ARCHIVES = {  # md5 as published by torchvision.datasets.ImageNet
    "train": ("ILSVRC2012_img_train.tar", "1d675b47d978889d74fa0da5fadfb00e"),
    "val": ("ILSVRC2012_img_val.tar", "29b22e2961454d5413ddabcf34fc5622"),
    "devkit": ("ILSVRC2012_devkit_t12.tar.gz", "fa75699e90414af021442c21a62c3abf"),
}
_WNID = re.compile(r"^n\d{8}$")


def _imagenet_classnames() -> tuple[str, ...]:
    try:
        from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES
    except ImportError as err:  # pragma: no cover - open_clip is a dependency
        raise DataError(f"the ImageNet class names come from open_clip, which failed to import ({err})") from None
    return tuple(IMAGENET_CLASSNAMES)


class ImageNetSketchPair(Dataset):
    name = "imagenet"
    folder = "imagenet"
    domains = ("real", "sketch")
    domain_names = ("real", "sketch")
    domain_aliases = {"imagenet": "real", "photo": "real", "imagenet_sketch": "sketch"}
    n_classes = N_CLASSES
    expected = EXPECTED  # images per folder
    val_per_class = 50
    homepage = "https://image-net.org/ (ImageNet, user-supplied); https://github.com/HaohanWang/ImageNet-Sketch"
    resources = (
        # ImageNet-Sketch: Hugging Face mirror first, the authors' Google Drive second; no published checksum.
        Resource("ImageNet-Sketch.zip",
                 ("https://huggingface.co/datasets/songweig/imagenet_sketch/resolve/main/data/ImageNet-Sketch.zip",
                  "gdrive:1Mj0i5HBthqH1p_yeXzsg22gZduvgoNeA")),
    )
    download_note = ("ImageNet is not downloaded (licence): put train/ and val/ in torchvision's layout under "
                     "<root>/imagenet (or CoOp's, imagenet/images/{train,val}), or the three official ILSVRC-2012 "
                     "archives in <root>/imagenet to have them md5-checked and unpacked. ImageNet-Sketch (7.8 GB) is "
                     "downloaded unless a complete copy is there (imagenet/sketch, or CoOp's "
                     "imagenet-sketch/images); its checksum is recorded on first download (trust-on-first-use).")
    protocol = "imagenet-val+sketch-80-20"
    protocol_note = ("real: ImageNet train -> val (the authors'); sketch: 80/20 per class by our rule adu-split-v1, "
                     "the authors' proportion but not their draw, which depends on their file system's order")

    def __init__(self, root=None, cache_dir=None):
        super().__init__(root, cache_dir)
        self._classnames: tuple[str, ...] | None = None
        self._scans: dict[str, list[str]] = {}

    @property
    def classnames(self) -> tuple[str, ...]:  # type: ignore[override]
        if self._classnames is None:
            self._classnames = _imagenet_classnames()
        return self._classnames

    def _looks_like_dataset_dir(self, path: Path) -> bool:
        return any((path / sub / "val").is_dir() and (path / sub / "train").is_dir() for sub in (".", "images"))

    def part_places(self, part: str) -> tuple[Path, Path]:
        """(torchvision's folder, CoOp's folder) of ``part`` (train, val or sketch)."""
        if part == "sketch":
            return self.dir / "sketch", self.dir.parent.joinpath(*COOP_SKETCH)
        return self.dir / part, self.dir / "images" / part

    def part_dir(self, part: str) -> Path:
        """Where ``part`` is read from: torchvision's place if it is there, else CoOp's, else torchvision's."""
        ours, coop = self.part_places(part)
        return coop if not ours.is_dir() and coop.is_dir() else ours

    @property
    def layout(self) -> str:
        kinds = {("coop" if self.part_dir(p) == self.part_places(p)[1] else "torchvision") for p in ("train", "val",
                                                                                                  "sketch")}
        return kinds.pop() if len(kinds) == 1 else "mixed"

    def layout_note(self) -> str:
        def rel(path: Path) -> str:
            try:
                return path.relative_to(self.data_root).as_posix()
            except ValueError:
                return str(path)

        return (f"{self.layout}: " + ", ".join(f"{p} from {rel(self.part_dir(p))}/" for p in ("train", "val", "sketch"))
                + ", read in place")

    def image_path(self, sample: Sample) -> Path:
        part, rest = sample.path.split("/", 1)
        return self.part_dir(part) / rest

    def _scan(self, part: str) -> list[str]:
        """Relative paths ``<part>/<wnid>/<file>`` of every image, sorted (memoised: train holds 1.28 M files)."""
        if part not in self._scans:
            top = self.require_subdir(self.part_dir(part), f"ImageNet {part!r}")
            out = []
            for entry in sorted(os.scandir(top), key=lambda e: e.name):
                if entry.is_dir() and _WNID.match(entry.name):
                    out += sorted(f"{part}/{entry.name}/{f.name}" for f in os.scandir(entry.path)
                                  if Path(f.name).suffix.lower() in IMAGE_SUFFIXES)
            self._scans[part] = out
        return self._scans[part]

    def wnids(self) -> list[str]:
        top = self.require_subdir(self.part_dir("train"), "ImageNet 'train'")
        ids = sorted(e.name for e in os.scandir(top) if e.is_dir() and _WNID.match(e.name))
        if len(ids) != self.n_classes:
            raise DataError(f"{top} holds {len(ids)} class folders (n########), expected {self.n_classes}: is this "
                            "ILSVRC-2012 in torchvision's layout?")
        return ids

    def _samples_of(self, part: str, domain: str) -> list[Sample]:
        index = {w: i for i, w in enumerate(self.wnids())}
        out = []
        for rel in self._scan(part):
            wnid = rel.split("/")[1]
            if wnid not in index:
                raise DataError(f"{self.part_dir(part) / wnid} is not an ILSVRC-2012 class of "
                                f"{self.part_dir('train')}")
            out.append(Sample(rel, index[wnid], domain))
        return out

    def _load_split(self, split: str) -> list[Sample]:
        self.require_dir()
        real = self._samples_of("train" if split == "train" else "val", "real")
        sketch_train, sketch_test = holdout_split(self._samples_of("sketch", "sketch"), self.name,
                                                  SKETCH_TEST_FRACTION)
        return real + (sketch_train if split == "train" else sketch_test)

    def _verify_layout(self, report: VerifyReport) -> None:
        for part in ("train", "val", "sketch"):
            if not self.part_dir(part).is_dir():
                ours, coop = self.part_places(part)
                report.problem(f"folder {ours} (or CoOp's {coop}) is missing"
                               + (" (ImageNet is user-supplied: see `adu data download imagenet`)"
                                  if part != "sketch" else " (run `adu data download imagenet`)"))

    def _verify_expected(self, report: VerifyReport, by_split: dict[str, list[Sample]]) -> None:
        for part, want in self.expected.items():
            n = len(self._scan(part))
            if n != want:
                report.problem(f"{self.part_dir(part)}: {n:,} images, expected {want:,}")
        per_class: dict[str, int] = {}
        for rel in self._scan("val"):
            per_class[rel.split("/")[1]] = per_class.get(rel.split("/")[1], 0) + 1
        odd = [w for w, n in per_class.items() if n != self.val_per_class]
        if odd or len(per_class) != self.n_classes:
            report.problem(f"{self.part_dir('val')}: expected {self.val_per_class} images in each of {self.n_classes} "
                           f"classes ({len(odd)} differ, {len(per_class)} present)")
        missing = set(self.wnids()) - {rel.split("/")[1] for rel in self._scan("sketch")}
        if missing:
            report.problem(f"{self.part_dir('sketch')}: {len(missing)} classes have no image (e.g. {min(missing)})")

    def _verify_deep(self, report: VerifyReport, by_split: dict[str, list[Sample]]) -> None:
        super()._verify_deep(report, by_split)
        for filename, md5 in ARCHIVES.values():
            path = self.dir / filename
            if path.is_file():
                if file_digest(path, "md5") != md5:
                    report.problem(f"{path}: md5 differs from the official archive ({md5})")
                else:
                    report.notes.append(f"{filename}: md5 matches")

    def post_download(self) -> list[str]:
        return self.unpack_user_archives()

    def unpack_user_archives(self) -> list[str]:
        """Check and unpack user-supplied ILSVRC-2012 archives into train/ and val/ (torchvision's layout)."""
        done = []
        for part in ("train", "val"):
            if self.part_dir(part).is_dir():
                continue
            needed = [ARCHIVES[part], ARCHIVES["devkit"]]
            if not all((self.dir / f).is_file() for f, _ in needed):
                continue
            for filename, md5 in needed:
                actual = file_digest(self.dir / filename, "md5")
                if actual != md5:
                    raise DataError(f"{self.dir / filename}: md5 {actual} is not the official archive's ({md5}); "
                                    "download it again from image-net.org")
            from torchvision.datasets import ImageNet

            ImageNet(str(self.dir), split=part)  # unpacks into <dir>/<part>/<wnid>/
            done.append(part)
        return done
