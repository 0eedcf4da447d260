#!/usr/bin/env python3
"""Execute every notebooks/*.ipynb headless with the `lepton-rust` (evcxr) kernel.

- kernel `lepton-rust` (registered in the venv by `make setup`), whatever the
  notebook's own metadata says;
- working directory = the notebooks' folder, so `:dep lepton = { path = ".." }` resolves;
- environment LEPTON_QUICK=1 (notebooks use it to shrink their workloads), unless set;
- per-cell timeout --timeout seconds (default 1800);
- executed copies go to notebooks/out/<name>.ipynb (gitignored), also when a cell fails;
- a cell error fails that notebook: the cell's source and the error are printed.
  evcxr 0.22 reports a *panic* (a failed assert!, an out-of-bounds index, an unwrap
  on Err) as a successful execution: it catches the panic, prints the standard
  "thread '...' panicked at ..." message on stderr and replies status "ok". So a cell
  whose stderr holds that message is also a failure here, and execution stops there
  (opt out for one cell with the cell tag `raises-exception`, nbclient's tag for a
  cell that is expected to fail).

Prints one line per notebook plus `notebooks: N passed, N failed` and writes a
JSON summary (--json) that scripts/summary.py reads. Exit status 1 when any notebook
failed, 0 otherwise (also when there are no notebooks at all).

Usage: run_notebooks.py [--dir notebooks] [--out notebooks/out] [--timeout 1800]
                        [--json FILE] [NOTEBOOK ...]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import traceback
from pathlib import Path

KERNEL = "lepton-rust"
ROOT = Path(__file__).resolve().parent.parent
PANIC_RE = re.compile(r"^thread '[^']*'(?: \(\d+\))? panicked at ", re.M)
# evcxr also replies "ok" when a cell's `?` returns an error: it only prints the error on
# stderr. So any stderr output fails a cell, unless the cell is tagged `allow-stderr`
# (or `raises-exception`). Library code prints progress on stdout only.
ALLOWED_TAGS = {"raises-exception", "allow-stderr"}


def _stderr_failure(cell) -> str | None:
    if ALLOWED_TAGS & set(cell.get("metadata", {}).get("tags", [])):
        return None
    text = _strip_ansi(_stderr_text(cell)).strip()
    if not text:
        return None
    m = PANIC_RE.search(text)
    return text[m.start():] if m else f"error printed on stderr (a `?` returned Err?):\n{text}"


class CellPanicked(Exception):
    """A cell panicked: evcxr caught it and replied "ok", but it is a failure."""


def _stderr_text(cell) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", [])
                   if o.get("output_type") == "stream" and o.get("name") == "stderr")


def _strip_ansi(s: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", s)


def _cell_label(nb, cell_index: int) -> str:
    code_cells = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    n = code_cells.index(cell_index) + 1 if cell_index in code_cells else "?"
    return f"cell {cell_index} (code cell {n})"


def _error_outputs(cell) -> list[str]:
    msgs = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            tb = "\n".join(out.get("traceback") or [])
            msgs.append(_strip_ansi(tb) or f"{out.get('ename')}: {out.get('evalue')}")
    stderr = _strip_ansi(_stderr_text(cell)).strip("\n")
    if stderr:
        msgs.append("stderr:\n" + stderr)
    return msgs


def panicked_cell(nb) -> int | None:
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and _stderr_failure(cell):
            return i
    return None


def run_one(path: Path, out_dir: Path, cwd: Path, timeout: int) -> dict:
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        kernel_name=KERNEL,
        timeout=timeout,
        startup_timeout=300,
        allow_errors=False,
        record_timing=True,
        resources={"metadata": {"path": str(cwd)}},
    )
    started = time.monotonic()
    failed_cell = None
    error = None
    # Show progress cell by cell so a long run is visibly alive.
    total = sum(1 for c in nb.cells if c.cell_type == "code")
    done = 0

    def on_cell_start(cell, cell_index):
        nonlocal done
        if cell.cell_type != "code":
            return
        done += 1
        first = (cell.source.strip().splitlines() or [""])[0][:70]
        print(f"    [{done}/{total}] {first}", flush=True)

    def on_cell_executed(cell, cell_index, execute_reply):
        failure = _stderr_failure(cell)
        if failure:
            raise CellPanicked(failure)

    client.on_cell_start = on_cell_start
    client.on_cell_executed = on_cell_executed
    try:
        client.execute()
    except CellPanicked as exc:
        error = f"panic: {exc}"
        failed_cell = panicked_cell(nb)
    except CellExecutionError as exc:
        error = str(exc)
    except CellTimeoutError as exc:
        error = f"timeout after {timeout} s per cell: {exc}"
    except DeadKernelError as exc:
        error = f"kernel died: {exc}"
    except Exception as exc:  # kernel did not start, etc.
        error = "".join(traceback.format_exception(exc))
    elapsed = time.monotonic() - started

    if error is not None and failed_cell is None:
        # Find the failing cell: the last executed code cell with an error output,
        # else the last cell that started executing.
        for i, cell in enumerate(nb.cells):
            if cell.cell_type == "code" and any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
                failed_cell = i
        if failed_cell is None:
            started_cells = [i for i, c in enumerate(nb.cells)
                             if c.cell_type == "code" and "execution" in c.get("metadata", {})
                             and "iopub.execute_input" in c.metadata.execution]
            failed_cell = started_cells[-1] if started_cells else None

    out_dir.mkdir(parents=True, exist_ok=True)
    out_path = out_dir / path.name
    nbformat.write(nb, out_path)

    result = {
        "notebook": str(path),
        "output": str(out_path),
        "ok": error is None,
        "seconds": round(elapsed, 1),
    }
    if error is not None:
        result["error"] = error
        if failed_cell is not None:
            cell = nb.cells[failed_cell]
            result["failed_cell"] = failed_cell
            result["cell_label"] = _cell_label(nb, failed_cell)
            result["cell_source"] = cell.source
            result["cell_errors"] = _error_outputs(cell)
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("notebooks", nargs="*", type=Path, help="notebooks to run (default: DIR/*.ipynb)")
    ap.add_argument("--dir", type=Path, default=ROOT / "notebooks")
    ap.add_argument("--out", type=Path, default=None, help="default: DIR/out")
    ap.add_argument("--timeout", type=int, default=int(os.environ.get("NOTEBOOK_CELL_TIMEOUT", "1800")))
    ap.add_argument("--json", type=Path, default=None, help="write a JSON summary here")
    args = ap.parse_args()

    nb_dir = args.dir.resolve()
    out_dir = (args.out or nb_dir / "out").resolve()
    paths = [p.resolve() for p in args.notebooks] or sorted(nb_dir.glob("*.ipynb"))
    os.environ.setdefault("LEPTON_QUICK", "1")

    print(f"notebooks: {len(paths)} to run in {nb_dir} (kernel {KERNEL}, "
          f"LEPTON_QUICK={os.environ['LEPTON_QUICK']}, cell timeout {args.timeout} s)", flush=True)
    results = []
    for path in paths:
        print(f"  RUN  {path.name}", flush=True)
        res = run_one(path, out_dir, nb_dir, args.timeout)
        results.append(res)
        status = "PASS" if res["ok"] else "FAIL"
        print(f"  {status} {path.name} ({res['seconds']} s) -> {os.path.relpath(res['output'])}", flush=True)
        if not res["ok"]:
            bar = "-" * 72
            print(bar)
            if "cell_label" in res:
                print(f"{path.name}: {res['cell_label']} failed. Source:")
                print("\n".join("    " + line for line in res["cell_source"].splitlines()))
                print("Error:")
                lines = "\n".join(res["cell_errors"] or [res["error"]]).splitlines()
                print("\n".join("    " + line for line in lines[:60]))
                if len(lines) > 60:
                    print(f"    ... ({len(lines) - 60} more lines in {os.path.relpath(res['output'])})")
            else:
                print(f"{path.name}: {res['error']}")
            print(bar, flush=True)

    passed = sum(r["ok"] for r in results)
    failed = len(results) - passed
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"passed": passed, "failed": failed, "results": results}, indent=2))
    print(f"notebooks: {passed} passed, {failed} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
