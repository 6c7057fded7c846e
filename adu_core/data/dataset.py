"""The dataset base class: the contract the trainer, the evaluator and the CLI rely on.

A dataset knows its domains and classes without any files, and reads its file lists lazily, so
``get_dataset("office_home").classnames`` works before anything is downloaded, and a missing folder is reported when
samples are first asked for, naming the folder and the command that fixes it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from PIL import Image

from . import locations, splits
from .base import DataError, Sample, canonical_id
from .verify import VerifyReport, decode_check, file_digest, missing_files, split_counts, summarize_paths

if TYPE_CHECKING:
    from .download import Resource

log = logging.getLogger(__name__)

SPLITS = ("train", "test")
_DIGESTS: dict[tuple[str, int, int], str] = {}


class Dataset:
    """Base class. Subclasses set the class attributes and implement :meth:`_load_split`."""

    name: ClassVar[str] = ""
    folder: ClassVar[str] = ""  # sub-folder of the data root
    domains: tuple[str, ...] = ()  # canonical lower_snake ids
    domain_names: tuple[str, ...] = ()  # human text for prompts and plots
    classnames: tuple[str, ...] = ()  # prompt-ready text, label order
    domain_aliases: ClassVar[dict[str, str]] = {}  # extra accepted spellings -> domain id
    on_disk: ClassVar[bool] = True
    resources: ClassVar[tuple[Resource, ...]] = ()
    homepage: ClassVar[str] = ""
    download_note: ClassVar[str] = ""  # printed by `adu data download NAME`
    splits_dir: Path | None = None  # committed split files; default adu_core/splits/<name>
    extra_splits: ClassVar[tuple[str, ...]] = ()  # splits beyond train/test (PACS: "pretrain", the testbed CLIP's)
    # The split protocol: an id for run.json, what it is in words, and whether it is the paper authors' own
    # (their released code, PAPER.md §8). Datasets whose protocol depends on the copy's layout override protocol_info.
    protocol: ClassVar[str] = ""
    protocol_note: ClassVar[str] = ""
    authors_protocol: ClassVar[bool] = False

    def __init__(self, root: str | os.PathLike[str] | None = None, cache_dir: str | os.PathLike[str] | None = None):
        self.data_root = locations.data_root(root)
        # Where the root came from, for error messages: an argument, $ADU_DATA_ROOT, or the default cache folder.
        self.root_origin = ("argument" if root is not None and str(root) != "" else
                            "env" if os.environ.get(locations.DATA_ROOT_ENV) else "default")
        self.cache_dir = locations.cache_dir(cache_dir)
        self._splits: dict[str, list[Sample]] = {}
        self._few: dict[tuple[int, int], list[Sample]] = {}
        self._manifest: str | None = None
        if self.splits_dir is None:
            self.splits_dir = splits.PACKAGE_SPLITS / self.name

    def __repr__(self) -> str:
        where = f" at {self.dir}" if self.on_disk else ""
        return (f"<{type(self).__name__} {self.name!r}{where}: {len(self.domains)} domains, "
                f"{len(self.classnames)} classes>")

    # --- locations ------------------------------------------------------------------------------------------------
    @property
    def dir(self) -> Path:
        """The dataset's folder: ``<root>/<folder>``, or the root itself when it already is that folder."""
        candidate = self.data_root / self.folder
        if not candidate.is_dir() and self._looks_like_dataset_dir(self.data_root):
            return self.data_root
        return candidate

    def _looks_like_dataset_dir(self, path: Path) -> bool:
        return False

    def require_dir(self) -> Path:
        folder = self.dir
        if not folder.is_dir():
            origin = {"argument": " (as given)", "env": f" (from ${locations.DATA_ROOT_ENV})",
                      "default": " (the default: neither --data-root nor $ADU_DATA_ROOT was given)"}[self.root_origin]
            raise DataError(f"{self.name}: folder {folder} does not exist; data root is {self.data_root}{origin}. "
                            f"Run `adu data download {self.name}`, or point ${locations.DATA_ROOT_ENV} (or the "
                            f"--data-root option) at the folder that holds {self.folder}/")
        return folder

    def require_subdir(self, path: Path, what: str) -> Path:
        if not path.is_dir():
            raise DataError(f"{self.name}: {what} folder {path} is missing; the copy is incomplete. "
                            f"Run `adu data download {self.name}` (or restore the folder), then "
                            f"`adu data verify {self.name}`")
        return path

    def image_path(self, sample: Sample) -> Path:
        return self.dir / sample.path

    # --- layout and protocol --------------------------------------------------------------------------------------
    @property
    def layout(self) -> str:
        """The on-disk layout of this copy, for datasets that read more than one (Office-Home: ``original`` or
        ``dassl``; ImageNet: ``torchvision`` or ``coop``); ``standard`` where there is one."""
        return "standard"

    def layout_note(self) -> str:
        """The layout in words: which folders are read (relative to the data root), read in place."""
        return self.layout

    def protocol_info(self) -> dict[str, Any]:
        """``{"id", "note", "authors"}``: the split protocol a run on this copy follows (see :attr:`protocol`)."""
        return {"id": self.protocol or "standard", "note": self.protocol_note, "authors": self.authors_protocol}

    def data_record(self, test_images: int | None = None) -> dict[str, Any]:
        """What run.json keeps under ``"data"``: layout, protocol and test-set size (``test_images``: the images a run
        evaluated, after any cap; the split's own size is ``test_split_images``). Names no folder of the machine."""
        info = self.protocol_info()
        test_split = len(self.samples("test"))
        return {"layout": self.layout, "protocol": info["id"], "authors_protocol": bool(info["authors"]),
                "protocol_note": info["note"], "test_images": test_split if test_images is None else int(test_images),
                "test_split_images": test_split}

    # --- samples ----------------------------------------------------------------------------------------------------
    def _load_split(self, split: str) -> list[Sample]:
        raise NotImplementedError

    def samples(self, split: str) -> list[Sample]:
        """All samples of ``split`` ("train", "test", or one of ``extra_splits``), in a fixed order."""
        if split not in SPLITS + self.extra_splits:
            raise ValueError(f"split must be one of {', '.join(SPLITS + self.extra_splits)}, not {split!r}")
        if split not in self._splits:
            self._splits[split] = self._load_split(split)
        return list(self._splits[split])

    def few_shot(self, shots: int = 8, seed: int = 1) -> list[Sample]:
        """K images per class per domain from the train split (committed file if one exists, else generated)."""
        shots, seed = int(shots), int(seed)
        if shots < 1:
            raise ValueError(f"shots must be >= 1, got {shots}")
        key = (shots, seed)
        if key not in self._few:
            train = self.samples("train")
            chosen = self._committed_few_shot(shots, seed, train)
            if chosen is None:
                chosen = self._generated_few_shot(shots, seed, train)
            self._few[key] = chosen
            splits.report_shortfalls(self.name, self.classnames, shots,
                                     splits.shortfalls(train, shots, self.domains, len(self.classnames)))
        return list(self._few[key])

    def _parse(self, text: str, source: str) -> list[Sample]:
        return splits.parse_samples(text, source, len(self.classnames), self.domains)

    def committed_index(self) -> dict:
        return splits.load_index(self.splits_dir) if self.splits_dir else {"files": {}}

    def _committed_few_shot(self, shots: int, seed: int, train: Sequence[Sample]) -> list[Sample] | None:
        index = self.committed_index()
        filename = splits.fewshot_filename(shots, seed)
        if filename not in index.get("files", {}):
            return None
        source = str(self.splits_dir / filename)
        chosen = self._parse(splits.read_checked(self.splits_dir, filename, index), source)
        splits.check_subset(chosen, train, source, self.name)
        return chosen

    def _generated_few_shot(self, shots: int, seed: int, train: Sequence[Sample]) -> list[Sample]:
        def make() -> list[Sample]:
            return splits.sample_few_shot(train, shots, seed, self.name, self.domains, len(self.classnames))

        if not self.on_disk:
            return make()

        def parse(text: str, source: str) -> list[Sample]:
            chosen = self._parse(text, source)
            splits.check_subset(chosen, train, source, self.name)
            return chosen

        folder = self.cache_dir / "splits" / self.name / splits.samples_sha256(train)[:16]
        return splits.cached_split(folder, splits.fewshot_filename(shots, seed), make, parse)

    # --- images -----------------------------------------------------------------------------------------------------
    def open_image(self, sample: Sample) -> Image.Image:
        """The image as RGB; a missing or undecodable file raises :class:`DataError` naming it and the fix."""
        path = self.image_path(sample)
        try:
            with Image.open(path) as im:
                return im.convert("RGB")
        except FileNotFoundError:
            raise DataError(f"image not found: {path} ({self.name}, domain {sample.domain}). The copy is incomplete: "
                            f"run `adu data verify {self.name}`, then `adu data download {self.name}`") from None
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
            raise DataError(f"cannot decode image {path}: {err}. The file is corrupt: delete it and restore it "
                            f"(`adu data download {self.name}` or your own archive), then "
                            f"`adu data verify {self.name}`") from None

    def fingerprint(self, sample: Sample, mode: str = "content") -> str:
        """Identity of one image's bytes for cache keys: sha256 of the file ("content") or size+mtime ("stat")."""
        path = self.image_path(sample)
        try:
            if mode == "content":
                st = path.stat()
                memo = (str(path), st.st_size, st.st_mtime_ns)  # a grid hashes each file once per process
                if memo not in _DIGESTS:
                    _DIGESTS[memo] = file_digest(path)
                return _DIGESTS[memo]
            if mode == "stat":
                st = path.stat()
                return f"{st.st_size}-{st.st_mtime_ns}"
        except FileNotFoundError:
            raise DataError(f"image not found: {path}; run `adu data verify {self.name}`") from None
        raise ValueError(f"fingerprint mode must be 'content' or 'stat', not {mode!r}")

    # --- identity ---------------------------------------------------------------------------------------------------
    def manifest_sha256(self) -> str:
        """sha256 of the file lists of both splits (+ per-file content hashes where the copy ships them)."""
        if self._manifest is None:
            h = hashlib.sha256(f"adu-manifest-v1\n{self.name}\n".encode())
            for split in SPLITS:
                h.update(f"[{split}]\n".encode())
                h.update(splits.format_samples(self.samples(split)).encode())
            extra = self._manifest_extra()
            if extra:
                h.update(b"[files]\n" + extra)
            self._manifest = h.hexdigest()
        return self._manifest

    def _manifest_extra(self) -> bytes | None:
        return None

    # --- domains ----------------------------------------------------------------------------------------------------
    def check_domains(self, names: str | Iterable[str]) -> tuple[str, ...]:
        """Canonical domain ids for user spellings ("Real World", "real-world", "real_world"); order kept, no repeats.

        A string may hold several names separated by commas ("clipart,sketch"); empty parts are ignored. Unknown
        names raise :class:`DataError` listing the valid ones.
        """
        items = [names] if isinstance(names, str) else list(names)
        names = [part for item in items
                 for part in (re.split(r"[,+]", item) if isinstance(item, str) else [item])
                 if not isinstance(part, str) or part.strip()]
        lookup: dict[str, str] = {}
        for dom, text in zip(self.domains, self.domain_names, strict=True):
            lookup[canonical_id(text)] = dom
            lookup[canonical_id(dom)] = dom
        for alias, dom in self.domain_aliases.items():
            lookup.setdefault(canonical_id(alias), dom)
        out: list[str] = []
        for name in names:
            dom = lookup.get(canonical_id(name)) if isinstance(name, str) else None
            if dom is None:
                raise DataError(f"unknown domain {name!r} for {self.name}; valid: {', '.join(self.domains)}")
            if dom not in out:
                out.append(dom)
        return tuple(out)

    # --- verification -----------------------------------------------------------------------------------------------
    def verify(self, deep: bool = False) -> VerifyReport:
        """Check the copy without writing anything: folders, lists, files, per-class counts, committed splits.

        ``deep`` also decodes every image and checks content hashes where the dataset knows them.
        """
        report = VerifyReport(self.name, self.dir if self.on_disk else Path("<in-process>"))
        if self.on_disk and self.dir.is_dir():
            report.layout = self.layout_note()
            info = self.protocol_info()
            if info["note"]:
                report.notes.append(f"protocol {info['id']}: {info['note']}")
        if self.on_disk and not self.dir.is_dir():
            report.problem(f"folder {self.dir} is missing: run `adu data download {self.name}` or point "
                           f"${locations.DATA_ROOT_ENV} at the folder that holds {self.folder}/")
            return report
        self._verify_layout(report)
        try:
            by_split = {split: self.samples(split) for split in SPLITS}
        except DataError as err:
            report.problem(str(err))
            self._verify_on_disk(report)  # what the folders hold still says how the copy differs
            return report
        report.counts = split_counts(self.domains, by_split)
        overlap = set(by_split["train"]) & set(by_split["test"])
        if overlap:
            report.problem(summarize_paths(sorted(s.path for s in overlap), "images in both train and test"))
        if self.on_disk:
            missing = missing_files(self.dir, [*by_split["train"], *by_split["test"]], self.image_path)
            if missing:
                report.problem(summarize_paths(missing, f"listed images missing under {self.dir}"))
        empty = splits.shortfalls(by_split["train"], 1, self.domains, len(self.classnames))
        if empty:
            report.notes.append(f"{len(empty)} (domain, class) cell(s) have no train image: "
                                + ", ".join(f"{d}/{self.classnames[c]}" for d, c, _ in empty[:8]))
        self._verify_expected(report, by_split)
        self._verify_committed(report, by_split["train"])
        if deep:
            self._verify_deep(report, by_split)
        return report

    def _verify_layout(self, report: VerifyReport) -> None:
        """Dataset-specific folder checks (each missing folder named)."""

    def _verify_on_disk(self, report: VerifyReport) -> None:
        """Checks of the folders alone (per-class image counts), also run when the split lists do not load."""

    def _verify_expected(self, report: VerifyReport, by_split: dict[str, list[Sample]]) -> None:
        """Dataset-specific checks against the expected per-domain/per-class table."""

    def _verify_committed(self, report: VerifyReport, train: Sequence[Sample]) -> None:
        index = self.committed_index()
        files = index.get("files", {})
        n_ok = 0
        for filename, entry in sorted(files.items()):
            try:
                text = splits.read_checked(self.splits_dir, filename, index)
                chosen = self._parse(text, str(self.splits_dir / filename))
                if entry.get("kind") == "few_shot":
                    splits.check_subset(chosen, train, str(self.splits_dir / filename), self.name)
                n_ok += 1
            except DataError as err:
                report.problem(str(err))
        if files:
            report.notes.append(f"{n_ok}/{len(files)} committed split files valid (sha256 + membership)")

    def _verify_deep(self, report: VerifyReport, by_split: dict[str, list[Sample]]) -> None:
        if not self.on_disk:
            return
        bad = []
        for s in [*by_split["train"], *by_split["test"]]:
            reason = decode_check(self.image_path(s))
            if reason and reason != "missing":
                bad.append(f"{s.path} ({reason})")
        if bad:
            report.problem(summarize_paths(bad, "images that do not decode"))
        else:
            report.notes.append("every listed image decodes")

    # --- download hooks -----------------------------------------------------------------------------------------------
    def post_download(self) -> list[str]:
        """Local preparation after the resources are installed (e.g. unpacking user-supplied archives)."""
        return []

    def install(self, staging: Path, target: Path) -> None:
        """Move what the archives extracted (``staging``) into the dataset folder ``target`` (default: as is)."""
        from .download import merge_move

        merge_move(staging, target)
