# Set-up cell for every notebook in book/: paste this file's code (from `import` on) as the notebook's FIRST code
# cell and give that cell the tag `hide-cell` (collapsed in the book, still run). On a machine set up with the
# README's install command it only imports; on Colab or Binder without the package it installs it from the
# repository first. Forks: change the URL below together with `repository.url` in _config.yml (a test compares them).
import importlib
import subprocess
import sys

try:
    from adu_core.paths import project_root, results_dir  # noqa: F401  (used by the notebook's later cells)
except ImportError:
    ADU_INSTALL = "adu-core[book] @ git+https://github.com/adu-companion/adu-companion"
    subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet", ADU_INSTALL])
    importlib.invalidate_caches()
    from adu_core.paths import project_root, results_dir  # noqa: F401
