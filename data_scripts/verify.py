"""Verify a dataset copy: ``python data_scripts/verify.py NAME [--root R] [--deep]`` (= ``adu data verify``)."""

import sys
from pathlib import Path

try:
    from adu_core.data.cli import main
except ModuleNotFoundError:  # a plain clone without `pip install -e .`: the package sits one folder up
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from adu_core.data.cli import main

if __name__ == "__main__":
    sys.exit(main(["verify", *sys.argv[1:]]))
