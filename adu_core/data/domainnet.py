"""DomainNet (Peng et al., ICCV 2019; cleaned release) and Mini DomainNet (Zhou et al., DAEL; Dassl ``splits_mini``).

Both live in one folder, as in Dassl, so the four shared domain archives are downloaded once::

    domainnet/<domain>/<class>/<file>.jpg
    domainnet/splits/<domain>_{train,test}.txt        official cleaned lists  (DomainNet)
    domainnet/splits_mini/<domain>_{train,test}.txt   Dassl's mini lists       (Mini DomainNet)

Train/test: the official lists (DomainNet) and Dassl's ``splits_mini`` lists (Mini DomainNet). Few-shot files are
generated at first use from the user's lists (they are not on this project's machines; DomainNet's lists are
md5-checked, so every copy yields the same files) and kept in the cache dir with their sha256.

Checksums: the six image archives and twelve list files have real md5 sums (and sizes), as recorded by Mila's datalad
mirror of the cleaned release (github.com/datasets-mila/datasets--domainnet, ``md5sums``); ten of the lists were
also checked against copies in public repositories. ``splits_mini.zip`` (Dassl's Google Drive) has none published:
trust-on-first-use.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from .base import DataError, Sample, read_split_list
from .dataset import Dataset
from .download import Resource
from .splits import PACKAGE_SPLITS
from .verify import VerifyReport

_BASE = "http://csr.bu.edu/ftp/visda/2019/multi-source"
_SOURCE = "md5 + size from datasets-mila/datasets--domainnet (git-annex MD5E keys)"
ZIPS = {
    "clipart": Resource("clipart.zip", (f"{_BASE}/groundtruth/clipart.zip",), md5="cd0d8f2d77a4e181449b78ed62bccf1e",
                        size=1270909081, checksum_source=_SOURCE),
    "infograph": Resource("infograph.zip", (f"{_BASE}/infograph.zip",), md5="720380b86f9e6ab4805bb38b6bd135f8",
                          size=4338659804, checksum_source=_SOURCE),
    "painting": Resource("painting.zip", (f"{_BASE}/groundtruth/painting.zip",),
                         md5="1ae32cdb4f98fe7ab5eb0a351768abfd", size=3679366174, checksum_source=_SOURCE),
    "quickdraw": Resource("quickdraw.zip", (f"{_BASE}/quickdraw.zip",), md5="bdc1b6f09f277da1a263389efe0c7a66",
                          size=459920701, checksum_source=_SOURCE),
    "real": Resource("real.zip", (f"{_BASE}/real.zip",), md5="dcc47055e8935767784b7162e7c7cca6", size=6062039589,
                     checksum_source=_SOURCE),
    "sketch": Resource("sketch.zip", (f"{_BASE}/sketch.zip",), md5="658d8009644040ff7ce30bb2e820850f",
                       size=2633992926, checksum_source=_SOURCE),
}
# (md5, size, lines) of the official cleaned lists; lines None where no copy could be counted here.
LISTS = {
    "clipart_train": ("b4349693a7f9c05c53955725c47ed6cb", 1443819, 33525),
    "clipart_test": ("f5ddbcfd657a3acf9d0f7da10db22565", 628917, 14604),
    "infograph_train": ("379b50054f4ac2018dca4f89421b92d9", 1683098, 36023),
    "infograph_test": ("779626b50869edffe8ea6941c3755c71", 728028, 15582),
    "painting_train": ("7db0e7ca73ad9982f6e1f7f3ef372c0a", 2241901, 50416),
    "painting_test": ("232b35dc53f26d414686ae579e38d9b5", 971888, 21850),
    "quickdraw_train": ("b732ced3939ac8efdd8c0a889dca56cc", 5164600, None),
    "quickdraw_test": ("c1a828fdfe216fb109f1c0083a252c6f", 2213400, 51750),
    "real_train": ("8ebf02c2075fadd564705f0dc7cd6291", 4440944, None),
    "real_test": ("6098816791c3ebed543c71ffa11b9054", 1911327, 52041),
    "sketch_train": ("1233bd18aa9a8a200bf4cecf1c34ef3e", 1960222, 48212),
    "sketch_test": ("d8a222e4672cfd585298aa14d02ea441", 850581, 20916),
}
LIST_RESOURCES = tuple(
    Resource(f"domainnet_{name}.txt", (f"{_BASE}/domainnet/txt/{name}.txt",), md5=md5, size=size, kind="file",
             target=f"splits/{name}.txt", checksum_source=_SOURCE)
    for name, (md5, size, _) in LISTS.items())


def _read_classes(name: str) -> tuple[str, ...]:
    return tuple((PACKAGE_SPLITS / name / "classes.txt").read_text().split())


def _prompt(folder: str) -> str:
    return folder.replace("_", " ").replace("-", " ")


class DomainNet(Dataset):
    name = "domainnet"
    protocol = "domainnet-official"
    protocol_note = "the official cleaned lists <domain>_{train,test}.txt: pool = train, test = test"
    folder = "domainnet"
    domains = ("clipart", "infograph", "painting", "quickdraw", "real", "sketch")
    domain_names = domains
    class_dirs: tuple[str, ...] = _read_classes("domainnet")  # official label order
    classnames = tuple(_prompt(c) for c in class_dirs)
    list_dir = "splits"
    official_lists = LISTS  # (md5, size, lines) per "<domain>_<split>"
    relabel_by_name = False  # official lists: the label in the file must match the class folder
    homepage = "http://ai.bu.edu/M3SDA/"
    resources = (*ZIPS.values(), *LIST_RESOURCES)
    download_note = ("DomainNet (cleaned release, about 18 GB of archives) from csr.bu.edu, md5-checked. "
                     "Research use only; see the homepage for terms.")

    def _looks_like_dataset_dir(self, path: Path) -> bool:
        return (path / self.list_dir).is_dir() and (path / self.domains[0]).is_dir()

    def list_path(self, domain: str, split: str) -> Path:
        return self.dir / self.list_dir / f"{domain}_{split}.txt"

    def _read_list(self, domain: str, split: str) -> list[Sample]:
        path = self.list_path(domain, split)
        if not path.is_file():
            raise DataError(f"{self.name}: split list {path} is missing; run `adu data download {self.name}`")
        out = []
        for lineno, listed, sample in read_split_list(path, domain, self.class_dirs):
            if not self.relabel_by_name and listed != sample.label:
                raise DataError(f"{path}:{lineno}: label {listed} does not match the class folder "
                                f"{self.class_dirs[sample.label]!r} ({sample.label})")
            out.append(sample)
        return out

    def _load_split(self, split: str) -> list[Sample]:
        self.require_dir()
        for dom in self.domains:
            self.require_subdir(self.dir / dom, f"domain {dom!r}")
        return [s for dom in self.domains for s in self._read_list(dom, split)]

    def _verify_layout(self, report: VerifyReport) -> None:
        for dom in self.domains:
            if not (self.dir / dom).is_dir():
                report.problem(f"domain folder {self.dir / dom} is missing")
        if not (self.dir / self.list_dir).is_dir():
            report.problem(f"list folder {self.dir / self.list_dir} is missing")

    def _verify_expected(self, report: VerifyReport, by_split: dict[str, list[Sample]]) -> None:
        for name, (md5, _, lines) in self.official_lists.items():
            dom, split = name.rsplit("_", 1)
            path = self.list_path(dom, split)
            if dom not in self.domains or not path.is_file():
                continue  # already reported by samples()
            actual = hashlib.md5(path.read_bytes()).hexdigest()
            if actual != md5:
                report.problem(f"{path} is not the official cleaned list (md5 {actual}, expected {md5})")
            n = report.counts.get(dom, {}).get(split)
            if lines is not None and n != lines:
                report.problem(f"{dom} {split}: {n} images listed, expected {lines}")
        report.notes.append("list files checked against the official md5 sums")


class MiniDomainNet(DomainNet):
    name = "mini_domainnet"
    protocol = "dassl-splits_mini"
    protocol_note = "Dassl's splits_mini lists (126 classes): pool = <domain>_train, test = <domain>_test, as the authors"
    authors_protocol = True
    domains = ("clipart", "painting", "real", "sketch")
    domain_names = domains
    class_dirs = _read_classes("mini_domainnet")  # Dassl's label order
    classnames = tuple(_prompt(c) for c in class_dirs)
    list_dir = "splits_mini"
    relabel_by_name = True  # labels follow our class list by folder name, whatever numbers the lists carry
    resources = (
        ZIPS["clipart"], ZIPS["painting"], ZIPS["real"], ZIPS["sketch"],
        # Dassl's mini-DomainNet lists (DATASETS.md): no published checksum.
        Resource("splits_mini.zip", ("gdrive:15rrLDCrzyi6ZY-1vJar3u7plgLe4COL7",)),
    )
    download_note = ("Mini DomainNet: four DomainNet archives (md5-checked, about 14 GB) plus Dassl's splits_mini "
                     "lists from Google Drive (checksum recorded on first download: trust-on-first-use).")

    def _verify_expected(self, report: VerifyReport, by_split: dict[str, list[Sample]]) -> None:
        for split, samples in by_split.items():
            for dom in self.domains:
                present = {s.label for s in samples if s.domain == dom}
                if len(present) != len(self.class_dirs):
                    report.problem(f"{self.list_path(dom, split)} covers {len(present)} of {len(self.class_dirs)} "
                                   "classes")
        report.notes.append("splits_mini lists: no published checksum; each domain must cover all 126 classes")
