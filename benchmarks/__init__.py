"""Speed and memory benchmarks of the library (``adu_core``): they import it, and it never imports them.

Run from the repository root: ``python -m benchmarks.bench --help`` (training and evaluation throughput against a
naive reference loop), ``python -m benchmarks.memory``, ``python -m benchmarks.multirun_throughput``,
``python -m benchmarks.multirun_equivalence``; ``bash benchmarks/gpu_check.sh`` runs them all on a GPU.
"""
