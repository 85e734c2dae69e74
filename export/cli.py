"""Command-line entry point of export: ``reid-export``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``reid-export``."""
    p = argparse.ArgumentParser(
        prog="reid-export", description="Export trained embedders (and the person detector) to ONNX and "
        "TensorRT as a self-describing model bundle, and verify the bundle against PyTorch.")
    p.add_argument("checkpoint", type=Path, help="training checkpoint to export")
    p.add_argument("--out", type=Path, help="bundle directory to write")
    p.parse_args(argv)
    print("reid-export: export is not built yet in this version of reid-stream (ONNX / TensorRT model "
          "bundles land with the export package).", file=sys.stderr)
    return 2
