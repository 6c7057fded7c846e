"""PACS (Li et al., "Deeper, Broader and Artier Domain Generalization", ICCV 2017): 4 domains x 7 classes.

Layout under the data root (the shared offline copy has it; a download is rearranged into it)::

    pacs/<domain>/<class>/<file>                     (Dassl's zip has pacs/images/<domain>/...: both are read)
    pacs/splits/<domain>_{train,crossval,test}_kfold.txt   lines "<domain>/<class>/<file> <label 1..7>"
    pacs/MANIFEST.sha256                              optional: sha256 of every file (the shared copy has one)

Splits (rule ``adu-pacs-v2``, committed in ``adu_core/splits/pacs`` and checked by sha256): every image of the copy
(the official whole-domain ``*_test_kfold`` lists) goes to exactly one of three parts, per (domain, class):

- ``pretrain`` (about 67 %): what the testbed CLIP is pretrained on (``data_scripts/pretrain_testbed_clip.py``);
- ``train`` (20 images per cell): the downstream pool that few-shot sets are drawn from;
- ``test`` (the rest, 2,736 images, every domain >= 400): the downstream evaluation set.

Parts are chosen by each file's content sha256, and near-duplicates (recoloured or re-encoded copies of one picture)
stay together, so the testbed backbone has never seen a downstream image, not even a copy of one
(``adu_core.data.make_splits.PACS_SPLIT_DOC`` has the exact rule). A copy without committed part files (a custom
``splits_dir``) falls back to the official lists: ``train`` = ``*_train_kfold``, ``test`` = ``*_crossval_kfold``.
(``*_test_kfold`` is the whole domain, meant for leave-one-domain-out.)
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from .base import DataError, Sample, read_split_list
from .dataset import Dataset
from .download import Resource
from .verify import VerifyReport, count_by_class_dir, file_digest, read_manifest, summarize_paths

DOMAINS = ("art_painting", "cartoon", "photo", "sketch")
CLASSES = ("dog", "elephant", "giraffe", "guitar", "horse", "house", "person")
SPLIT_FILES = {"train": "train_kfold", "test": "crossval_kfold"}

# Images per class (dog elephant giraffe guitar horse house person), from the standard release; the shared copy's
# README gives the same table.
EXPECTED = {
    "art_painting": (379, 255, 285, 184, 201, 295, 449),
    "cartoon": (389, 457, 346, 135, 324, 288, 405),
    "photo": (189, 202, 182, 186, 199, 280, 432),
    "sketch": (772, 740, 753, 608, 816, 80, 160),
}


class PACS(Dataset):
    name = "pacs"
    folder = "pacs"
    domains = DOMAINS
    domain_names = ("art painting", "cartoon", "photo", "sketch")
    classnames = CLASSES
    domain_aliases = {"art": "art_painting", "painting": "art_painting"}
    extra_splits = ("pretrain",)
    expected = EXPECTED  # images per class per domain
    homepage = "https://domaingeneralization.github.io/ (kfold release)"
    resources = (
        Resource("pacs.zip", ("gdrive:1m4X4fROCCXMO0lRLrr6Zz9Vb3974NWhE",),
                 checksum_source=""),  # Dassl.pytorch's PACS zip (images/ + splits/); no published checksum
    )
    download_note = ("PACS comes from Dassl.pytorch's Google Drive copy (images + official kfold split lists); "
                     "its checksum is recorded on first download (trust-on-first-use).")

    def __init__(self, root=None, cache_dir=None):
        super().__init__(root, cache_dir)
        self.label_fixes: set[str] = set()  # list lines whose number disagrees with their class folder

    def _looks_like_dataset_dir(self, path: Path) -> bool:
        return (path / "splits").is_dir() and any((path / sub / "photo").is_dir() for sub in (".", "images"))

    @property
    def image_dir(self) -> Path:
        nested = self.dir / "images"
        return nested if (nested / "photo").is_dir() and not (self.dir / "photo").is_dir() else self.dir

    def image_path(self, sample: Sample) -> Path:
        return self.image_dir / sample.path

    @property
    def layout(self) -> str:
        """``dassl`` (Dassl's zip: pacs/images/<domain>/) or ``flat`` (pacs/<domain>/, the shared copy's)."""
        return "dassl" if self.image_dir != self.dir else "flat"

    def protocol_info(self) -> dict:
        if "train.txt" in self.committed_index().get("files", {}):
            return {"id": "adu-pacs-v2", "authors": False,
                    "note": "the testbed's parts: pretrain / few-shot pool / test by content hash (the project's)"}
        return {"id": "pacs-kfold", "authors": False,
                "note": "the official kfold lists: pool = *_train_kfold, test = *_crossval_kfold"}

    def _split_file(self, domain: str, kind: str) -> Path:
        return self.dir / "splits" / f"{domain}_{kind}.txt"

    def _read_list(self, domain: str, kind: str) -> list[Sample]:
        path = self._split_file(domain, kind)
        if not path.is_file():
            raise DataError(f"pacs: split list {path} is missing; restore the splits/ folder "
                            "(`adu data download pacs`), then `adu data verify pacs`")
        out = []
        for lineno, listed, sample in read_split_list(path, domain, CLASSES):
            if listed - 1 != sample.label:  # the lists count classes from 1
                # The official art_painting_crossval list labels its first line 0: the folder is the truth.
                self.label_fixes.add(f"{path.name}:{lineno} ({sample.path} labelled {listed}, "
                                     f"class {CLASSES[sample.label]} = {sample.label + 1})")
            out.append(sample)
        return out

    def official_samples(self) -> list[Sample]:
        """Every image of the copy once, from the official whole-domain ``*_test_kfold`` lists, in list order.

        (The train + crossval lists together are not that: they list ``art_painting/dog/pic_248.jpg`` twice, once in
        each, and ``art_painting/dog/pic_249.jpg`` in neither.)
        """
        self.require_dir()
        for dom in DOMAINS:
            self.require_subdir(self.image_dir / dom, f"domain {dom!r}")
        return [s for dom in DOMAINS for s in self._read_list(dom, "test_kfold")]

    def _load_split(self, split: str) -> list[Sample]:
        from . import splits

        index = self.committed_index()
        filename = f"{split}.txt"
        if filename not in index.get("files", {}):
            if split not in SPLIT_FILES:
                raise DataError(f"pacs: no committed {filename} in {self.splits_dir}: the {split!r} part exists only "
                                "with the committed testbed split (adu_core/splits/pacs)")
            self.require_dir()
            for dom in DOMAINS:
                self.require_subdir(self.image_dir / dom, f"domain {dom!r}")
            return [s for dom in DOMAINS for s in self._read_list(dom, SPLIT_FILES[split])]
        chosen = self._parse(splits.read_checked(self.splits_dir, filename, index), str(self.splits_dir / filename))
        copy = set(self.official_samples())
        missing = [s for s in chosen if s not in copy]
        if missing:
            raise DataError(f"{self.splits_dir / filename} lists {len(missing)} image(s) that are not in your copy of "
                            f"pacs (first: {missing[0].path}); your copy differs from the one the split was made "
                            "from: run `adu data verify pacs`")
        return chosen

    def _manifest_extra(self) -> bytes | None:
        # Per-file content hashes are cheap here when the copy ships MANIFEST.sha256 (the shared one does).
        manifest = self.dir / "MANIFEST.sha256"
        if not manifest.is_file():
            return None
        digests = read_manifest(manifest)
        paths = sorted({s.path for split in ("train", "test") for s in self.samples(split)})
        return "".join(f"{digests.get(p, '-')} {p}\n" for p in paths).encode()

    # --- verification -----------------------------------------------------------------------------------------------
    def _verify_layout(self, report: VerifyReport) -> None:
        for dom in DOMAINS:
            if not (self.image_dir / dom).is_dir():
                report.problem(f"domain folder {self.image_dir / dom} is missing")
        if not (self.dir / "splits").is_dir():
            report.problem(f"split folder {self.dir / 'splits'} is missing")

    def _verify_expected(self, report: VerifyReport, by_split: dict[str, list[Sample]]) -> None:
        self._verify_on_disk(report)
        self._verify_parts(report, by_split)
        for fix in sorted(self.label_fixes):
            report.notes.append(f"label taken from the class folder, not the list: {fix}")

    def _verify_on_disk(self, report: VerifyReport) -> None:
        index = self.committed_index()
        official = index.get("source_lists", {})
        for dom in DOMAINS:
            on_disk = count_by_class_dir(self.image_dir / dom)
            want = dict(zip(CLASSES, self.expected[dom], strict=True))
            bad = [f"{c} {on_disk.get(c, 0)} (expected {n})" for c, n in want.items() if on_disk.get(c, 0) != n]
            extra = sorted(set(on_disk) - set(CLASSES))
            if bad:
                report.problem(f"{dom}: image counts differ from the expected table: {', '.join(bad)}")
            if extra:
                report.problem(f"{dom}: unexpected class folders {', '.join(extra)} in {self.image_dir / dom}")
            report.counts.setdefault(dom, {})["images"] = sum(on_disk.values())
            try:
                whole = Counter(s.label for s in self._read_list(dom, "test_kfold"))
            except DataError as err:
                report.problem(str(err))
                continue
            if tuple(whole.get(i, 0) for i in range(len(CLASSES))) != tuple(self.expected[dom]):
                report.problem(f"{self._split_file(dom, 'test_kfold')} does not list the whole domain")
            for kind in ("train_kfold", "crossval_kfold", "test_kfold"):
                name = f"{dom}_{kind}.txt"
                want_sha = official.get(name)
                path = self._split_file(dom, kind)
                if want_sha and path.is_file() and _normalized_sha(path) != want_sha:
                    report.problem(f"{path} differs from the official kfold list (normalised sha256 mismatch); the "
                                   "committed few-shot files may not apply to this copy")
        total = sum(sum(v) for v in self.expected.values())
        report.notes.append(f"per-class counts checked against the expected table ({total:,} images)")

    def _verify_parts(self, report: VerifyReport, by_split: dict[str, list[Sample]]) -> None:
        """The testbed parts: pretrain, train and test are disjoint and together hold the whole copy."""
        if "pretrain.txt" not in self.committed_index().get("files", {}):
            return
        try:
            pretrain = self.samples("pretrain")
        except DataError as err:
            report.problem(str(err))
            return
        for s in pretrain:
            report.counts.setdefault(s.domain, {}).setdefault("pretrain", 0)
            report.counts[s.domain]["pretrain"] += 1
        downstream = set(by_split["train"]) | set(by_split["test"])
        both = sorted(s.path for s in set(pretrain) & downstream)
        if both:
            report.problem(summarize_paths(both, "images in both the pretrain part and train/test"))
        missing = set(self.official_samples()) - downstream - set(pretrain)
        if missing:
            report.problem(summarize_paths(sorted(s.path for s in missing), "images of the copy in no part"))
        if not both and not missing:
            report.notes.append("pretrain / train / test parts (adu-pacs-v2) are disjoint and cover the copy")

    def _verify_deep(self, report: VerifyReport, by_split: dict[str, list[Sample]]) -> None:
        super()._verify_deep(report, by_split)
        if "pretrain.txt" in self.committed_index().get("files", {}):
            pretrain = {file_digest(self.image_path(s)) for s in self.samples("pretrain")}
            down = {file_digest(self.image_path(s)) for s in [*by_split["train"], *by_split["test"]]}
            shared = len(pretrain & down)
            if shared:
                report.problem(f"{shared} file(s) of the pretrain part have the same bytes as a train/test file")
            else:
                report.notes.append("no pretrain file has the bytes of a train/test file (sha256)")
        manifest = self.dir / "MANIFEST.sha256"
        if not manifest.is_file():
            report.notes.append("no MANIFEST.sha256 in the copy: file contents not hashed")
            return
        bad = [name for name, digest in read_manifest(manifest).items()
               if not (self.dir / name).is_file() or file_digest(self.dir / name) != digest]
        if bad:
            report.problem(summarize_paths(bad, f"files that do not match {manifest}"))
        else:
            report.notes.append(f"every file matches {manifest.name}")

    # --- download ---------------------------------------------------------------------------------------------------
    def install(self, staging: Path, target: Path) -> None:
        """Dassl's zip holds ``pacs/images/<domain>`` and ``pacs/splits``: move domains up to ``pacs/<domain>``."""
        from .download import merge_move

        top = staging / "pacs" if (staging / "pacs").is_dir() else staging
        images = top / "images" if (top / "images").is_dir() else top
        for dom in DOMAINS:
            if not (images / dom).is_dir():
                raise DataError(f"the PACS archive has no {dom}/ folder (looked in {images}); it is not the "
                                "expected file")
            merge_move(images / dom, target / dom)
        if (top / "splits").is_dir():
            merge_move(top / "splits", target / "splits")


def _normalized_sha(path: Path) -> str:
    """sha256 of the non-empty lines, stripped, joined by \\n: immune to CRLF and trailing blanks."""
    import hashlib

    lines = [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]
    return hashlib.sha256(("\n".join(lines) + "\n").encode()).hexdigest()
