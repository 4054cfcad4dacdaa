"""Run chapter notebooks top to bottom on a fresh kernel and print wall time and the kernel's peak memory.

The chapter budget at lab scale is 4 minutes on a 2-core CPU and 2 GB of memory (a Binder session), with a
fresh cache, so that every lab model is trained; a rerun with the cache that run left (warm) should take at
most half as long. Each notebook runs both ways in a private cache folder. This prints the numbers and how
they compare with the budget; it asserts nothing.

    python benchmarks/notebook_budget.py [notebooks/01_texture_vs_shape.ipynb ...] [--save]

``--save`` writes the notebook executed on the fresh cache back, so its stored outputs come from that clean run.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import nbformat
import psutil
import torch
from nbclient import NotebookClient

from vitlessons.session import device_flops
from vitlessons.student import chapter_notebooks

BUDGET_SECONDS, BUDGET_BYTES = 240, 2 * 1024**3


def _tree_rss(process: psutil.Process) -> int:
    """Resident memory of a process and its children (the kernel may spawn workers)."""
    total = 0
    for member in [process, *process.children(recursive=True)]:
        try:
            total += member.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def run(path: Path, save: bool) -> tuple[float, int]:
    """Execute one notebook, sampling the kernel's memory every 50 ms; return seconds and peak bytes."""
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=1200, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    peak, done = [0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            pid = getattr(getattr(client, "km", None), "provisioner", None)
            pid = getattr(getattr(pid, "process", None), "pid", None)
            if pid:
                try:
                    peak[0] = max(peak[0], _tree_rss(psutil.Process(pid)))
                except psutil.NoSuchProcess:
                    pass
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    start = time.perf_counter()
    sampler.start()
    try:
        client.execute()
    finally:
        done.set()
    seconds = time.perf_counter() - start
    if save:
        nbformat.write(notebook, path)
    return seconds, peak[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--save", action="store_true", help="store the outputs of this run in the notebook")
    args = parser.parse_args(argv)
    paths = args.notebooks or chapter_notebooks(Path(__file__).resolve().parents[1] / "notebooks")
    os.environ["VITLESSONS_SCALE"] = "lab"
    # Machines of one kind differ (the 2-core VMs here by up to 1.8x from day to day): this rate tells runs apart.
    print(f"this machine: {device_flops(torch.device('cpu')) / 1e9:.0f} GFLOP/s on a float32 matrix product, "
          f"{torch.get_num_threads()} threads")
    print(f"{'notebook':40s} {'cache':>6s} {'seconds':>8s} {'of budget':>9s} {'peak MB':>8s} {'of budget':>9s}")
    for path in paths:
        with tempfile.TemporaryDirectory(prefix="vitlessons-budget-") as cache:
            os.environ["VITLESSONS_CACHE"] = cache
            for state, save in (("fresh", args.save), ("warm", False)):
                seconds, peak = run(path, save)
                print(f"{path.name:40s} {state:>6s} {seconds:8.0f} {seconds / BUDGET_SECONDS:9.0%} "
                      f"{peak / 2**20:8.0f} {peak / BUDGET_BYTES:9.0%}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
