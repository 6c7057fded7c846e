"""Office-Home (Venkateswara et al., CVPR 2017): Art, Clipart, Product, Real World; 65 classes; 15,588 images.

Two layouts are read in place (nothing is copied); ``adu data verify office_home`` says which it found, and run.json
records it with the split protocol it implies (``run["data"]``):

``original`` (the release ``OfficeHomeDataset_10072016``, which ``adu data download office_home`` installs)::

    office_home/{Art,Clipart,Product,Real_World}/<Class_Folder>/<nnnnn>.jpg    ("Real World" is read too)

  Protocol ``adu-split-v1``, the project's own, **not the authors'**: the release has no test split, so per
  (domain, class) the images ordered by sha256 of their path, the first 20 % (rounded, at least 1) are ``test``, the
  rest ``train`` (3,123 test images); few-shot sets are drawn from ``train`` only. Both lists and the few-shot files
  are committed in ``adu_core/splits/office_home`` and checked by sha256.

``dassl`` (Dassl's ``office_home_dg``, which CoOp-family code and the authors' code read)::

    office_home_dg/{art,clipart,product,real_world}/{train,val}/<class_folder>/*.jpg   (also under office_home/)

  Protocol ``authors-50a43db``, the authors' (their ``datasets/office_home_df.py`` at release 50a43db): the
  few-shot pool is each domain's ``train/``, the test set its ``val/`` (their log counts 1,656 test images), so shots
  and test never overlap. Classes are the sorted class folders, which is our label order (case-insensitive).
  Few-shot sets follow our rule ``adu-fewshot-v1`` (generated at first use into the cache): the authors'
  ``random.sample`` over ``glob`` order cannot be redrawn, and where a cell has fewer than K images they sample with
  replacement, while we take all there are.

When both exist, ``<root>/office_home`` is read (whichever layout it holds), then ``<root>/office_home_dg``.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from .base import DataError, Sample, canonical_id
from .dataset import Dataset
from .download import Resource
from .verify import VerifyReport, count_by_class_dir, list_images

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
DASSL_FOLDER = "office_home_dg"
DASSL_SPLITS = {"train": "train", "test": "val"}  # our split -> Dassl's sub-folder (the authors' pool and test set)
AUTHORS_TEST_IMAGES = 1656  # the authors' own log: test images of Office-Home (all of val/)
LAYOUTS = {
    "original": "{folder}/{{Art,Clipart,Product,Real_World}}/<Class>/ (the original release)",
    "dassl": "{folder}/{{art,clipart,product,real_world}}/{{train,val}}/<class>/ (Dassl's office_home_dg)",
}
PROTOCOLS = {
    "original": ("adu-split-v1", "the project's own held-out split of the original release (20 % of each domain and "
                                 "class as test, 3,123 images), not the authors'", False),
    "dassl": ("authors-50a43db", "the authors' (release 50a43db): few-shot pool = each domain's train/, test = its "
                                 "val/; shots drawn by our rule adu-fewshot-v1", True),
}


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

    def __init__(self, root=None, cache_dir=None):
        super().__init__(root, cache_dir)
        self._found: tuple[Path, str, dict[str, str]] | None = None  # (folder, layout, domain folders) once found

    def _looks_like_dataset_dir(self, path: Path) -> bool:
        return all((path / d).is_dir() for d in ("Art", "Clipart", "Product"))

    @staticmethod
    def _domain_entries(folder: Path) -> dict[str, str]:
        """Sub-folders of ``folder`` by canonical domain id (``Real World``, ``Real_World``, ``real_world`` -> one)."""
        try:
            return {canonical_id(e.name): e.name for e in os.scandir(folder) if e.is_dir()}
        except OSError:
            return {}

    def _layout_of(self, folder: Path) -> str | None:
        """``original``, ``dassl`` or None for a folder that holds neither (art, clipart and product must be there)."""
        entries = self._domain_entries(folder)
        present = [entries[d] for d in self.domains if d in entries]
        if not all(d in entries for d in ("art", "clipart", "product")):
            return None
        if all((folder / name / "train").is_dir() and (folder / name / "val").is_dir() for name in present):
            return "dassl"
        return "original"

    def _find(self) -> tuple[Path, str, dict[str, str]] | None:
        if self._found is None:  # only a found copy is remembered: a download may create it later
            for folder in (self.data_root / self.folder, self.data_root / DASSL_FOLDER, self.data_root):
                layout = self._layout_of(folder)
                if layout:
                    entries = self._domain_entries(folder)
                    self._found = (folder, layout, entries if all(d in entries for d in self.domains) else {})
                    break
        return self._found

    @property
    def dir(self) -> Path:
        found = self._find()
        return found[0] if found else self.data_root / self.folder

    @property
    def layout(self) -> str:
        found = self._find()
        return found[1] if found else "original"

    def layout_note(self) -> str:
        folder = self.dir.name if self.dir != self.data_root else "."
        return f"{self.layout}: " + LAYOUTS[self.layout].format(folder=folder) + ", read in place"

    def protocol_info(self) -> dict:
        pid, note, authors = PROTOCOLS[self.layout]
        return {"id": pid, "note": note, "authors": authors}

    def committed_index(self) -> dict:
        # The committed lists and few-shot files are the original release's; a Dassl copy's are its own folders.
        return {"files": {}} if self.layout == "dassl" else super().committed_index()

    def domain_dir(self, domain: str) -> Path:
        found = self._find()
        known = found[2] if found else {}  # the four domain folders of a complete copy, listed once
        name = known.get(domain) or self._domain_entries(self.dir).get(domain)
        return self.dir / (name or DOMAIN_DIRS[domain])

    def image_path(self, sample: Sample) -> Path:
        top, rest = sample.path.split("/", 1)
        return self.domain_dir(sample.domain) / rest if top == DOMAIN_DIRS[sample.domain] else self.dir / sample.path

    def _load_split(self, split: str) -> list[Sample]:
        from . import splits

        self.require_dir()
        for dom in self.domains:
            self.require_subdir(self.domain_dir(dom), f"domain {dom!r}")
        if self.layout == "dassl":
            return self._dassl_samples(split)
        index = self.committed_index()
        text = splits.read_checked(self.splits_dir, f"{split}.txt", index)
        return self._parse(text, str(self.splits_dir / f"{split}.txt"))

    def _dassl_classes(self, folder: Path) -> dict[str, int]:
        """Class folders of a Dassl ``<domain>/<train|val>`` folder -> our labels (matched case-insensitively)."""
        index = {c.lower(): i for i, c in enumerate(CLASS_DIRS)}
        names = sorted(e.name for e in os.scandir(folder) if e.is_dir() and not e.name.startswith("."))
        unknown = [n for n in names if n.lower() not in index]
        if unknown:
            raise DataError(f"office_home: {folder} holds class folders that are not Office-Home's 65: "
                            f"{', '.join(unknown[:5])}; is this Dassl's office_home_dg?")
        return {n: index[n.lower()] for n in names}

    def _dassl_samples(self, split: str) -> list[Sample]:
        out = []
        for dom in self.domains:
            top = self.domain_dir(dom)
            folder = self.require_subdir(top / DASSL_SPLITS[split], f"{dom!r} {DASSL_SPLITS[split]}")
            for cls, label in self._dassl_classes(folder).items():
                # *.jpg only, as the authors' glob reads them (Office-Home has no other kind)
                out += [Sample(f"{top.name}/{DASSL_SPLITS[split]}/{cls}/{name}", label, dom)
                        for name in list_images(folder / cls) if "/" not in name and name.endswith(".jpg")]
        return out

    def _verify_layout(self, report: VerifyReport) -> None:
        for dom in self.domains:
            if not self.domain_dir(dom).is_dir():
                report.problem(f"domain folder {self.domain_dir(dom)} is missing")
            elif self.layout == "dassl":
                for sub in DASSL_SPLITS.values():
                    if not (self.domain_dir(dom) / sub).is_dir():
                        report.problem(f"folder {self.domain_dir(dom) / sub} is missing (Dassl's layout has "
                                       "train/ and val/ in every domain)")

    def _verify_expected(self, report: VerifyReport, by_split: dict[str, list[Sample]]) -> None:
        if self.layout == "dassl":
            self._verify_dassl(report, by_split)
            return
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

    def _verify_dassl(self, report: VerifyReport, by_split: dict[str, list[Sample]]) -> None:
        for split, sub in DASSL_SPLITS.items():
            cells = Counter((s.domain, s.label) for s in by_split[split])
            for dom in self.domains:
                report.counts.setdefault(dom, {})["images"] = report.counts[dom].get("images", 0) + sum(
                    cells[(dom, i)] for i in range(len(CLASS_DIRS)))
                empty = [CLASS_DIRS[i].lower() for i in range(len(CLASS_DIRS)) if not cells[(dom, i)]]
                if empty:
                    report.problem(f"{dom}: {len(empty)} class(es) have no image in {self.domain_dir(dom) / sub}: "
                                   f"{', '.join(empty[:8])}" + (f" and {len(empty) - 8} more" if len(empty) > 8 else ""))
        n_test = len(by_split["test"])
        report.notes.append(f"{n_test:,} test images (val/); the authors' log counts {AUTHORS_TEST_IMAGES:,}"
                            + ("" if n_test == AUTHORS_TEST_IMAGES else ": this copy differs from theirs"))

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
