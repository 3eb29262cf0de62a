"""End-to-end check of the slurm profile on a real Slurm: run inside ``workflow_scripts/local_slurm.sh run``.

    workflow_scripts/local_slurm.sh run -- python tests/slurm/e2e_slurm.py [--timeout-s 480]

1. Runs the smoke graph with ``--profile profiles/slurm --profile tests/slurm/ci_profile`` (configs/smoke.yaml
   plus tests/slurm/ci_overlay.yaml) under a hard ``timeout``.
2. From Slurm's own records (``scontrol show job``, kept for MinJobAge, and the jobcomp/filetxt file) and the
   Snakemake log: every non-local job went through sbatch, to the partition with the GPU count the profile
   maps its rule to, with the time limit the profile (CPU rules) or workflow_scripts/time_limits.py (GPU
   rules, at each attempt) gives it; no local rule reached Slurm.
3. The smoke graph's outputs (tests/smoke_checks.py: CI's only smoke run), and a second dry run with
   nothing to do.
4. The MAE-2D SSL job, given a 2-minute first limit, stopped at it unfinished (its state saved; exit 75,
   or TIMEOUT if Slurm killed it first), was resubmitted with the longer limit of the next attempt, resumed
   from a step > 0, and ended with exactly the weights of an uninterrupted run of the same command outside
   Slurm (started beside the graph as soon as Snakemake prints the command).
Prints what Slurm recorded for each job and closes with "slurm_e2e: N passed, M failed" (exit 1 if M > 0).
"""

from __future__ import annotations

import copy
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

sys.path.insert(0, str(REPO / "tests"))

from slurm_records import dumped_logs, expected_comment, parse_run_log, parse_scontrol, shell_parts  # noqa: E402
from smoke_checks import smoke_output_problems  # noqa: E402

from workflow_scripts.time_limits import runtime_minutes  # noqa: E402

PROFILE = REPO / "profiles" / "slurm"
CI_PROFILE = REPO / "tests" / "slurm" / "ci_profile"
CONFIGS = [REPO / "configs" / "smoke.yaml", REPO / "tests" / "slurm" / "ci_overlay.yaml"]
# The job given too short a first limit (ci_profile: runtime_min_by_rule; ci_overlay: its long training).
RESUME_RULE, RESUME_WILDCARDS, RESUME_KIND = "ssl_pretrain", {"family": "mae2d", "gen": "1"}, "encoder"
RESUMED = re.compile(r"resumed from \S+ at step (\d+)/(\d+)")
STOPPED = re.compile(r"incomplete: stopped at step (\d+)/(\d+)")  # in the failed tries' logs Snakemake prints


class Checks:
    """Named pass/fail checks, printed as they run."""

    def __init__(self):
        self.passed = self.failed = 0

    def __call__(self, name: str, ok: bool, detail: str = "") -> bool:
        print(f"{'PASS' if ok else 'FAIL'} {name}" + (f": {detail}" if detail and not ok else ""), flush=True)
        self.passed += ok
        self.failed += not ok
        return ok


def merged(*layers: dict) -> dict:
    out: dict = {}
    for layer in layers:
        for key, value in layer.items():
            out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else copy.deepcopy(value)
    return out


def run_config(configs: list[Path]) -> dict:
    """The workflow config of the run: the config files, then the CI profile's ``config:`` on top."""
    layers = [yaml.safe_load(p.read_text()) for p in configs]
    ci_profile = yaml.safe_load((CI_PROFILE / "config.yaml").read_text())
    return merged(*layers, ci_profile["config"])


def profile_mapping(rule: str) -> tuple[dict, bool]:
    """The resources the real profile gives ``rule`` (defaults, then its own), and whether its own set a runtime."""
    profile = yaml.safe_load((PROFILE / "config.yaml").read_text())
    own = profile["set-resources"].get(rule, {})
    return {**profile["default-resources"], **own}, "runtime" in own


def resume_job_submissions(run) -> list:
    return [s for s in run.submissions if s.rule == RESUME_RULE and s.wildcards == RESUME_WILDCARDS]


def start_reference(work: Path, shell: str) -> subprocess.Popen:
    """The resumed job's command, run outside Slurm into ref/ without any limit: the uninterrupted weights."""
    ref = work / "ref"
    ref.mkdir()
    argv, _ = shell_parts(shell)
    for flag, name in (("--out", "model.pt"), ("--metrics", "metrics.json"), ("--resume-dir", "resume")):
        argv[argv.index(flag) + 1] = str(ref / name)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    with open(ref / "train.log", "w") as log:
        return subprocess.Popen(argv, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)


def snakemake_command(work: Path, configs: list[Path]) -> list[str]:
    return ["snakemake", "--profile", str(PROFILE), "--profile", str(CI_PROFILE),
            "--snakefile", str(REPO / "Snakefile"), "--directory", str(work), "--configfile", *map(str, configs)]


