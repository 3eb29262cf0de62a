"""Atomic writes after a kill -9: temporaries never sit beside the target, stale ones are swept by the
next write of the same target, and clearing the resume state copes with orphans."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import torch

from whatnext.runtime.atomic import STALE_AFTER_S, TMP_DIR, atomic_path, write_json
from whatnext.runtime.trainer import STATE_FILE, Trainer, TrainOptions

KILLED_MID_WRITE = """
import os, signal, sys
from whatnext.runtime.atomic import atomic_path
with atomic_path(sys.argv[1]) as tmp:
    tmp.write_bytes(b"half a checkpoint")
    os.kill(os.getpid(), signal.SIGKILL)
"""


def kill_mid_write(target: Path) -> None:
    """Run a writer of ``target`` that is killed with SIGKILL halfway through its write."""
    done = subprocess.run([sys.executable, "-c", KILLED_MID_WRITE, str(target)], env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert done.returncode == -9


def listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_temporaries_are_written_in_their_own_folder_which_goes_when_empty(tmp_path):
    with atomic_path(tmp_path / "m.pt") as tmp:
        assert tmp.parent == tmp_path / TMP_DIR
        assert listing(tmp_path) == [TMP_DIR, f"{TMP_DIR}/{tmp.name}"]
        tmp.write_bytes(b"weights")
    assert listing(tmp_path) == ["m.pt"]


def test_kill_mid_write_leaves_the_old_target_and_nothing_beside_it(tmp_path):
    write_json(tmp_path / "m.json", {"v": 1})
    kill_mid_write(tmp_path / "m.json")
    assert (tmp_path / "m.json").read_text().startswith('{\n  "v": 1')
    orphans = list((tmp_path / TMP_DIR).iterdir())
    assert len(orphans) == 1 and orphans[0].name.startswith("m.json~")
    assert [p.name for p in tmp_path.iterdir() if p.name != TMP_DIR] == ["m.json"]


def test_the_next_write_of_the_target_sweeps_its_orphans(tmp_path):
    kill_mid_write(tmp_path / "m.pt")
    first = list((tmp_path / TMP_DIR).iterdir())
    kill_mid_write(tmp_path / "m.pt")  # its start swept the first orphan, then it left its own
    second = list((tmp_path / TMP_DIR).iterdir())
    assert len(first) == len(second) == 1 and first != second
    write_json(tmp_path / "m.pt", {"v": 2})
    assert listing(tmp_path) == ["m.pt"]


def test_live_writers_and_other_targets_are_left_alone(tmp_path):
    folder = tmp_path / TMP_DIR
    folder.mkdir()
    live = folder / f"m.pt~{socket.gethostname()}~{os.getppid()}~abc.tmp"  # our parent: alive
    other_target = folder / "n.pt~somehost~1~abc.tmp"
    remote_recent = folder / "m.pt~otherhost~12345~abc.tmp"
    remote_old = folder / "m.pt~otherhost~12345~old.tmp"
    for path in (live, other_target, remote_recent, remote_old):
        path.write_bytes(b"x")
    old = time.time() - STALE_AFTER_S - 60
    os.utime(remote_old, (old, old))
    write_json(tmp_path / "m.pt", {"v": 3})
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in (live, other_target, remote_recent))


def test_clear_resume_state_removes_the_resume_dir_despite_orphans(tmp_path):
    resume = tmp_path / "resume"
    options = TrainOptions(max_epochs=1, batch_size=2, resume_dir=resume)
    trainer = Trainer(torch.nn.Linear(2, 1), [(torch.zeros(2), torch.zeros(1))] * 4, lambda m, b: m(b[0]).sum(), options, fingerprint={})
    trainer.save_state()
    kill_mid_write(resume / STATE_FILE)  # a later save, killed: orphan in resume/.atomic-tmp
    (resume / f".{STATE_FILE}.k3j2l1.tmp").write_bytes(b"x")  # an orphan as earlier versions left it
    trainer.clear_resume_state()
    assert not resume.exists()


def test_finished_files_get_the_umask_mode_not_mkstemps_0600(tmp_path):
    """Group members on a shared cluster read the caches: the mode follows the umask as open() would."""
    old = os.umask(0o027)
    try:
        write_json(tmp_path / "a.json", {"x": 1})
        os.umask(0o022)
        write_json(tmp_path / "b.json", {"x": 1})
    finally:
        os.umask(old)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "b.json").stat().st_mode & 0o777 == 0o644
