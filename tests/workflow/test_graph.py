"""The Snakemake graph itself: dry-run job table of the paper config, reruns, and bad input.

Runs ``snakemake`` in subprocesses on temporary working folders (never on the repo's results/).
Reruns use a stand-in ``python`` (stage_stand_in.py) that writes each job's outputs instantly, so
Snakemake's own rerun logic is tested without training anything.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from workflow_scripts.graph_table import dry_run_jobs, job_counts, members_read_by

REPO = Path(__file__).resolve().parents[2]
STAND_IN = Path(__file__).with_name("stage_stand_in.py")

PAPER_JOBS = {
    "link_challenge_data": 1,
    "norm_stats": 1,
    "ssl_pretrain": 10 + 4 + 4,
    "finetune_cascade": 80 * 2,
    "finetune_mae2d": 3 * 2,
    "finetune_videomae": 2 * 2,
    "finetune_scratch": 10 * 2,
    "cache_probs": 95,  # val + test of each train-only member
    "cache_probs_twin": 95,  # test of each train+val twin
    "member_list": 4,
    "pseudo_label": 3,
    "round_guard": 20 * 3,  # every (generation, head) in rounds 1-3
    "stacker": 1,
    "sidecar": 1,
    "calibration": 1,
    "submission": 1,
    "error_decomposition": 1,
    "report_assets": 1,
    "baseline": 1,
    "all": 1,
}


def snakemake(workdir: Path, configfile: Path, *args: str, env: dict | None = None, repo: Path = REPO) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(repo / "Snakefile"), "--directory", str(workdir), "--configfile", str(configfile), *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)


def write_config(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config))
    return path


def load(name: str) -> dict:
    return yaml.safe_load((REPO / name).read_text())


def challenge_dir(folder: Path) -> Path:
    folder.mkdir(parents=True)
    for name in ("frames.zip", "train.csv", "val.csv", "test.csv"):
        (folder / name).write_text("")
    return folder


@pytest.fixture(scope="module")
def paper_dry_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("paper")
    config = load("configs/paper.yaml")
    config["data"]["challenge"]["dir"] = str(challenge_dir(tmp / "challenge"))
    result = snakemake(tmp, write_config(tmp / "paper.yaml", config), "--dry-run")
    assert result.returncode == 0, result.stderr + result.stdout
    return result.stdout


def test_paper_dry_run_has_the_known_job_count_per_rule(paper_dry_run):
    assert job_counts(paper_dry_run) == PAPER_JOBS


def test_paper_dry_run_feeds_exactly_95_members_to_the_stacker(paper_dry_run):
    members = members_read_by(paper_dry_run, "stacker")
    assert len(members) == 95
    assert sum(m.startswith("cascade-") for m in members) == 80


def test_paper_ssl_generation_g_starts_from_generation_g_minus_1(paper_dry_run):
    jobs = [job for job in dry_run_jobs(paper_dry_run) if job.rule == "ssl_pretrain"]
    for job in jobs:
        family, gen = job.fields["wildcards"].replace("family=", "").replace("gen=", "").split(", ")
        previous = [p for p in job.inputs if p.endswith("encoder.pt")]
        expected = [f"results/paper/ssl/{family}/gen{int(gen) - 1}/encoder.pt"] if int(gen) > 1 else []
        assert previous == expected, job.fields


def test_paper_round_r_members_train_on_round_r_pseudo_labels(paper_dry_run):
    jobs = [job for job in dry_run_jobs(paper_dry_run) if job.rule == "finetune_cascade"]
    for job in jobs:
        round_ = job.fields["wildcards"].split("round=")[1].split(",")[0]
        pseudo = [p for p in job.inputs if "/pseudo/" in p]
        assert pseudo == ([f"results/paper/pseudo/round{round_}.csv"] if round_ != "0" else []), job.fields


def test_paper_sidecar_reads_the_train_val_twins_of_all_95_members(paper_dry_run):
    assert len(members_read_by(paper_dry_run, "sidecar")) == 95


# ---------------------------------------------------------------- the seeds' options (configs/smoke_options.yaml)

OPTIONS_MEMBERS = {"jepa-j2a", "mae2d-t1", "scratch-conv2d.fold0of2", "scratch-conv2d.fold1of2", "scratch-conv2d.vfold0of2",
                   "scratch-conv2d.vfold1of2"}
OPTIONS_JOBS = {
    "synth_data": 1,
    "norm_stats": 1,
    "ssl_pretrain": 2 + 1,  # the JEPA family's two generations, the TATS family's one
    "finetune_jepa": 1 * 2,
    "finetune_mae2d": 1 * 2,  # the member on the TATS-masked encoder, with its twin
    "finetune_scratch": 4 * 2,  # 2 "train only" + 2 "train + val" fold members, each with its twin
    "cache_probs": 6,  # val + test of each train-only member
    "cache_probs_twin": 6,  # test of each train+val twin
    "member_list": 1,
    "baseline": 1,
    "stacker": 1,
    "sidecar": 1,
    "calibration": 1,
    "submission": 1,
    "error_decomposition": 1,
    "report_assets": 1,
    "all": 1,
}


@pytest.fixture(scope="module")
def options_dry_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("options")
    result = snakemake(tmp, REPO / "configs/smoke_options.yaml", "--dry-run", "--printshellcmds")
    assert result.returncode == 0, result.stderr + result.stdout
    return result.stdout


def test_options_dry_run_has_the_known_job_count_per_rule(options_dry_run):
    assert job_counts(options_dry_run) == OPTIONS_JOBS


def test_options_fold_and_jepa_members_are_stacked_and_reinjected_like_any_other(options_dry_run):
    assert members_read_by(options_dry_run, "stacker") == OPTIONS_MEMBERS
    assert members_read_by(options_dry_run, "sidecar") == OPTIONS_MEMBERS


def test_the_stacker_and_the_report_read_the_baseline_cache_beside_the_members(options_dry_run):
    jobs = {job.rule: job for job in dry_run_jobs(options_dry_run)}
    for rule in ("stacker", "report_assets"):
        assert "results/smoke_options/baseline/train-val.npz" in jobs[rule].inputs, rule
    assert "results/smoke_options/baseline/submission.csv" in jobs["all"].inputs


def test_options_jobs_pass_the_fold_jepa_and_tats_settings_to_their_clis(options_dry_run):
    shells = [line for line in options_dry_run.splitlines() if line.startswith("Shell command: python -m whatnext")]
    vfold1_twin = [c for c in shells if "--out results/smoke_options/models/scratch-conv2d.vfold1of2/trainval.pt" in c]
    assert len(vfold1_twin) == 1 and "--fold 1/2 --fold-pool trainval --fit trainval" in vfold1_twin[0]
    jepa_gen2 = [c for c in shells if "pretrain_jepa" in c and "gen2/encoder.pt --metrics" in c]
    assert len(jepa_gen2) == 1 and "--init-encoder results/smoke_options/ssl/jepa/gen1/encoder.pt" in jepa_gen2[0]
    assert "--context 2 --cov-coeff 100 --std-coeff 10 --steps 2" in jepa_gen2[0]
    tats = [c for c in shells if "pretrain_mae2d" in c]
    assert len(tats) == 1 and "--masking tats" in tats[0] and "--tats-warmup-epochs 0.5" in tats[0]
    assert all("--masking" not in c for c in shells if "pretrain_jepa" in c)
    jepa_member = [c for c in shells if "track_a_jepa" in c]
    assert len(jepa_member) == 2 and all("--encoder-ckpt results/smoke_options/ssl/jepa/gen2/encoder.pt" in c
                                         for c in jepa_member)


# ---------------------------------------------------------------- reruns (smoke config, stand-in stages)


def stand_in_env(tmp: Path) -> dict:
    bin_dir = tmp / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "python"
    fake.write_text(f"#!/bin/sh\nexec {sys.executable} {STAND_IN} \"$@\"\n")
    fake.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


def smoke_with(tmp: Path, name: str, change=None) -> Path:
    config = load("configs/smoke.yaml")
    if change:
        change(config)
    return write_config(tmp / name, config)


def planned_with_reasons(printout: str) -> str:
    """One line per job of a dry run: rule, wildcards and Snakemake's reason (printed by default in 9.x)."""
    jobs = dry_run_jobs(printout)
    lines = [f"{job.rule} [{job.fields.get('wildcards', '')}]: {job.fields.get('reason')}" for job in jobs]
    return "planned jobs:\n" + "\n".join(lines) if jobs else printout[-3000:]


