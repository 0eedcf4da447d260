#!/usr/bin/env python3
"""Time notebook cells in new `lepton-rust` kernels: the README's "Notebook compile times".

Starts KERNELS new kernels one after the other (warm evcxr cache: run `make setup` first) and
in each runs, timed from `execute` to the reply:

    :dep lepton = { path = ".." }
    use lepton::prelude::*;
    let x = 1 + 1;
    let train = fashion_mnist(Split::Train)?.per_class_sample(600, 0)?;     (6,000 images)
    let mut s = Session::new(Arch::LeNet300, train, None, TrainConfig::default())?;
    s.fit(1)?;                                                              (twice)

and prints each cell's seconds per kernel, then per cell the median, min and max. For
`s.fit(1)?;` it also prints the training time the kernel reported (the History's wall time),
so the compile share of that cell is the difference.

Usage: .venv/bin/python scripts/time_kernel_cells.py [--kernels N]
Exit status: 1 when a cell fails.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from warm_kernel import KERNEL, ROOT, run_cell  # noqa: E402

CELLS = [
    (":dep lepton", ':dep lepton = { path = ".." }'),
    ("use prelude", "use lepton::prelude::*;"),
    ("first let", "let x = 1 + 1;"),
    ("load data", "let train = fashion_mnist(Split::Train)?.per_class_sample(600, 0)?;"),
    ("new Session", "let mut s = Session::new(Arch::LeNet300, train, None, TrainConfig::default())?;"),
    ("fit(1) #1", "s.fit(1)?;"),
    ("fit(1) #2", "s.fit(1)?;"),
    ("train seconds", 'println!("TRAIN_SECONDS {:.3} {:.3}", s.history().epochs[0].wall_seconds, '
                      's.history().epochs[1].wall_seconds);'),
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kernels", type=int, default=5)
    args = ap.parse_args()
    from jupyter_client.manager import start_new_kernel

    times: dict[str, list[float]] = {name: [] for name, _ in CELLS}
    for k in range(args.kernels):
        km, kc = start_new_kernel(kernel_name=KERNEL, cwd=str(ROOT / "notebooks"), startup_timeout=300)
        try:
            for name, code in CELLS:
                ok, secs, errors = run_cell(kc, code, 600)
                if not ok:
                    print(f"kernel {k + 1}: {name} FAILED:\n" + "\n".join(errors[:20]), flush=True)
                    return 1
                times[name].append(secs)
                print(f"kernel {k + 1}: {name:<14} {secs:6.2f} s", flush=True)
        finally:
            km.shutdown_kernel(now=True)
    print("\ncell            median    min    max   (seconds, %d kernels)" % args.kernels)
    for name, _ in CELLS:
        v = times[name]
        print(f"{name:<14} {statistics.median(v):7.2f} {min(v):6.2f} {max(v):6.2f}   "
              + " ".join(f"{x:.2f}" for x in v))
    return 0


if __name__ == "__main__":
    sys.exit(main())
