"""book/paper_numbers.csv against cells typed here independently from the paper's tables (PAPER.md, section 3).

The values below were typed from the paper's printed tables, not copied from the CSV, so a slip in either shows up.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from adu_book.paper import PAPER_CSV_COLUMNS, load_paper_numbers
from adu_core.metrics import h_score

CSV = Path(__file__).resolve().parents[1] / "book" / "paper_numbers.csv"

# (table, dataset, n_forget, method, switches, metric) -> value as printed
CELLS = [
    (1, "office_home", 1, "lp++", {}, "mem", 85.06),
    (1, "imagenet", 1, "bbf", {}, "mem", 35.92),
    (1, "imagenet", 1, "adu", {}, "for", 96.73),
    (1, "mini_domainnet", 2, "bbf", {}, "h", 47.95),
    (1, "office_home", 3, "baseline", {}, "h", 59.47),
    (1, "office_home", 2, "clipfit", {}, "for", 26.74),
    (2, "office_home", 2, "adu", {"ddl": False, "instapg": True}, "for", 48.60),
    (2, "mini_domainnet", 1, "adu", {"ddl": True, "instapg": False}, "mem", 78.00),
    (2, "mini_domainnet", 3, "adu", {"ddl": False, "instapg": True}, "h", 74.17),
    (3, "office_home", 1, "adu", {"ddl_ce": False, "ddl_mmd": True}, "h", 68.62),
    (3, "office_home", 1, "adu", {"ddl_ce": True, "ddl_mmd": False}, "for", 53.62),
    (4, "office_home", 1, "zeroshot", {}, "domain_acc", 25.80),
    (4, "office_home", 1, "adu", {}, "domain_acc", 79.43),
]

# Table 1, H column, as printed: {(dataset, n_forget): (LP++, CLIPFit, BBF, Baseline, Ours)}
TABLE1_H = {
    ("imagenet", 1): (50.69, 71.31, 45.56, 74.66, 77.02),
    ("office_home", 1): (30.46, 43.44, 31.25, 52.59, 69.96),
    ("office_home", 2): (31.11, 40.53, 32.54, 54.19, 73.58),
    ("office_home", 3): (33.57, 50.02, 39.60, 59.47, 75.89),
    ("mini_domainnet", 1): (31.73, 53.56, 32.12, 62.07, 75.56),
    ("mini_domainnet", 2): (32.21, 51.35, 47.95, 61.97, 77.03),
    ("mini_domainnet", 3): (34.73, 52.88, 39.29, 68.82, 79.00),
}
TABLE1_METHODS = ("lp++", "clipfit", "bbf", "baseline", "adu")


@pytest.fixture(scope="module")
def paper():
    return load_paper_numbers(CSV)


def select(paper, table, dataset, n_forget, method, switches, metric):
    rows = paper[(paper["table"] == table) & (paper["dataset"] == dataset) & (paper["n_forget"] == n_forget)
                 & (paper["method"] == method) & (paper["metric"] == metric)]
    for name, value in switches.items():
        rows = rows[rows[name].fillna(not value) == value]
    return rows


def test_schema(paper):
    with CSV.open(newline="") as f:
        header = next(csv.reader(f))
    assert tuple(header) == PAPER_CSV_COLUMNS
    assert set(paper["table"]) == {1, 2, 3, 4}
    assert set(paper["metric"]) == {"h", "mem", "for", "domain_acc"}
    assert set(paper["n_forget"]) == {1, 2, 3}
    assert paper["value"].between(0, 100).all()
    assert (paper["source"] != "").all(), "every number names its source"
    # one number per cell: no duplicated (table, dataset, n_forget, forget, method, switches, metric)
    key = ["table", "dataset", "n_forget", "forget", "method", "instapg", "ddl", "ddl_ce", "ddl_mmd", "metric"]
    assert not paper.duplicated(key).any()
    # sizes: Table 1 = ImageNet 5 methods x 3 metrics + 2 datasets x 3 sizes x 5 methods x 3 metrics
    counts = paper.groupby("table").size().to_dict()
    assert counts == {1: 15 + 90, 2: 2 * 4 * 9, 3: 4 * 3, 4: 3}
    assert set(paper.loc[paper["dataset"] == "imagenet", "n_forget"]) == {1}, "ImageNet has |D_forget| = 1 only"


def test_values_as_printed_keep_two_decimals():
    with CSV.open(newline="") as f:
        values = [row["value"] for row in csv.DictReader(f)]
    assert all(len(v.split(".")[1]) == 2 for v in values), "values are kept exactly as printed (2 decimals)"


@pytest.mark.parametrize("table,dataset,n_forget,method,switches,metric,value", CELLS)
def test_independently_typed_cells(paper, table, dataset, n_forget, method, switches, metric, value):
    rows = select(paper, table, dataset, n_forget, method, switches, metric)
    assert len(rows) == 1, rows
    assert rows["value"].iloc[0] == pytest.approx(value, abs=1e-9)


def test_table1_vs_table2_mismatch_is_kept_and_flagged(paper):
    t1 = select(paper, 1, "mini_domainnet", 3, "adu", {}, "h")
    t2 = select(paper, 2, "mini_domainnet", 3, "adu", {"ddl": True, "instapg": True}, "h")
    assert t1["value"].iloc[0] == pytest.approx(79.00)
    assert t2["value"].iloc[0] == pytest.approx(81.78)
    for metric, v1, v2 in (("mem", 75.00, 77.96), ("for", 83.94, 86.12)):
        assert select(paper, 1, "mini_domainnet", 3, "adu", {}, metric)["value"].iloc[0] == pytest.approx(v1)
        assert select(paper, 2, "mini_domainnet", 3, "adu", {"ddl": True, "instapg": True},
                      metric)["value"].iloc[0] == pytest.approx(v2)
    flagged = paper[paper["flag"] != ""]
    assert set(flagged["flag"]) == {"t1_t2_mismatch"}
    assert set(zip(flagged["table"], flagged["dataset"], flagged["n_forget"], flagged["method"], strict=True)) == {
        (1, "mini_domainnet", 3, "adu"), (2, "mini_domainnet", 3, "adu")}
    assert len(flagged) == 6 and (flagged["note"] != "").all()


def test_table2_matches_table1_everywhere_else(paper):
    """The (-, -) row is the Baseline and the (DDL, InstaPG) row is Ours: equal to Table 1 except the flagged cell."""
    t1 = paper[paper["table"] == 1].set_index(["dataset", "n_forget", "method", "metric"])["value"]
    t2 = paper[(paper["table"] == 2) & (paper["flag"] == "")]
    checked = 0
    for _, row in t2.iterrows():
        if row["ddl"] == row["instapg"]:
            method = "adu" if row["ddl"] else "baseline"
            assert t1[(row["dataset"], row["n_forget"], method, row["metric"])] == row["value"]
            checked += 1
    assert checked == 2 * 3 * 3 * 2 - 3  # 2 datasets x 3 sizes x 3 metrics x 2 rows, minus the flagged cell


def test_table1_h_is_the_printed_value_not_recomputed(paper):
    """Every Table 1 H equals the printed H, and H is not recomputed from the row's mean Mem and For."""
    t1 = paper[paper["table"] == 1]
    assert len(t1[t1["metric"] == "h"]) == sum(len(v) for v in TABLE1_H.values())
    recomputed_differs = 0
    for (dataset, n_forget), values in TABLE1_H.items():
        for method, h in zip(TABLE1_METHODS, values, strict=True):
            cell = t1[(t1["dataset"] == dataset) & (t1["n_forget"] == n_forget) & (t1["method"] == method)]
            got = cell.set_index("metric")["value"]
            assert got["h"] == pytest.approx(h, abs=1e-9), (dataset, n_forget, method)
            if abs(h_score(got["mem"], got["for"]) - got["h"]) > 0.01:
                recomputed_differs += 1
    # the paper averages H over runs, so most printed H differ from H(mean Mem, mean For), e.g. OH |Df|=3 Baseline
    assert recomputed_differs > len(TABLE1_METHODS)
    oh3 = t1[(t1["dataset"] == "office_home") & (t1["n_forget"] == 3) & (t1["method"] == "baseline")]
    vals = oh3.set_index("metric")["value"]
    assert h_score(vals["mem"], vals["for"]) == pytest.approx(60.89, abs=0.01)
    assert vals["h"] == pytest.approx(59.47)


def test_switches(paper):
    t1 = paper[paper["table"] == 1]
    adu = t1[t1["method"] == "adu"]
    assert adu["ddl"].all() and adu["instapg"].all()
    base = t1[t1["method"] == "baseline"]
    assert (~base["ddl"]).all() and (~base["instapg"]).all()
    others = t1[t1["method"].isin(["lp++", "clipfit", "bbf"])]
    assert others["ddl"].isna().all(), "switches do not apply to other methods"
    t3 = paper[paper["table"] == 3]
    assert t3["instapg"].all(), "Table 3 is run with InstaPG on"
    t4 = paper[paper["table"] == 4]
    assert set(t4["forget"]) == {"art"}
