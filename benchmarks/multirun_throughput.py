"""Grid throughput: R runs trained in one pass over the shared backbone against the same R runs one after another.

Each measurement trains whole epochs with the project's trainers (interleaved, repeated; medians). Prints one JSON
object: for each R, images/s both ways, their ratio and (CUDA) the grouped peak memory.

    python -m benchmarks.multirun_throughput --runs 2 4 8            # GPU: ViT-B/16 at 224 px, batch 32 per run
    python -m benchmarks.multirun_throughput --model adu-tiny --runs 2 4 --steps 8 --threads 1   # CPU
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch

from adu_core.backbones import load_clip
from adu_core.device import resolve_device
from benchmarks.bench import bench_config, bench_group, peak_bf16_tflops, synthetic_train_data


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="auto", help="auto: ViT-B-16 on CUDA, adu-tiny on CPU")
    p.add_argument("--device", default="auto")
    p.add_argument("--runs", type=int, nargs="+", default=[2, 4, 8])
    p.add_argument("--batch", type=int, default=32, help="batch per run (the paper tier's)")
    p.add_argument("--steps", type=int, default=16, help="steps per timed epoch")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=0)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    model = args.model if args.model != "auto" else ("ViT-B-16" if device.type == "cuda" else "adu-tiny")
    torch.manual_seed(0)
    clip, _, _, tok = load_clip(model, None, device=device)
    clip.requires_grad_(False)
    size = int(clip.visual.image_size[0])
    cfg = bench_config(model, len(clip.visual.transformer.resblocks), args.batch)
    data = synthetic_train_data(args.batch * args.steps, size, 4, 65, device)
    out = {"model": model, "device": peak_bf16_tflops(device)[1], "batch_per_run": args.batch, "results": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in args.runs:
            res = bench_group(clip, tok, cfg, device, r, data, 65, args.repeats, Path(tmp))
            print(f"R={r}: one after another {res['sequential_images_per_s']:.1f} img/s, one pass "
                  f"{res['grouped_images_per_s']:.1f} img/s, x{res['ratio']:.2f}", file=sys.stderr)
            out["results"].append(res)
            if device.type == "cuda":
                torch.cuda.empty_cache()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
