# Set-up cell for every notebook in book/: paste this file's code (from `import` on) as the notebook's FIRST code
# cell and give that cell the tag `hide-cell` (collapsed in the book, still run). On a machine set up with the
# README's install command it only imports; on Colab or Binder without the package it clones the repository (the
# notebooks need its committed results, paper numbers and testbed model, not only the library) and installs it in
# editable mode. Forks: change REPOSITORY together with `repository.url` in _config.yml (a test compares them).
import importlib
import os
import subprocess
import sys
from pathlib import Path

try:
    import adu_book  # noqa: F401  (the book's engine; it comes with the library, adu_core)
except ImportError:
    REPOSITORY = "https://github.com/adu-companion/adu-companion"
    checkout = Path.home() / "adu-companion"
    if not (checkout / "adu_core").is_dir():
        subprocess.check_call(["git", "clone", "--depth", "1", REPOSITORY, str(checkout)])
    subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet", "-e", f"{checkout}[book]"])
    os.environ["ADU_PROJECT_ROOT"] = str(checkout)  # results and models live in the clone, not the cwd
    sys.path.insert(0, str(checkout))
    importlib.invalidate_caches()
    import adu_book  # noqa: F401
