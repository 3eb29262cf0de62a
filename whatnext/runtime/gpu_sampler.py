"""GPU utilisation of a job, sampled with ``nvidia-smi`` while it runs (a no-op where there is none).

    with GpuSampler() as sampler:   # starts ``nvidia-smi --query-gpu=... --loop-ms=INTERVAL`` in the background
        ...                         # the job's work
    sampler.summary()               # {"samples": n, "util_mean_pct": ..., "util_max_pct": ..., "mem_max_mb": ...} or None

Only the job's own GPUs are sampled (``CUDA_VISIBLE_DEVICES``, which Slurm sets from ``--gpus``); each
sample is the mean utilisation over them and their summed memory in use. No torch here: the outcome
recorder (whatnext.runtime.outcome) runs one per job.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading

QUERY = "utilization.gpu,memory.used"
DEFAULT_INTERVAL_S = 10.0


def parse_line(line: str) -> tuple[float, float] | None:
    """``"35, 1200"`` (percent, MiB; csv, noheader, nounits) -> (35.0, 1200.0); None for anything else."""
    parts = [part.strip() for part in line.split(",")]
    try:
        return (float(parts[0]), float(parts[1])) if len(parts) == 2 else None
    except ValueError:
        return None  # "[N/A]" and the like


class GpuSampler:
    """Background ``nvidia-smi`` sampling of the job's GPUs every ``interval_s`` seconds."""

    def __init__(self, interval_s: float = DEFAULT_INTERVAL_S, environ=os.environ, which=shutil.which):
        self.interval_s = interval_s
        self.executable = which("nvidia-smi")
        self.devices = environ.get("CUDA_VISIBLE_DEVICES", "").strip()
        self.process: subprocess.Popen | None = None
        self.thread: threading.Thread | None = None
        self.samples: list[tuple[float, float]] = []  # (mean utilisation %, memory used MiB) per sampling time

    @property
    def active(self) -> bool:
        return self.executable is not None and self.devices not in ("-1", "none", "NoDevFiles")

    def command(self) -> list[str]:
        command = [self.executable, f"--query-gpu={QUERY}", "--format=csv,noheader,nounits",
                   f"--loop-ms={max(1, round(self.interval_s * 1000))}"]
        return command + ([f"--id={self.devices}"] if self.devices else [])

    def _read(self) -> None:
        gpus = max(1, len(self.devices.split(","))) if self.devices else None
        batch: list[tuple[float, float]] = []
        for line in self.process.stdout:
            sample = parse_line(line)
            if sample is None:
                continue
            batch.append(sample)
            if gpus is None or len(batch) == gpus:  # one line per GPU per sampling time
                self.samples.append((sum(u for u, _ in batch) / len(batch), sum(m for _, m in batch)))
                batch = []

    def start(self) -> "GpuSampler":
        if self.active:
            try:
                self.process = subprocess.Popen(self.command(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            except OSError:
                self.process = None
                return self
            self.thread = threading.Thread(target=self._read, name="gpu-sampler", daemon=True)
            self.thread.start()
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.thread.join(timeout=5)
            self.process = None

    def summary(self) -> dict | None:
        """Mean and peak utilisation (%) and peak memory in use (MiB) over the samples; None without samples."""
        if not self.samples:
            return None
        utils = [u for u, _ in self.samples]
        return {"samples": len(self.samples), "util_mean_pct": round(sum(utils) / len(utils), 1),
                "util_max_pct": max(utils), "mem_max_mb": max(m for _, m in self.samples)}

    def __enter__(self) -> "GpuSampler":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
