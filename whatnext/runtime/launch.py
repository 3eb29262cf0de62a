"""``python -m whatnext.runtime.launch --nproc N -- COMMAND...``: N ranks of a training command on one node.

What ``torchrun --standalone --nproc-per-node N`` does for a single node (each process gets ``RANK``,
``LOCAL_RANK``, ``WORLD_SIZE``, ``LOCAL_WORLD_SIZE``, ``MASTER_ADDR`` = 127.0.0.1 and a free
``MASTER_PORT``), with the exit code the workflow relies on: 0 when every rank succeeded, **75** when
the ranks stopped incomplete with their state saved (the trainers stop together, so all of them exit
75), else the first other failure's code. torchrun reports any failing worker as exit 1, which would
turn "rerun to resume" into a failure. Stop signals (SIGTERM, SIGUSR1, SIGURG, SIGINT) are passed on to
every rank; when one rank fails for another reason the others are terminated (SIGTERM, then SIGKILL
after :data:`GRACE_S`) rather than left waiting in a collective.

The SLURM rule runs it inside the job's single task, which holds the job's GPUs (the plugin's ``gpu``)
and CPUs (``cpus_per_task``); see the profile's notes on multi-GPU pretraining.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import click

EXIT_INCOMPLETE = 75  # whatnext.runtime.trainer.EXIT_INCOMPLETE (not imported: the launcher needs no torch)
FORWARDED = (signal.SIGTERM, signal.SIGUSR1, signal.SIGURG, signal.SIGINT)
GRACE_S = 60.0
POLL_S = 0.2


def free_port() -> int:
    """A TCP port nobody listens on right now (for the ranks' rendezvous on 127.0.0.1)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rank_environments(nproc: int, port: int, base: dict) -> list[dict]:
    """The environment of each of ``nproc`` ranks on this node."""
    return [base | {"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(nproc), "LOCAL_WORLD_SIZE": str(nproc),
                    "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)} for rank in range(nproc)]


def combined_exit_code(codes: list[int]) -> int:
    """0 if all ranks succeeded; 75 if every failing rank exited 75; else the first other failure's code
    (a rank killed by signal s counts as 128 + s)."""
    codes = [128 - code if code < 0 else code for code in codes]
    others = [code for code in codes if code not in (0, EXIT_INCOMPLETE)]
    if others:
        return others[0]
    return EXIT_INCOMPLETE if EXIT_INCOMPLETE in codes else 0


def run_ranks(command: list[str], nproc: int, environ: dict | None = None) -> int:
    """Start ``nproc`` ranks of ``command``, pass stop signals on, wait; returns :func:`combined_exit_code`."""
    envs = rank_environments(nproc, free_port(), dict(os.environ if environ is None else environ))
    procs = [subprocess.Popen(command, env=env) for env in envs]

    def forward(signum, frame):
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in FORWARDED}
    try:
        failed_at = None
        while any(proc.poll() is None for proc in procs):
            codes = [proc.returncode for proc in procs if proc.returncode is not None]
            if failed_at is None and any(code not in (0, EXIT_INCOMPLETE) for code in codes):
                failed_at = time.monotonic()
                forward(signal.SIGTERM, None)
            if failed_at is not None and time.monotonic() - failed_at > GRACE_S:
                for proc in procs:
                    if proc.poll() is None:
                        proc.kill()
            time.sleep(POLL_S)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return combined_exit_code([proc.returncode for proc in procs])


@click.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option("--nproc", type=click.IntRange(min=1), required=True, help="Ranks to start (one per GPU).")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def main(nproc: int, command: tuple[str, ...]) -> None:
    """Run COMMAND as NPROC ranks of one data-parallel job; exit 75 when they stopped incomplete."""
    sys.exit(run_ranks(list(command), nproc))


if __name__ == "__main__":
    main()
