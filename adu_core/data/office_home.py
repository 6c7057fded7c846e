"""Office-Home (Venkateswara et al., CVPR 2017): Art, Clipart, Product, Real World; 65 classes; 15,588 images.

Layout under the data root (the original release, ``OfficeHomeDataset_10072016``, is moved into it)::

    office_home/{Art,Clipart,Product,Real_World}/<Class_Folder>/<nnnnn>.jpg    ("Real World" is read too)

Office-Home has no official test split. Ours (rule ``adu-split-v1``, see ``adu_core.data.splits``): per
(domain, class), the images ordered by sha256 of their path, the first 20 % (rounded, at least 1) are ``test``, the
rest ``train``; few-shot sets are drawn from ``train`` only, so no test image is ever trained on. (Dassl's
OfficeHomeDG tests on *all* images of a domain, which would overlap the shots.) Both lists and the few-shot files are
committed in ``adu_core/splits/office_home`` and checked by sha256.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from .base import DataError, Sample
from .dataset import Dataset
from .download import Resource
from .verify import VerifyReport, count_by_class_dir

DOMAIN_DIRS = {"art": "Art", "clipart": "Clipart", "product": "Product", "real_world": "Real_World"}
# Folder names, in label order (case-insensitive alphabetical, as Dassl's lower-cased folders sort).
CLASS_DIRS = (
    "Alarm_Clock", "Backpack", "Batteries", "Bed", "Bike", "Bottle", "Bucket", "Calculator", "Calendar", "Candles",
    "Chair", "Clipboards", "Computer", "Couch", "Curtains", "Desk_Lamp", "Drill", "Eraser", "Exit_Sign", "Fan",
    "File_Cabinet", "Flipflops", "Flowers", "Folder", "Fork", "Glasses", "Hammer", "Helmet", "Kettle", "Keyboard",
    "Knives", "Lamp_Shade", "Laptop", "Marker", "Monitor", "Mop", "Mouse", "Mug", "Notebook", "Oven", "Pan",
    "Paper_Clip", "Pen", "Pencil", "Postit_Notes", "Printer", "Push_Pin", "Radio", "Refrigerator", "Ruler",
    "Scissors", "Screwdriver", "Shelf", "Sink", "Sneakers", "Soda", "Speaker", "Spoon", "Table", "Telephone",
    "ToothBrush", "Toys", "Trash_Can", "TV", "Webcam",
)
# Prompt text: lower case with spaces, except where a folder name is not the word a caption would use.
_PROMPT_OVERRIDES = {"Flipflops": "flip flops", "Postit_Notes": "post-it notes", "TV": "TV"}
CLASSNAMES = tuple(_PROMPT_OVERRIDES.get(c, c.replace("_", " ").lower()) for c in CLASS_DIRS)
TEST_FRACTION = 0.2
EXPECTED_TOTALS = {"art": 2427, "clipart": 4365, "product": 4439, "real_world": 4357}


class OfficeHome(Dataset):
    name = "office_home"
    folder = "office_home"
    domains = tuple(DOMAIN_DIRS)
    domain_names = ("art", "clipart", "product", "real world")
    classnames = CLASSNAMES
    domain_aliases = {"real": "real_world", "realworld": "real_world"}
    expected_totals = EXPECTED_TOTALS
    homepage = "https://www.hemanthdv.org/officeHomeDataset.html"
    resources = (
        # The original release as DomainBed fetches it (OfficeHomeDataset_10072016.zip); no published checksum.
        Resource("OfficeHomeDataset_10072016.zip", ("gdrive:1uY0pj7oFsjMxRwaD3Sxy0jgel0fsYXLC",)),
    )
    download_note = ("Office-Home: the original release (OfficeHomeDataset_10072016.zip, via DomainBed's Google Drive "
                     "link); checksum recorded on first download (trust-on-first-use); every file is then checked "
                     "against the committed file lists. Licence: research and non-commercial use only.")

    def _looks_like_dataset_dir(self, path: Path) -> bool:
        return all((path / d).is_dir() for d in ("Art", "Clipart", "Product"))

    def domain_dir(self, domain: str) -> Path:
        base = self.dir / DOMAIN_DIRS[domain]
        if not base.is_dir() and domain == "real_world" and (self.dir / "Real World").is_dir():
            return self.dir / "Real World"  # the original archive's spelling
        return base

    def image_path(self, sample: Sample) -> Path:
        top, rest = sample.path.split("/", 1)
        return self.domain_dir(sample.domain) / rest if top == DOMAIN_DIRS[sample.domain] else self.dir / sample.path

    def _load_split(self, split: str) -> list[Sample]:
        from . import splits

        self.require_dir()
        for dom in self.domains:
            self.require_subdir(self.domain_dir(dom), f"domain {dom!r}")
        index = self.committed_index()
        text = splits.read_checked(self.splits_dir, f"{split}.txt", index)
        return self._parse(text, str(self.splits_dir / f"{split}.txt"))

    def _verify_layout(self, report: VerifyReport) -> None:
        for dom in self.domains:
            if not self.domain_dir(dom).is_dir():
                report.problem(f"domain folder {self.domain_dir(dom)} is missing")

    def _verify_expected(self, report: VerifyReport, by_split: dict[str, list[Sample]]) -> None:
        listed = Counter((s.domain, s.label) for split in by_split.values() for s in split)
        for dom in self.domains:
            on_disk = count_by_class_dir(self.domain_dir(dom))
            report.counts.setdefault(dom, {})["images"] = sum(on_disk.values())
            bad = [f"{c} {on_disk.get(c, 0)} (expected {listed[(dom, i)]})" for i, c in enumerate(CLASS_DIRS)
                   if on_disk.get(c, 0) != listed[(dom, i)]]
            extra = sorted(set(on_disk) - set(CLASS_DIRS))
            if bad:
                report.problem(f"{dom}: image counts differ from the file list: {', '.join(bad[:8])}"
                               + (f" and {len(bad) - 8} more" if len(bad) > 8 else ""))
            if extra:
                report.problem(f"{dom}: unexpected class folders {', '.join(extra)} in {self.domain_dir(dom)}")
            total = sum(listed[(dom, i)] for i in range(len(CLASS_DIRS)))
            if total != self.expected_totals.get(dom, total):
                report.problem(f"{dom}: the committed lists hold {total} images, expected "
                               f"{self.expected_totals[dom]}")

    def install(self, staging: Path, target: Path) -> None:
        """Find the folder holding Art/Clipart/Product/Real World and move the domains to canonical names."""
        from .download import merge_move

        candidates = [p for p in [staging, *sorted(staging.rglob("*"))] if p.is_dir() and
                      self._looks_like_dataset_dir(p)]
        if not candidates:
            raise DataError("the Office-Home archive holds no folder with Art/, Clipart/, Product/; it is not the "
                            "expected file")
        top = candidates[0]
        for dom, name in DOMAIN_DIRS.items():
            src = top / name
            if not src.is_dir() and dom == "real_world":
                src = top / "Real World"
            if not src.is_dir():
                raise DataError(f"the Office-Home archive has no {name}/ folder (looked in {top})")
            merge_move(src, target / name)
