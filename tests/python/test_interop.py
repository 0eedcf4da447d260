"""Python reads what lepton writes: safetensors checkpoints and Parquet/CSV reports.

Runs `cargo run --release --example interop_export -- <tmpdir>` once (from the repository
root), then checks the files against the values the example wrote to `expected.json`.
`make test` sets LEPTON_INTEROP_CMD to run the example from the kernel-shaped build of
scripts/kernel_cargo_test.sh instead (no separate release build of all dependencies).
"""

from __future__ import annotations

import json
import math
import os
import shlex
import subprocess
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from safetensors import safe_open
from safetensors.numpy import load_file

REPO = Path(__file__).resolve().parents[2]
# Tensor sums: Rust sums f32 values in f64 in tensor order, numpy in pairwise order.
SUM_RTOL = 1e-4
SUM_ATOL = 1e-4
# f64 values written to Parquet/CSV and JSON by Rust: both should round-trip exactly.
F64_RTOL = 1e-12
# A first release build of the example can take several minutes on a small machine.
BUILD_TIMEOUT_S = 1800

HISTORY_COLUMNS = [
    "run",
    "epoch",
    "train_loss",
    "train_accuracy",
    "val_loss",
    "val_accuracy",
    "learning_rate",
    "wall_seconds",
    "samples",
]
EVAL_COLUMNS = ["model", "dataset", "class", "class_name", "samples", "accuracy"]
FASHION_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
LENET300_SHAPES = {
    "fc1.weight": (300, 784),
    "fc1.bias": (300,),
    "fc2.weight": (100, 300),
    "fc2.bias": (100,),
    "fc3.weight": (10, 100),
    "fc3.bias": (10,),
}


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("interop")
    runner = os.environ.get("LEPTON_INTEROP_CMD")
    argv = (shlex.split(runner) if runner else ["cargo", "run", "--release"]) + [
        "--quiet", "--example", "interop_export", "--", str(out)]
    proc = subprocess.run(
        argv,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
    )
    assert proc.returncode == 0, f"interop_export failed:\n{proc.stdout}\n{proc.stderr}"
    expected = json.loads((out / "expected.json").read_text())
    return out, expected


def close(a: float, b: float, rtol: float, atol: float = 0.0) -> bool:
    return math.isclose(a, b, rel_tol=rtol, abs_tol=atol)


def test_export_writes_every_file_and_no_temporary_files(export):
    out, _ = export
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(
        [
            "eval.csv",
            "eval.parquet",
            "expected.json",
            "history.csv",
            "history.parquet",
            "lenet300.safetensors",
            "size.parquet",
        ]
    )


def test_safetensors_names_shapes_and_sums_match(export):
    out, expected = export
    tensors = load_file(str(out / "lenet300.safetensors"))
    assert {n: tuple(a.shape) for n, a in tensors.items()} == LENET300_SHAPES
    assert [t["name"] for t in expected["tensors"]] == list(LENET300_SHAPES)
    for t in expected["tensors"]:
        arr = tensors[t["name"]]
        assert arr.dtype == np.float32, t["name"]
        assert tuple(arr.shape) == tuple(t["shape"]), t["name"]
        assert np.isfinite(arr).all(), t["name"]
        s = float(arr.astype(np.float64).sum())
        assert close(s, t["sum"], SUM_RTOL, SUM_ATOL), (t["name"], s, t["sum"])
        a = float(np.abs(arr.astype(np.float64)).sum())
        assert close(a, t["abs_sum"], SUM_RTOL, SUM_ATOL), (t["name"], a, t["abs_sum"])
    fc1 = float(tensors["fc1.weight"].astype(np.float64).sum())
    assert close(fc1, expected["fc1_weight_sum"], SUM_RTOL, SUM_ATOL)
    # Trained weights, not zeros: the checkpoint carries real values.
    assert expected["tensors"][0]["abs_sum"] > 1.0
    assert sum(a.size for a in tensors.values()) == expected["total_params"] == 266_610