def run_snakemake(work: Path, timeout_s: int, configs: list[Path]) -> tuple[int, str, float, subprocess.Popen | None]:
    """The smoke graph on Slurm; the uninterrupted reference run starts beside it as soon as its command is known."""
    command = ["timeout", "-k", "20", str(timeout_s), *snakemake_command(work, configs)]
    print("$ " + shlex.join(command), flush=True)
    start = time.monotonic()
    reference = None
    with open(work / "snakemake.log", "w") as log:
        snakemake = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=work)
        while snakemake.poll() is None:
            time.sleep(2)
            if reference is None:
                tries = resume_job_submissions(parse_run_log((work / "snakemake.log").read_text()))
                if tries and tries[0].shell:
                    reference = start_reference(work, tries[0].shell)
    return snakemake.returncode, (work / "snakemake.log").read_text(), time.monotonic() - start, reference


def same_weights(a: Path, b: Path) -> tuple[bool, str]:
    import torch

    from whatnext.runtime.checkpoint import load_checkpoint

    left, right = load_checkpoint(a, expected_kind=RESUME_KIND), load_checkpoint(b, expected_kind=RESUME_KIND)
    sa, sb = left["state_dict"], right["state_dict"]
    if sa.keys() != sb.keys():
        return False, "different parameter names"
    differing = [k for k in sa if not torch.equal(sa[k], sb[k])]
    return not differing, f"{len(differing)} of {len(sa)} tensors differ (first: {differing[:3]})"


def print_records(run, records) -> None:
    print("\nWhat Slurm recorded (scontrol show job):")
    print(f"{'id':>4} {'rule':<20} {'wildcards':<26} {'try':>3} {'partition':<9} {'GPUs':>4} {'limit':>6} {'ran':>8} {'state':<10} exit")
    for sub in run.submissions:
        rec = records.get(sub.slurm_id)
        if rec is None:
            continue
        wildcards = ",".join(sub.wildcards.values())
        print(f"{sub.slurm_id:>4} {sub.rule:<20} {wildcards:<26} {sub.attempt:>3} {rec.partition:<9} {rec.gpus:>4} "
              f"{rec.fields['TimeLimit']:>6} {rec.fields.get('RunTime', ''):>8} {rec.state:<10} {rec.fields.get('ExitCode', '')}")


def check_records(check: Checks, run, records, jobcomp, config) -> None:
    submitted_jobs = {s.job for s in run.submissions}
    local_rules = {rule for rule, _ in run.local_jobs}
    check("slurm ran jobs", bool(run.submissions))
    check("no local rule went to slurm", not ({s.rule for s in run.submissions} & local_rules), str(local_rules))
    check("every submission has a slurm record", all(s.slurm_id in records for s in run.submissions),
          str([s.slurm_id for s in run.submissions if s.slurm_id not in records]))
    check("slurm holds no job snakemake did not submit", set(records) == {s.slurm_id for s in run.submissions},
          str(sorted(set(records) - {s.slurm_id for s in run.submissions})))
    check("jobcomp recorded every submission as finished", all(s.slurm_id in jobcomp for s in run.submissions),
          str([s.slurm_id for s in run.submissions if s.slurm_id not in jobcomp]))
    wrong = []
    for sub in run.submissions:
        rec = records.get(sub.slurm_id)
        if rec is None:
            continue
        spec, fixed_runtime = profile_mapping(sub.rule)
        limit = int(spec["runtime"]) if fixed_runtime else runtime_minutes(sub.rule, sub.wildcards, sub.attempt, config)
        want = (expected_comment(sub.rule, sub.wildcards), spec["slurm_partition"], int(spec.get("gpu", 0)), limit)
        got = (rec.comment, rec.partition, rec.gpus, rec.time_limit_min)
        if want != got:
            wrong.append(f"slurm job {sub.slurm_id} ({sub.rule} try {sub.attempt}): want {want}, slurm has {got}")
    check("partition, GPUs and time limit of every job are the profile's / time_limits'", not wrong, "; ".join(wrong[:5]))
    check("every non-local job snakemake started went through sbatch", run.remote_jobs == submitted_jobs,
          str(sorted(run.remote_jobs ^ submitted_jobs)))


def check_outputs(check: Checks, work: Path, configs: list[Path], config: dict) -> None:
    """The smoke graph's outputs (what the local smoke run checks where this e2e does not run), and a
    second run that has nothing to do."""
    problems = smoke_output_problems(work / config["results"])
    check("the submission names every test clip and the report counts the smoke members", not problems, "; ".join(problems))
    again = subprocess.run([*snakemake_command(work, configs), "--dry-run"], cwd=work, capture_output=True, text=True, timeout=300)
    check("a second run has nothing to do", "Nothing to be done" in again.stdout + again.stderr, (again.stdout + again.stderr)[-2000:])


