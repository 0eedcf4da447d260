"""Python reads what lepton writes: safetensors checkpoints and Parquet/CSV reports.

Runs `cargo run --release -p lepton-polars --example interop_export -- <tmpdir>` once (from
the repository root), then checks the files against the values the example wrote to `expected.json`.
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
        "--quiet", "-p", "lepton-polars", "--example", "interop_export", "--", str(out)]
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
            "lenet300-int8.safetensors",
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


# The int8 model (`QuantizedModel::save`): I8 weight codes, I32 biases, F32 scales, I32
# (zero_point, qmin, qmax, bits) rows; names, order and the calibration in the metadata, every
# f32 there as "0x" + the hex digits of its bits.
INT8_LAYERS = ["fc1", "fc2", "fc3"]


def f32_from_hex(s: str) -> np.float32:
    assert s.startswith("0x") and len(s) == 10, s
    return np.array([int(s, 16)], dtype=np.uint32).view(np.float32)[0]


def test_int8_safetensors_layout_and_metadata(export):
    out, _ = export
    path = out / "lenet300-int8.safetensors"
    tensors = load_file(str(path))
    expected = {"activations.scale": (np.float32, (4,)), "activations.qparams": (np.int32, (4, 4))}
    for name in INT8_LAYERS:
        o, i = LENET300_SHAPES[f"{name}.weight"]
        expected |= {
            f"{name}.weight": (np.int8, (o, i)),
            f"{name}.bias": (np.int32, (o,)),
            f"{name}.weight_scale": (np.float32, (o,)),
            f"{name}.weight_qparams": (np.int32, (o, 4)),
        }
    assert {n: (a.dtype.type, a.shape) for n, a in tensors.items()} == expected
    with safe_open(str(path), framework="np") as f:
        meta = f.metadata()
    assert (meta["format"], meta["format_version"], meta["kind"]) == ("lepton-quantized-model", "1", "mlp")
    assert (meta["model"], meta["layers"], meta["kernel"]) == ("LeNet-300-100", "3", "Auto")
    assert [meta[f"layer.{i}.name"] for i in range(3)] == INT8_LAYERS
    assert [meta[f"layer.{i}.relu"] for i in range(3)] == ["true", "true", "false"]
    assert (meta["calibration.observer"], meta["calibration.batches"], meta["calibration.activations"]) == ("MinMax", "4", "4")
    names = [meta[f"calibration.{j}.activation"] for j in range(4)]
    assert names == ["input"] + [f"{n}.output" for n in INT8_LAYERS]
    # the calibration rows are the activation parameters, bit for bit
    scales = tensors["activations.scale"]
    qparams = tensors["activations.qparams"]
    for j in range(4):
        assert f32_from_hex(meta[f"calibration.{j}.scale"]).tobytes() == scales[j].tobytes(), j
        assert int(meta[f"calibration.{j}.zero_point"]) == qparams[j, 0], j
        assert int(meta[f"calibration.{j}.bits"]) == qparams[j, 3] == 8, j
    assert (qparams[:, 1] == 0).all() and (qparams[:, 2] == 255).all()
    # pixels are in [0, 1]: the input scale is 1/255 (as an f32) and its zero point 0
    assert scales[0] == np.float32(1.0 / 255.0) and qparams[0, 0] == 0


def test_int8_codes_dequantize_to_the_float_checkpoint(export):
    out, _ = export
    q = load_file(str(out / "lenet300-int8.safetensors"))
    fl = load_file(str(out / "lenet300.safetensors"))
    s_in = q["activations.scale"].astype(np.float64)
    for li, name in enumerate(INT8_LAYERS):
        codes = q[f"{name}.weight"].astype(np.int32)
        s_w = q[f"{name}.weight_scale"].astype(np.float64)
        rows = q[f"{name}.weight_qparams"]
        # symmetric 8-bit codes per output channel
        assert (rows == np.array([0, -127, 127, 8], dtype=np.int32)).all(), name
        assert (np.abs(codes) <= 127).all(), name
        assert (s_w > 0).all(), name
        # every weight is its code times the channel's scale, within half a step
        w = fl[f"{name}.weight"].astype(np.float64)
        err = np.abs(w - codes * s_w[:, None])
        assert (err <= 0.5 * s_w[:, None] * (1 + 1e-6) + 1e-12).all(), (name, float(err.max()))
        # the largest |weight| of a row is code ±127
        assert (np.abs(codes).max(axis=1) == 127).all(), name
        # the bias codes have scale S_in·S_w
        step = s_in[li] * s_w
        b_err = np.abs(fl[f"{name}.bias"].astype(np.float64) - q[f"{name}.bias"] * step)
        assert (b_err <= 0.5 * step * (1 + 1e-6) + 1e-12).all(), (name, float(b_err.max()))
