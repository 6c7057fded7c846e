# Set-up cell for every notebook in book/: paste this file's code (from `import` on) as the notebook's FIRST code
# cell and give that cell the tag `hide-cell` (collapsed in the book, still run). On a machine set up with the
# README's install command it only imports; on Colab or Binder without the package it clones the repository (the
# notebooks need its committed results, paper numbers and testbed model, not only the library) and installs it in
# editable mode. Forks: change REPOSITORY together with `repository.url` in _config.yml (a test compares them);
# ADU_REPOSITORY_URL overrides it for one session (tests/test_paper_tier_colab.py clones a local copy that way).
# On Colab everything under the VM's home (the clone, its results/, data, weights) is lost with the VM: with Google
# Drive mounted at /content/drive, new runs go to MyDrive/adu-results/<tier> instead (ADU_RESULTS_DIR); a page's
# `results_root` parameter overrides that folder.
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
        url = os.environ.get("ADU_REPOSITORY_URL") or REPOSITORY
        subprocess.check_call(["git", "clone", "--depth", "1", url, str(checkout)])
    subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet", "-e", f"{checkout}[book]"])
    os.environ["ADU_PROJECT_ROOT"] = str(checkout)  # results and models live in the clone, not the cwd
    sys.path.insert(0, str(checkout))
    importlib.invalidate_caches()
    import adu_book  # noqa: F401
if "google.colab" in sys.modules:  # Colab forgets its VM: keep results on Drive
    drive = Path(os.environ.get("ADU_COLAB_DRIVE", "/content/drive/MyDrive"))
    if drive.is_dir() and not os.environ.get("ADU_RESULTS_DIR"):
        os.environ["ADU_RESULTS_DIR"] = str(drive / "adu-results")
    print(f"Colab: new runs are written to {os.environ['ADU_RESULTS_DIR']}/<tier>" if drive.is_dir() else
          "Colab: results, data and weights vanish with this VM. To keep the runs, mount Drive first "
          "(from google.colab import drive; drive.mount('/content/drive')) and rerun this cell, or set the "
          "parameter results_root to a folder under /content/drive/MyDrive")
