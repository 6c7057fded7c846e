"""Verify a dataset copy: ``python data_scripts/verify.py NAME [--root R] [--deep]`` (= ``adu data verify``)."""

import sys

from adu_core.data.cli import main

if __name__ == "__main__":
    sys.exit(main(["verify", *sys.argv[1:]]))