def check_resume(check: Checks, work: Path, run, records, reference: subprocess.Popen | None, checkpoint_every: int) -> None:
    """The job given too short a first limit: stopped unfinished, retried longer, resumed, same weights."""
    name = f"{RESUME_RULE}[{','.join(RESUME_WILDCARDS.values())}]"
    tries = resume_job_submissions(run)
    if not check(f"{name} was retried", len(tries) >= 2, f"slurm jobs {[s.slurm_id for s in tries]}"):
        return
    first, last = records[tries[0].slurm_id], records[tries[-1].slurm_id]
    check(f"{name}: try 1 ended at its short limit unfinished (exit 75 or TIMEOUT)",
          first.state in ("FAILED", "TIMEOUT"), f"{first.fields['TimeLimit']} {first.state}")
    check(f"{name}: the last try had a longer limit and completed",
          last.time_limit_min > first.time_limit_min and last.state == "COMPLETED", f"{last.fields['TimeLimit']} {last.state}")
    argv, log_path = shell_parts(tries[-1].shell or tries[0].shell)
    resumed = RESUMED.search((work / log_path).read_text())
    check(f"{name}: the last try resumed from a step > 0", bool(resumed) and int(resumed.group(1)) > 0,
          resumed.group(0) if resumed else f"no 'resumed from' line in {log_path}")
    stops = STOPPED.findall(dumped_logs((work / "snakemake.log").read_text(), log_path))
    if resumed and stops:  # a try killed by Slurm (TIMEOUT) prints no stop line: then the check above stands alone
        lost = int(stops[-1][0]) - int(resumed.group(1))
        check(f"{name}: at most one checkpoint interval ({checkpoint_every} steps) lost between tries",
              0 <= lost <= checkpoint_every, f"stopped at step {stops[-1][0]}, resumed at {resumed.group(1)}")
    if not check(f"{name}: the uninterrupted reference run started", reference is not None):
        return
    started = time.monotonic()
    rc = reference.wait()
    print(f"uninterrupted reference run: exit {rc}, waited {time.monotonic() - started:.0f} s after the graph", flush=True)
    if check(f"{name}: the uninterrupted reference run succeeded", rc == 0, f"exit {rc}, see {work / 'ref' / 'train.log'}"):
        ok, detail = same_weights(work / argv[argv.index("--out") + 1], work / "ref" / "model.pt")
        check(f"{name}: resumed weights equal the uninterrupted run's", ok, detail)


@click.command()
@click.option("--timeout-s", type=int, default=1200, show_default=True, help="Hard limit of the snakemake run.")
@click.option("--work", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Work folder (default: a new temporary one, removed if every check passed).")
@click.option("--keep", is_flag=True, help="Keep the temporary work folder even if every check passed.")
@click.option("--configfile", "extra_configs", multiple=True, type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Another config merged over the smoke graph's (repeatable).")
def main(timeout_s: int, work: Path | None, keep: bool, extra_configs: tuple[Path, ...]) -> None:
    """Run the smoke graph on the local Slurm and check Slurm's records (see the module docstring)."""
    jobcomp_path = os.environ.get("LOCAL_SLURM_JOBCOMP")
    if not jobcomp_path:
        raise click.ClickException("run me inside workflow_scripts/local_slurm.sh run -- ... (LOCAL_SLURM_JOBCOMP is unset)")
    began = time.monotonic()
    created = work is None
    work = work or Path(tempfile.mkdtemp(prefix="slurm-e2e-"))
    work.mkdir(parents=True, exist_ok=True)
    check = Checks()
    configs = CONFIGS + [p.resolve() for p in extra_configs]
    rc, log, seconds, reference = run_snakemake(work, timeout_s, configs)
    print(f"snakemake exit {rc} after {seconds:.0f} s (timeout {timeout_s} s)", flush=True)
    if not check("smoke graph finished on slurm within the timeout", rc == 0, f"exit {rc}"):
        print("\n".join(log.splitlines()[-60:]))
    scontrol = subprocess.run(["scontrol", "show", "job", "--oneliner"], capture_output=True, text=True, timeout=30).stdout
    (work / "scontrol.txt").write_text(scontrol)
    records = parse_scontrol(scontrol)
    jobcomp = parse_scontrol(Path(jobcomp_path).read_text()) if Path(jobcomp_path).is_file() else {}
    run = parse_run_log(log)
    config = run_config(configs)
    print_records(run, records)
    check_records(check, run, records, jobcomp, config)
    if rc == 0:
        check_outputs(check, work, configs, config)
        every = merged(config.get("train", {}), config["ssl"][RESUME_WILDCARDS["family"]].get("train", {}))["checkpoint_every"]
        check_resume(check, work, run, records, reference, every)
    if reference is not None and reference.poll() is None:
        reference.kill()
    if check.failed or keep:
        print(f"work folder (kept): {work}")
    elif created:
        shutil.rmtree(work)
    print(f"e2e took {time.monotonic() - began:.0f} s")
    print(f"slurm_e2e: {check.passed} passed, {check.failed} failed")
    sys.exit(1 if check.failed else 0)


if __name__ == "__main__":
    main()
