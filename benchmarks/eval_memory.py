"""Peak memory of a paper-tier ImageNet run's evaluation, on the real code path (``adu_core.train.run_experiment``).

    python -m benchmarks.eval_memory                         # two test-set sizes, each in a fresh process
    python -m benchmarks.eval_memory --val 2 --sketch 10     # one measurement, in this process (one JSON line)
    python -m benchmarks.eval_memory --in-memory ...         # the old path: the decoded test set kept in memory

It fabricates an ImageNet + ImageNet-Sketch folder of the real class count (1000 wnids; ``--val`` images per class
in val/, ``--sketch`` in the Sketch folder, of which 20 % are test) and a random CLIP of ViT-B/16's depth that reads
224 px images (patch 32, width 64: the images, not the model, are what this measures), then runs one paper-tier
ADU run on the CPU (1 shot, 1 epoch, Sketch forgotten) while a thread samples ``/proc/self/status``: RssAnon (the
process's own memory: what exhausts a VM) and RssFile (pages of mapped files, such as the tensor cache: page cache
the kernel can drop). Prints one JSON object per measurement. Linux only (``/proc``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

BYTES_224 = 3 * 224 * 224  # one decoded image


def _status() -> dict[str, int]:
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("RssAnon", "RssFile", "VmHWM"):
            out[key] = int(value.split()[0]) * 1024
    return out


class Sampler(threading.Thread):
    """Peak RssAnon and RssFile while running (every 5 ms)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = _status()
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            now = _status()
            self.peak = {k: max(v, now[k]) for k, v in self.peak.items()}
            time.sleep(0.005)


def fabricate(root: Path, val: int, sketch: int, train: int = 1, px: int = 64) -> None:
    """ImageNet in torchvision's layout under ``root/imagenet`` (1000 wnids), tiny JPEGs of ``px`` pixels."""
    import io

    from PIL import Image

    pictures = []
    for seed in range(32):
        buf = io.BytesIO()
        Image.new("RGB", (px, px), (seed * 7 % 256, seed * 31 % 256, seed * 57 % 256)).save(buf, "JPEG")
        pictures.append(buf.getvalue())
    n = 0
    for c in range(1000):
        wnid = f"n{c:08d}"
        for part, count in (("train", train), ("val", val), ("sketch", sketch)):
            folder = root / "imagenet" / part / wnid
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                (folder / f"{wnid}_{i}.JPEG").write_bytes(pictures[n % len(pictures)])
                n += 1


def checkpoint(path: Path) -> Path:
    import open_clip
    import torch

    from adu_core.backbones import save_checkpoint

    cfg = {"name": "eval-memory-224", "embed_dim": 64, "quick_gelu": False,
           "vision_cfg": {"image_size": 224, "layers": 12, "width": 64, "head_width": 16, "patch_size": 32},
           "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2}}
    torch.manual_seed(0)
    save_checkpoint(open_clip.CLIP(**{k: v for k, v in cfg.items() if k != "name"}), cfg, path, half=False)
    return path


def measure(val: int, sketch: int, workdir: Path, in_memory: bool = False, rebuild: bool = False,
            eval_batch: int = 256) -> dict[str, Any]:
    """One paper-tier run on a fabricated ImageNet; peak memory while it sets up, trains and evaluates."""
    import torch

    from adu_core.config import make_config
    from adu_core.data import tensor_cache
    from adu_core.train import run_experiment

    torch.set_num_threads(1)
    data = workdir / f"data-{val}-{sketch}"
    if not (data / "imagenet").is_dir():
        fabricate(data, val, sketch)
    ckpt = checkpoint(workdir / "clip224.pt")
    os.environ["ADU_CACHE_DIR"] = str(workdir / ("cache-mem" if in_memory else "cache"))
    if rebuild:  # measure the first run, which decodes the test set into the cache
        shutil.rmtree(Path(os.environ["ADU_CACHE_DIR"]) / "tensors", ignore_errors=True)
    if in_memory:  # the path before issue 27: the whole decoded test set in the process's memory
        def in_memory_only(*args, **kwargs):
            raise OSError("benchmark: --in-memory")

        tensor_cache._build = in_memory_only
    cfg = make_config("imagenet", "paper", data_root=str(data), pretrained=str(ckpt), forget=("sketch",), shots=1,
                      epochs=1, device="cpu", precision="fp32", eval_batch_size=eval_batch)
    sampler = Sampler()
    start = _status()
    sampler.start()
    t0 = time.perf_counter()
    result = run_experiment(cfg, workdir / f"run-{val}-{sketch}-{int(in_memory)}", force=True, progress=False)
    sampler.stop.set()
    sampler.join()
    n_test = result["n_test"]
    return {"val_per_class": val, "sketch_per_class": sketch, "n_test": n_test, "n_train": result["n_train"],
            "decoded_test_bytes": n_test * BYTES_224, "in_memory": in_memory, "cache_built": rebuild or in_memory,
            "eval_batch": eval_batch,
            "start_rss_anon": start["RssAnon"], "peak_rss_anon": sampler.peak["RssAnon"],
            "peak_rss_file": sampler.peak["RssFile"], "peak_rss_total": sampler.peak["VmHWM"],
            "anon_growth": sampler.peak["RssAnon"] - start["RssAnon"], "wall_s": time.perf_counter() - t0,
            "eval_s": result["timings"]["eval_s"], "data": result.get("data")}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--val", type=int, default=None, help="val images per class (one measurement in this process)")
    p.add_argument("--sketch", type=int, default=None, help="ImageNet-Sketch images per class (20 %% are test)")
    p.add_argument("--in-memory", action="store_true", help="keep the decoded test set in memory (the old path)")
    p.add_argument("--rebuild", action="store_true", help="empty the tensor cache first (measure a first run)")
    p.add_argument("--eval-batch", type=int, default=256, help="the run's eval_batch_size (default 256, the "
                   "project's; on a CPU each batch's float copies are host memory, on a GPU they are not)")
    p.add_argument("--sizes", default="2:10,6:20", help="val:sketch pairs measured in fresh processes")
    p.add_argument("--workdir", default=None, help="where the fabricated data, cache and run go (default: temp)")
    args = p.parse_args(argv)
    if not Path("/proc/self/status").is_file():
        print("eval_memory needs Linux (/proc/self/status)", file=sys.stderr)
        return 2
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="adu-eval-memory-"))
    if args.val is not None:
        print(json.dumps(measure(args.val, args.sketch or 0, workdir, args.in_memory, args.rebuild,
                                 args.eval_batch)))
        return 0
    for pair in args.sizes.split(","):
        val, sketch = pair.split(":")
        for extra in (["--rebuild"], [], ["--in-memory"]):  # first run, a later run, the old path
            cmd = [sys.executable, "-m", "benchmarks.eval_memory", "--val", val, "--sketch", sketch,
                   "--workdir", str(workdir), "--eval-batch", str(args.eval_batch), *extra]
            subprocess.run(cmd, check=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
