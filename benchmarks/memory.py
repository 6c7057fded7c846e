"""Peak memory of one paper-tier ADU run (ViT-B/16, InstaPG at layers 1-8, DDL) in bf16 and fp32, with and without
gradient checkpointing; prints one JSON object (see benchmarks.bench.memory_report for what is counted).

    python -m benchmarks.memory                       # CPU: predicted peak from measured step allocations
    python -m benchmarks.memory --measure 32 64 128   # CUDA: also torch.cuda.max_memory_allocated at those batches
"""

from __future__ import annotations

import argparse
import json
import sys

import torch

from benchmarks.bench import memory_report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="ViT-B-16")
    p.add_argument("--device", default="auto")
    p.add_argument("--batch", type=int, default=32, help="the run's batch size (paper tier: 32)")
    p.add_argument("--measure", type=int, nargs="*", default=[], help="CUDA: batches to measure for real")
    p.add_argument("--precisions", nargs="*", default=["bf16", "fp32"])
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    report = memory_report(args.model, args.device, args.batch, precisions=args.precisions,
                           measure_batches=args.measure, log=lambda m: print(m, file=sys.stderr))
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
