"""The retry workflow's out-of-memory job: records its start in --outcome, then holds --mb MB for 4 s."""

import time
from pathlib import Path

import click

from whatnext.runtime.outcome import recorded


@click.command()
@click.option("--mb", type=int, required=True, help="MB to allocate, every page touched.")
@click.option("--outcome", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
def main(mb: int, outcome: Path, out: Path) -> None:
    with recorded(outcome):
        block = bytearray(mb * 2**20)
        block[::4096] = b"\1" * len(block[::4096])  # resident, not just reserved
        time.sleep(4)  # Slurm's memory poll (JobAcctGatherFrequency=task=1) sees it
    out.write_text(f"held {mb} MB\n")


if __name__ == "__main__":
    main()
