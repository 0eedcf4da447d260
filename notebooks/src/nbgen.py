"""Shared by the notebook generators (notebooks/src/build_NN.py): collect markdown and Rust
cells with md() / code(), then write() the .ipynb for the `lepton-rust` kernel next to the
other notebooks. Cell ids are stable (c00, c01, ...), so a regenerated notebook diffs cleanly."""
import json
from pathlib import Path

cells = []


def md(s):
    """A markdown cell."""
    cells.append(("markdown", s.strip("\n"), []))


def code(s, tags=None):
    """A Rust code cell; `tags` e.g. ["raises-exception"] for a cell meant to fail."""
    cells.append(("code", s.strip("\n"), tags or []))


POLARS_NOTE = """
Parquet and CSV go through Polars, in its own crate `lepton-polars`, loaded here rather than at
the top so that the notebook starts faster (evcxr analyses every loaded crate in every new
kernel; Polars is most of lepton's dependency tree): 5–7 s on a warm cache, the first cell
after it a few seconds more.
"""


def export_section(intro):
    """The markdown `intro` of an export section with the note on Polars, then the cell that
    loads lepton-polars (`:dep lepton-polars`, its prelude: write_parquet, write_csv,
    read_parquet)."""
    md(intro.strip("\n") + "\n" + POLARS_NOTE)
    code(r"""
:dep lepton-polars = { path = "../lepton-polars" }
use lepton_polars::prelude::*;
""")


def write(name):
    """Writes notebooks/<name> from the collected cells."""
    nb = {
        "cells": [],
        "metadata": {
            "kernelspec": {"display_name": "Rust (lepton)", "language": "rust", "name": "lepton-rust"},
            "language_info": {"codemirror_mode": "rust", "file_extension": ".rs", "mimetype": "text/rust",
                              "name": "Rust", "pygment_lexer": "rust", "version": ""},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    for i, (kind, src, tags) in enumerate(cells):
        cell = {"cell_type": kind, "id": f"c{i:02d}", "metadata": {}, "source": src.splitlines(keepends=True)}
        if kind == "code":
            cell.update({"execution_count": None, "outputs": []})
            if tags:
                cell["metadata"]["tags"] = tags
        nb["cells"].append(cell)
    out = Path(__file__).resolve().parent.parent / name
    out.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {out} ({len(cells)} cells)")