def test_safetensors_header_metadata(export):
    out, expected = export
    with safe_open(str(out / "lenet300.safetensors"), framework="np") as f:
        meta = f.metadata()
        assert sorted(f.keys()) == sorted(LENET300_SHAPES)
    assert meta == {"arch": expected["arch"], "epochs": str(expected["epochs"]), "seed": str(expected["seed"])}
    assert meta["arch"] == "LeNet-300-100"


def check_history(df: pl.DataFrame, expected: dict) -> None:
    assert df.columns == HISTORY_COLUMNS
    assert df.height == expected["history_rows"] == 1
    assert df["epoch"].to_list() == list(range(1, expected["history_rows"] + 1))
    assert df["run"].to_list() == [expected["history_name"]] * df.height
    assert df["samples"].to_list() == expected["train_samples"] == [1000]
    for col in ("train_loss", "train_accuracy", "learning_rate"):
        for got, want in zip(df[col].to_list(), expected[col]):
            assert close(got, want, F64_RTOL), (col, got, want)
    # No validation set: nulls, not NaN.
    assert df["val_loss"].null_count() == df.height
    assert df["val_accuracy"].null_count() == df.height
    assert all(w > 0 for w in df["wall_seconds"].to_list())
    # Mean cross-entropy over the epoch, which starts at about ln(10) ≈ 2.303 (untrained).
    assert all(0.0 < l < 2.303 for l in df["train_loss"].to_list())


def test_history_parquet_and_csv(export):
    out, expected = export
    pq = pl.read_parquet(out / "history.parquet")
    assert pq.schema["run"] == pl.String
    assert pq.schema["epoch"] == pl.UInt64
    assert pq.schema["samples"] == pl.UInt64
    assert pq.schema["train_loss"] == pl.Float64
    assert pq.schema["val_loss"] == pl.Float64
    check_history(pq, expected)
    csv = pl.read_csv(out / "history.csv")
    check_history(csv, expected)


def check_eval(df: pl.DataFrame, expected: dict) -> None:
    assert df.columns == EVAL_COLUMNS
    assert df.height == 10
    assert df["model"].to_list() == [expected["eval_model"]] * 10
    assert df["dataset"].to_list() == [expected["eval_dataset"]] * 10
    assert df["class"].to_list() == list(range(10))
    assert df["class_name"].to_list() == expected["class_names"] == FASHION_CLASSES
    assert df["samples"].to_list() == expected["class_counts"] == [100] * 10
    for got, want in zip(df["accuracy"].to_list(), expected["per_class_accuracy"]):
        assert close(got, want, F64_RTOL), (got, want)
    # The overall accuracy is the sample-weighted mean of the per-class accuracies.
    weighted = (df["accuracy"] * df["samples"]).sum() / df["samples"].sum()
    assert close(weighted, expected["accuracy"], F64_RTOL), (weighted, expected["accuracy"])


def test_eval_parquet_and_csv(export):
    out, expected = export
    assert expected["samples"] == 1000
    # One epoch on 1,000 images: clearly better than chance (0.10).
    assert 0.4 < expected["accuracy"] <= 1.0
    assert 0.0 < expected["loss"] < 2.303
    pq = pl.read_parquet(out / "eval.parquet")
    assert pq.schema["class"] == pl.UInt64
    assert pq.schema["accuracy"] == pl.Float64
    check_eval(pq, expected)
    check_eval(pl.read_csv(out / "eval.csv"), expected)


def test_size_parquet_matches_checkpoint(export):
    out, expected = export
    size = pl.read_parquet(out / "size.parquet")
    assert size.columns == ["model", "path", "shape", "params", "bytes"]
    assert size["path"].to_list() == list(LENET300_SHAPES)
    assert size["shape"].to_list() == ["x".join(map(str, s)) for s in LENET300_SHAPES.values()]
    assert size["params"].sum() == expected["total_params"]
    assert size["bytes"].sum() == 4 * expected["total_params"] == 1_066_440