@pytest.fixture(scope="module")
def finished_smoke_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("smoke")
    result = snakemake(tmp, smoke_with(tmp, "smoke.yaml"), "--cores", "2", "--show-failed-logs", env=stand_in_env(tmp))
    assert result.returncode == 0, result.stderr[-3000:]
    return tmp


def test_second_run_with_nothing_changed_runs_nothing(finished_smoke_run):
    tmp = finished_smoke_run
    result = snakemake(tmp, tmp / "smoke.yaml", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "Nothing to be done" in result.stdout + result.stderr, planned_with_reasons(result.stdout)


@pytest.fixture(scope="module")
def copied_repo_run(tmp_path_factory):
    """A copy of the workflow and the package (so its code can be changed), and a stand-in smoke run of it."""
    tmp = tmp_path_factory.mktemp("copied")
    repo = tmp / "repo"
    repo.mkdir()
    for name in ("Snakefile", "config.yaml"):
        shutil.copy2(REPO / name, repo / name)
    for name in ("rules", "schemas", "report", "envs", "workflow_scripts", "whatnext"):
        shutil.copytree(REPO / name, repo / name, ignore=shutil.ignore_patterns("__pycache__"))
    result = snakemake(tmp, smoke_with(tmp, "smoke.yaml"), "--cores", "2", env=stand_in_env(tmp), repo=repo)
    assert result.returncode == 0, result.stderr[-3000:]
    return tmp, repo


def test_changing_one_ensemble_module_reruns_exactly_the_jobs_whose_stage_imports_it(copied_repo_run):
    tmp, repo = copied_repo_run
    sidecar = repo / "whatnext" / "ensemble" / "sidecar.py"
    original = sidecar.read_text()
    sidecar.write_text(original + "\n# a change to the sidecar's code\n")
    try:
        result = snakemake(tmp, tmp / "smoke.yaml", "--dry-run", repo=repo)
    finally:
        sidecar.write_text(original)
    assert result.returncode == 0, result.stderr[-3000:]
    assert job_counts(result.stdout) == {"sidecar": 1, "submission": 1, "all": 1}, planned_with_reasons(result.stdout)
    sidecar_job = next(job for job in dry_run_jobs(result.stdout) if job.rule == "sidecar")
    assert "params" in sidecar_job.fields["reason"].lower(), sidecar_job.fields
    unchanged = snakemake(tmp, tmp / "smoke.yaml", "--dry-run", repo=repo)
    assert "Nothing to be done" in unchanged.stdout + unchanged.stderr, planned_with_reasons(unchanged.stdout)


def test_changing_a_last_round_member_reruns_only_that_member_and_the_ensemble(finished_smoke_run):
    tmp = finished_smoke_run

    def more_epochs(config):
        config["members"]["cascade"]["overrides"] = {"cascade-g2-attn-r1": {"max_epochs": 3}}

    result = snakemake(tmp, smoke_with(tmp, "changed.yaml", more_epochs), "--dry-run")
    assert job_counts(result.stdout) == {
        "finetune_cascade": 2,  # its train and train+val models
        "round_guard": 1,  # its round's guard compares it with round 0 again
        "cache_probs": 1,
        "cache_probs_twin": 1,
        "stacker": 1,
        "sidecar": 1,
        "calibration": 1,
        "submission": 1,
        "error_decomposition": 1,
        "report_assets": 1,
        "all": 1,
    }
    retrained = {job.fields["wildcards"] for job in dry_run_jobs(result.stdout) if job.rule == "finetune_cascade"}
    assert retrained == {"gen=2, head=attn, round=1, fit=train", "gen=2, head=attn, round=1, fit=trainval"}


def test_changing_a_round_0_member_also_reruns_the_pseudo_labels_and_their_consumers(finished_smoke_run):
    tmp = finished_smoke_run

    def more_epochs(config):
        config["members"]["scratch"]["variants"]["conv3d"]["train"] = {"max_epochs": 3}

    counts = job_counts(snakemake(tmp, smoke_with(tmp, "changed0.yaml", more_epochs), "--dry-run").stdout)
    assert counts["finetune_scratch"] == 2 and counts["pseudo_label"] == 1
    assert counts["finetune_cascade"] == 2  # the round-1 member trains on the new pseudo-labels
    assert "finetune_mae2d" not in counts and "ssl_pretrain" not in counts


def test_html_report_builds_and_holds_the_report_assets(finished_smoke_run):
    tmp = finished_smoke_run
    result = snakemake(tmp, tmp / "smoke.yaml", "--report", "report.html")
    assert result.returncode == 0, result.stderr
    html = (tmp / "report.html").read_text()
    for name in ("cascade_table.html", "held_out.csv", "confusion.png", "stacker_weights.png", "decomposition.csv"):
        assert name in html


def test_ensemble_from_existing_caches_builds_no_training_job(finished_smoke_run):
    tmp = finished_smoke_run
    config = load("configs/from_caches.yaml")
    config["data"]["challenge"]["dir"] = "results/smoke/data"
    config["ensemble"]["caches"] = {"dir": "results/smoke/probs", "members": "results/smoke/ensemble/members/final.txt"}
    result = snakemake(tmp, write_config(tmp / "from_caches.yaml", config), "--dry-run")
    assert result.returncode == 0, result.stderr
    assert set(job_counts(result.stdout)) == {
        "link_challenge_data", "norm_stats", "baseline", "stacker", "sidecar", "calibration",
        "submission", "error_decomposition", "report_assets", "all",
    }


# ---------------------------------------------------------------- bad input: clear error before any job


def failing_dry_run(tmp: Path, change) -> str:
    result = snakemake(tmp, smoke_with(tmp, "bad.yaml", change), "--dry-run")
    assert result.returncode != 0
    assert not (tmp / "results").exists()
    return result.stdout + result.stderr


def test_schema_failure_names_the_key(tmp_path):
    def heads_not_a_list(config):
        config["members"]["cascade"]["heads"] = "attn"

    output = failing_dry_run(tmp_path, heads_not_a_list)
    assert "'attn' is not of type 'array'" in output and "heads" in output


def test_misspelt_key_is_named(tmp_path):
    def typo(config):
        config["members"]["scratch"]["variants"]["conv3d"]["haed"] = "attn"

    assert "'haed' was unexpected" in failing_dry_run(tmp_path, typo)


def test_excluding_an_unknown_member_names_it(tmp_path):
    def exclude(config):
        config["ensemble"]["exclude"] = ["scratch-nope"]

    assert "ensemble.exclude: unknown member id 'scratch-nope'" in failing_dry_run(tmp_path, exclude)


def test_member_list_id_matching_no_rule_names_file_and_id(tmp_path):
    members = tmp_path / "members.txt"
    members.write_text("scratch-a\nresnet50\n")

    def from_caches(config):
        config["ensemble"]["caches"] = {"dir": str(tmp_path), "members": str(members)}

    output = failing_dry_run(tmp_path, from_caches)
    assert "members.txt:2: member id 'resnet50' matches no finetune rule" in output


def test_missing_challenge_data_names_the_key_and_path(tmp_path):
    def challenge(config):
        config["data"] = {"source": "challenge", "challenge": {"dir": str(tmp_path / "nowhere")}}

    assert "data.challenge.dir: folder" in failing_dry_run(tmp_path, challenge)


# ---------------------------------------------------------------- rendering with dot


@pytest.fixture(scope="session")
def dot_binary():
    """graphviz's dot; CI (CI=true, root) installs Debian's graphviz, elsewhere the tests skip without it."""
    if shutil.which("dot") is None and os.environ.get("CI") == "true" and os.geteuid() == 0:
        for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "graphviz"]):
            subprocess.run(command, capture_output=True, timeout=600)
    if shutil.which("dot") is None:
        pytest.skip("graphviz dot not installed (apt-get install graphviz)")
    return shutil.which("dot")


@pytest.mark.parametrize("graph, config_name", [("--rulegraph", "configs/paper.yaml"), ("--dag", "configs/smoke.yaml")])
def test_graph_renders_with_dot(tmp_path, graph, config_name, dot_binary):
    config = load(config_name)
    if config["data"]["source"] == "challenge":
        config["data"]["challenge"]["dir"] = str(challenge_dir(tmp_path / "challenge"))
    result = snakemake(tmp_path, write_config(tmp_path / "c.yaml", config), graph)
    assert result.returncode == 0, result.stderr
    svg = subprocess.run(["dot", "-Tsvg"], input=result.stdout, capture_output=True, text=True)
    assert svg.returncode == 0, svg.stderr
    assert "<svg" in svg.stdout and "stacker" in svg.stdout
