#!/usr/bin/env python3
"""PyTorch reference for issue #2's baselines, on lepton's bundled data and recipe.

Trains LeNet-300-100 or LeNet-5 exactly as `examples/train_baseline.rs` does (same IDX files,
same splits, inputs scaled to 0..1, PyTorch's default initialisation, Adam 1e-3, batch 128,
a fresh shuffle every epoch, last partial batch kept) and prints the test accuracy; with
`--throughput` it instead times training steps the way `benches/train_throughput.rs` does
(20 steps of batch 128 = 2,560 samples per iteration).

PyTorch is not one of lepton's dependencies. Install it in a throwaway venv:

    python3 -m venv /tmp/torch-venv && /tmp/torch-venv/bin/pip install torch numpy
    /tmp/torch-venv/bin/python scripts/pytorch_reference.py lenet5 fashion --seeds 0 1 2
    /tmp/torch-venv/bin/python scripts/pytorch_reference.py lenet300 fashion --throughput
"""
import argparse
import gzip
import struct
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent / "datasets"
FILES = {
    "fashion": ("fashion-mnist", "train", "t10k"),
    "mnist10k": ("mnist-10k", "train", "t10k"),
}


def read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        data = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    dims = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(dataset: str, split: str):
    folder, train, test = FILES[dataset]
    prefix = train if split == "train" else test
    d = ROOT / folder
    x = read_idx(d / f"{prefix}-images-idx3-ubyte.gz").astype(np.float32) / 255.0
    y = read_idx(d / f"{prefix}-labels-idx1-ubyte.gz").astype(np.int64)
    return torch.from_numpy(x.reshape(len(x), 1, 28, 28).copy()), torch.from_numpy(y.copy())


def lenet300():
    return nn.Sequential(
        nn.Flatten(), nn.Linear(784, 300), nn.ReLU(), nn.Linear(300, 100), nn.ReLU(), nn.Linear(100, 10)
    )


def lenet5():
    # lepton's LeNet-5: no padding, 28 -> 24 -> 12 -> 8 -> 4, flatten 16*4*4 = 256
    return nn.Sequential(
        nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(256, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
    )


def lenet5_pad2():
    # LeCun et al. 1998's layer sizes: the 28x28 image padded to 32x32, 6@28x28 -> 6@14x14 ->
    # 16@10x10 -> 16@5x5, flatten 400 (61,706 parameters; not lepton's LeNet-5)
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
    )


MODELS = {"lenet300": lenet300, "lenet5": lenet5, "lenet5-pad2": lenet5_pad2}


def train(arch, xtr, ytr, xte, yte, epochs, seed, batch=128):
    torch.manual_seed(seed)
    model = MODELS[arch]()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(seed)
    n = len(xtr)
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(n, generator=gen)
        correct, total_loss = 0, 0.0
        for i in range(0, n, batch):
            idx = perm[i : i + batch]
            out = model(xtr[idx])
            loss = loss_fn(out, ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total_loss += loss.item() * len(idx)
            correct += (out.argmax(1) == ytr[idx]).sum().item()
        acc = evaluate(model, xte, yte)
        print(f"  epoch {epoch + 1}: train loss {total_loss / n:.4f} train acc {100 * correct / n:.2f}% test acc {acc:.2f}%", flush=True)
    return evaluate(model, xte, yte)


@torch.no_grad()
def evaluate(model, x, y):
    model.eval()
    correct = 0
    for i in range(0, len(x), 1000):
        correct += (model(x[i : i + 1000]).argmax(1) == y[i : i + 1000]).sum().item()
    return 100.0 * correct / len(x)


def throughput(arch, xtr, ytr, samples=2560, batch=128, iters=10):
    torch.manual_seed(0)
    model = MODELS[arch]()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    x, y = xtr[:samples], ytr[:samples]

    def one_pass():
        perm = torch.randperm(samples)
        for i in range(0, samples, batch):
            idx = perm[i : i + batch]
            loss = loss_fn(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()

    for _ in range(3):
        one_pass()
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        one_pass()
        times.append(time.perf_counter() - t)
    times.sort()
    med = times[len(times) // 2]
    print(f"{arch}: median {med * 1e3:.1f} ms per {samples} samples = {samples / med:,.0f} samples/s "
          f"(best {samples / times[0]:,.0f}, worst {samples / times[-1]:,.0f}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads)")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("arch", choices=MODELS)
    p.add_argument("dataset", choices=FILES)
    p.add_argument("--epochs", type=int, default=None, help="default 10 (fashion) / 30 (mnist10k)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--throughput", action="store_true")
    a = p.parse_args()
    torch.set_num_threads(2)
    xtr, ytr = load(a.dataset, "train")
    if a.throughput:
        throughput(a.arch, xtr, ytr)
        return
    xte, yte = load(a.dataset, "test")
    epochs = a.epochs or (10 if a.dataset == "fashion" else 30)
    results = []
    for seed in a.seeds:
        t = time.perf_counter()
        acc = train(a.arch, xtr, ytr, xte, yte, epochs, seed)
        results.append(acc)
        print(f"{a.arch} {a.dataset} seed {seed}: test accuracy {acc:.2f}% after {epochs} epochs "
              f"({time.perf_counter() - t:.0f} s)", flush=True)
    print(f"{a.arch} {a.dataset}: mean {np.mean(results):.2f}% over seeds {a.seeds}")


if __name__ == "__main__":
    main()
