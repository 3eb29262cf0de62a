"""The epic task through the graph: configs/epic_smoke.yaml end to end on generated EPIC-like data, and the
brief's configs/epic.yaml as a dry-run job table and a SLURM plan (72 h MaxTime, batch 16 at 32 frames)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from workflow_scripts.graph_table import job_counts
from workflow_scripts.slurm_plan import stand_in_epic_dir

REPO = Path(__file__).resolve().parents[2]

EPIC_JOBS = {
    "link_epic_data": 1,
    "norm_stats": 1,
    "ssl_pretrain": 2,  # the VideoMAE cascade option: 2 generations
    "finetune_scratch": 4,  # ResNet50 + BiLSTM at 16 and 32 frames, two losses each
    "finetune_videomae": 1,
    "cache_probs": 5,
    "member_list": 1,
    "head_stacker": 1,
    "all": 1,
}


def snakemake(workdir: Path, configfile: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
               "--configfile", str(configfile), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def epic_dry_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("epic")
    config = yaml.safe_load((REPO / "configs" / "epic.yaml").read_text())
    config["data"]["challenge"]["dir"] = str(stand_in_epic_dir(tmp / "epic"))
    (tmp / "epic.yaml").write_text(yaml.safe_dump(config))
    result = snakemake(tmp, tmp / "epic.yaml", "--dry-run", "--printshellcmds")
    assert result.returncode == 0, result.stderr + result.stdout
    return result.stdout


def commands(printout: str, module: str) -> list[str]:
    return [line for line in printout.splitlines() if line.startswith(f"python -m {module} ") or f" -m {module} " in line]


def test_epic_dry_run_job_table(epic_dry_run):
    assert job_counts(epic_dry_run) == EPIC_JOBS


def test_epic_members_are_the_briefs(epic_dry_run):
    scratch = commands(epic_dry_run, "whatnext.finetune.track_a_scratch")
    assert len(scratch) == 4
    for line in scratch:
        assert "--arch resnet50 --img-size 224" in line and "--head lstm2" in line and "--task epic --reader video" in line
        assert re.search(r"--batch-size 16 ", line) and "--lr 0.0001" in line and "--weight-decay 0.0001" in line
    frames = sorted(re.search(r"--frames (\d+)", line).group(1) for line in scratch)
    assert frames == ["16", "16", "32", "32"]
    assert sum("--loss focal" in line for line in scratch) == 1 and sum("--loss balanced" in line for line in scratch) == 1
    ssl = commands(epic_dry_run, "whatnext.ssl.pretrain_videomae")
    assert len(ssl) == 2 and all("--task epic" in line and "--frames 16" in line for line in ssl)
    caches = commands(epic_dry_run, "whatnext.inference.cache_probs")
    assert len(caches) == 5 and all("--no-flip --task epic --clips 2 --reader video" in line for line in caches)
    assert len(commands(epic_dry_run, "whatnext.ensemble.head_stacker")) == 1


def test_epic_slurm_plan_fits_72_hours():
    """The plan under profiles/slurm with the brief's cluster: GPU partition MaxTime 72 h."""
    result = subprocess.run([sys.executable, "-m", "workflow_scripts.slurm_plan", "--configfile", str(REPO / "configs" / "epic.yaml"),
                             "--workflow-dir", str(REPO), "--partition-max", "gpu=4320", "--partition-max", "cpu=4320"],
                            cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    rows = {line.split()[0]: line for line in result.stdout.splitlines() if re.match(r"^(finetune|ssl|cache)_\w+\s+\d", line)}
    assert set(rows) == {"finetune_scratch", "ssl_pretrain", "cache_probs", "finetune_videomae"}
    for line in rows.values():
        hours = [int(h) * 60 + int(m) for h, m in re.findall(r"(\d+):(\d\d)", line)]
        assert hours and max(hours) <= 72 * 60, line
    # 32-frame members cost twice the 16-frame ones (clip-epochs x T/4): 6:48 and 13:32 at the profile's rate
    assert re.search(r"finetune_scratch\s+4 .* (\d+):(\d\d)-(\d+):(\d\d)", rows["finetune_scratch"])


@pytest.mark.slow
def test_epic_smoke_graph_runs_end_to_end(tmp_path):
    result = snakemake(tmp_path, REPO / "configs" / "epic_smoke.yaml", "--profile", str(REPO / "profiles" / "local"), timeout=900)
    assert result.returncode == 0, result.stderr[-5000:]
    out = tmp_path / "results" / "epic_smoke"
    assert (out / "data/videos/P01/P01_101.MP4").is_file()  # data.epic_synth.mp4: 1, a train video, read as MP4
    assert not (out / "data/rgb_frames/P01/P01_101").exists() and (out / "data/rgb_frames/P01/P01_102").is_dir()
    test_ids = [line.split(",")[0] for line in (out / "data" / "test.csv").read_text().splitlines()[1:]]
    submission = torch.load(out / "submission.pt", weights_only=True)
    assert [entry["narration_id"] for entry in submission] == test_ids and len(test_ids) == 16
    for entry in submission:
        assert set(entry) == {"narration_id", "verb_output", "noun_output"}
        assert entry["verb_output"].shape == (5,) and entry["noun_output"].shape == (6,)
        assert torch.isclose(entry["verb_output"].sum(), torch.tensor(1.0), atol=1e-4)
        assert torch.isclose(entry["noun_output"].sum(), torch.tensor(1.0), atol=1e-4)
    report = yaml.safe_load((out / "ensemble" / "heads" / "report.json").read_text())
    assert report["members_used"] == ["scratch-conv2d_lstm", "scratch-conv3d_t8"]
    for name in ("verb_top1", "noun_top1", "action_top1", "action_top5"):
        assert 0 <= report["held_out"]["stacker"][name]["mean"] <= 1
    again = snakemake(tmp_path, REPO / "configs" / "epic_smoke.yaml", "--profile", str(REPO / "profiles" / "local"), "--dry-run")
    assert "Nothing to be done" in again.stdout + again.stderr
