"""Download, check and verify a dataset (= ``adu data download``).

    python data_scripts/download.py NAME [--root R] [--keep-archives]
"""

import sys
from pathlib import Path

try:
    from adu_core.data.cli import main
except ModuleNotFoundError:  # a plain clone without `pip install -e .`: the package sits one folder up
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from adu_core.data.cli import main

if __name__ == "__main__":
    sys.exit(main(["download", *sys.argv[1:]]))
