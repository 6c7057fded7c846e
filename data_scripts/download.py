"""Download, check and verify a dataset: ``python data_scripts/download.py NAME [--root R]`` (= ``adu data download``)."""

import sys

from adu_core.data.cli import main

if __name__ == "__main__":
    sys.exit(main(["download", *sys.argv[1:]]))
