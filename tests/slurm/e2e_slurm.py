"""End-to-end check of the slurm profile on a real Slurm: run inside ``workflow_scripts/local_slurm.sh run``.

    workflow_scripts/local_slurm.sh run -- python tests/slurm/e2e_slurm.py [--timeout-s 480]

1. Runs, side by side under a hard ``timeout``, the smoke graph with ``--profile profiles/slurm --profile
   tests/slurm/ci_profile`` (configs/smoke.yaml plus tests/slurm/ci_overlay.yaml: no twins) and the retry
   workflow (tests/slurm/retry_workflow: two tiny jobs whose first attempt dies).
2. From Slurm's own records (``scontrol show job``, kept for MinJobAge, and the jobcomp/filetxt file) and the
   Snakemake logs: every non-local job went through sbatch, to the partition with the GPU count the profile
   maps its rule to, with the time limit the profile (CPU rules) or workflow_scripts/time_limits.py (GPU
   rules, at each attempt, grown by the earlier attempts that ran out of time) gives it; no local rule
   reached Slurm.
3. The smoke graph's outputs (tests/smoke_checks.py: CI's only smoke run), and a second dry run with
   nothing to do.
4. Retries that know why a job died (workflow_scripts/retry_policy.py): the ``hog`` job, killed by Slurm's
   memory enforcement on its first try, was resubmitted with mem_growth (4) times the memory and completed;
   the ``tick`` job (a real Trainer whose steps sleep), stopped at its 2-minute first limit unfinished
   (exit 75, or TIMEOUT had Slurm killed it first), was resubmitted with the longer limit, resumed from a
   step > 0 (at most one checkpoint interval lost) and completed; each job's outcome file says why.
Prints what Slurm recorded for each job and closes with "slurm_e2e: N passed, M failed" (exit 1 if M > 0).
Exact resume (the resumed weights equal an uninterrupted run's) is the stage CLIs' own tests' job
(tests/finetune/test_tracks.py, tests/ssl/test_pretrain_cli.py).
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

from slurm_records import dumped_logs, expected_comment, memory_to_mb, parse_run_log, parse_scontrol  # noqa: E402
from smoke_checks import smoke_output_problems  # noqa: E402

from whatnext.runtime.outcome import read_runs  # noqa: E402
from workflow_scripts.retry_policy import killed_for_memory, outcome_file  # noqa: E402
from workflow_scripts.time_limits import runtime_minutes  # noqa: E402

PROFILE = REPO / "profiles" / "slurm"
CI_PROFILE = REPO / "tests" / "slurm" / "ci_profile"
CONFIGS = [REPO / "configs" / "smoke.yaml", REPO / "tests" / "slurm" / "ci_overlay.yaml"]
RETRY_WORKFLOW = REPO / "tests" / "slurm" / "retry_workflow"
RETRY_RULES = ("hog", "tick")
MEM_GROWTH, TICK_FIRST_LIMIT_MIN, TICK_CHECKPOINT_EVERY = 4, 2, 1  # as tests/slurm/retry_workflow/Snakefile sets them
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


def snakemake_command(work: Path, configs: list[Path]) -> list[str]:
    return ["snakemake", "--profile", str(PROFILE), "--profile", str(CI_PROFILE),
            "--snakefile", str(REPO / "Snakefile"), "--directory", str(work), "--configfile", *map(str, configs)]


def retry_command(work: Path) -> list[str]:
    return ["snakemake", "--profile", str(PROFILE), "--profile", str(CI_PROFILE),
            "--snakefile", str(RETRY_WORKFLOW / "Snakefile"), "--directory", str(work)]


def run_side_by_side(commands: dict[str, tuple[list[str], Path]], timeout_s: int) -> dict[str, tuple[int, str, float]]:
    """Each command in its folder under one ``timeout``, all at once: name -> (exit code, log, seconds)."""
    started, running = time.monotonic(), {}
    for name, (command, folder) in commands.items():
        command = ["timeout", "-k", "20", str(timeout_s), *command]
        print(f"$ {shlex.join(command)}", flush=True)
        folder.mkdir(parents=True, exist_ok=True)
        log = open(folder / "snakemake.log", "w")
        running[name] = (subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=folder), log, folder)
    done = {}
    for name, (process, log, folder) in running.items():
        rc = process.wait()
        log.close()
        done[name] = (rc, (folder / "snakemake.log").read_text(), time.monotonic() - started)
    return done


def recorded_runs(folder: Path, logs_dir: str, sub) -> dict[str, dict]:
    """The runs a job's outcome file holds, by the Slurm job id each recorded."""
    path = folder / outcome_file(logs_dir, sub.rule, sub.wildcards)
    return {str(run.get("slurm_job_id")): run for run in read_runs(path)}


def time_outs_before(sub, submissions: list, records: dict, runs: dict[str, dict]) -> int:
    """How many earlier tries of ``sub``'s job ran out of time: Slurm TIMEOUT, or exit 75 inside (Slurm
    records the job as FAILED; the job's outcome file says "incomplete")."""
    earlier = [s for s in submissions if s.job == sub.job and s.attempt < sub.attempt]
    return sum(records[s.slurm_id].state == "TIMEOUT" or runs.get(str(s.slurm_id), {}).get("outcome") == "incomplete"
               for s in earlier if s.slurm_id in records)


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


def check_records(check: Checks, run, records, jobcomp, config, folder: Path) -> None:
    """The smoke graph's jobs against the profile; ``folder``: where the graph ran (its outcome files)."""
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
        if fixed_runtime:
            limit = int(spec["runtime"])
        else:
            runs = recorded_runs(folder, f"{config['results']}/logs", sub)
            limit = runtime_minutes(sub.rule, sub.wildcards, sub.attempt, config,
                                    time_retries=time_outs_before(sub, run.submissions, records, runs))
        want = (expected_comment(sub.rule, sub.wildcards), spec["slurm_partition"], int(spec.get("gpu", 0)), limit)
        got = (rec.comment, rec.partition, rec.gpus, rec.time_limit_min)
        if want != got:
            wrong.append(f"slurm job {sub.slurm_id} ({sub.rule} try {sub.attempt}): want {want}, slurm has {got}")
    check("partition, GPUs and time limit of every job are the profile's / time_limits'", not wrong, "; ".join(wrong[:5]))
    retried = [s for s in run.submissions if s.attempt > 1]
    check("no job of the smoke graph needed a retry", not retried, str([(s.rule, s.wildcards, s.attempt) for s in retried]))
    check("every non-local job snakemake started went through sbatch", run.remote_jobs == submitted_jobs,
          str(sorted(run.remote_jobs ^ submitted_jobs)))


def check_outputs(check: Checks, work: Path, configs: list[Path], config: dict) -> None:
    """The smoke graph's outputs (what the local smoke run checks where this e2e does not run), and a
    second run that has nothing to do."""
    problems = smoke_output_problems(work / config["results"])
    check("the submission names every test clip and the report counts the smoke members", not problems, "; ".join(problems))
    again = subprocess.run([*snakemake_command(work, configs), "--dry-run"], cwd=work, capture_output=True, text=True, timeout=300)
    check("a second run has nothing to do", "Nothing to be done" in again.stdout + again.stderr, (again.stdout + again.stderr)[-2000:])


def tries_of(run, rule: str) -> list:
    return [s for s in run.submissions if s.rule == rule]


def check_memory_retry(check: Checks, work: Path, run, records) -> None:
    """hog: killed by Slurm's memory enforcement, retried with mem_growth times the memory, completed."""
    tries = tries_of(run, "hog")
    if not check("hog was retried", len(tries) >= 2, f"slurm jobs {[s.slurm_id for s in tries]}"):
        return
    first, last = records[tries[0].slurm_id], records[tries[-1].slurm_id]
    check("hog: try 1 was killed by Slurm for its memory (FAILED; the job's output has Slurm's memory-kill line)",
          first.state == "FAILED" and killed_for_memory(first.fields.get("StdOut")),
          f"{first.state}, output {first.fields.get('StdOut')}")
    memory = [memory_to_mb(records[s.slurm_id].fields["MinMemoryNode"]) for s in tries]
    check(f"hog: each retry asked for {MEM_GROWTH}x the memory and the last completed",
          memory == [memory[0] * MEM_GROWTH ** k for k in range(len(tries))] and last.state == "COMPLETED",
          f"memory {memory} MB, last {last.state}")
    runs = [r.get("outcome") for r in read_runs(work / outcome_file("logs", "hog", {}))]
    check("hog: its outcome file shows the killed run (never ended) then the completed one",
          runs[-2:] == ["running", "completed"], str(runs))


def check_time_retry(check: Checks, work: Path, run, records) -> None:
    """tick: stopped at its short first limit unfinished, retried longer, resumed from a step > 0, completed."""
    tries = tries_of(run, "tick")
    if not check("tick was retried", len(tries) >= 2, f"slurm jobs {[s.slurm_id for s in tries]}"):
        return
    first, last = records[tries[0].slurm_id], records[tries[-1].slurm_id]
    check(f"tick: try 1 ended at its {TICK_FIRST_LIMIT_MIN}-minute limit unfinished (exit 75 inside, or TIMEOUT)",
          first.time_limit_min == TICK_FIRST_LIMIT_MIN and first.state in ("FAILED", "TIMEOUT"),
          f"{first.fields['TimeLimit']} {first.state}")
    check("tick: the last try had a longer limit and completed",
          last.time_limit_min > first.time_limit_min and last.state == "COMPLETED", f"{last.fields['TimeLimit']} {last.state}")
    resumed = RESUMED.search((work / "logs" / "tick.log").read_text())
    check("tick: the last try resumed from a step > 0", bool(resumed) and int(resumed.group(1)) > 0,
          resumed.group(0) if resumed else "no 'resumed from' line in logs/tick.log")
    stops = STOPPED.findall(dumped_logs((work / "snakemake.log").read_text(), "logs/tick.log"))
    if resumed and stops:  # a try killed by Slurm (TIMEOUT) prints no stop line: then the check above stands alone
        lost = int(stops[-1][0]) - int(resumed.group(1))
        check(f"tick: at most one checkpoint interval ({TICK_CHECKPOINT_EVERY} step) lost between tries",
              0 <= lost <= TICK_CHECKPOINT_EVERY, f"stopped at step {stops[-1][0]}, resumed at {resumed.group(1)}")
    runs = [r.get("outcome") for r in read_runs(work / outcome_file("logs", "tick", {}))]
    check("tick: its outcome file shows the stopped run then the completed one",
          runs[-2] in ("incomplete", "running") and runs[-1] == "completed", str(runs))


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
    graph_dir, retry_dir = work / "graph", work / "retry"
    done = run_side_by_side({"smoke graph": (snakemake_command(graph_dir, configs), graph_dir),
                             "retry workflow": (retry_command(retry_dir), retry_dir)}, timeout_s)
    for name, (rc, log, seconds) in done.items():
        print(f"{name}: snakemake exit {rc} after {seconds:.0f} s (timeout {timeout_s} s)", flush=True)
        if not check(f"{name} finished on slurm within the timeout", rc == 0, f"exit {rc}"):
            print("\n".join(log.splitlines()[-60:]))
    scontrol = subprocess.run(["scontrol", "show", "job", "--oneliner"], capture_output=True, text=True, timeout=30).stdout
    (work / "scontrol.txt").write_text(scontrol)
    records = parse_scontrol(scontrol)
    jobcomp = parse_scontrol(Path(jobcomp_path).read_text()) if Path(jobcomp_path).is_file() else {}
    graph, retries = parse_run_log(done["smoke graph"][1]), parse_run_log(done["retry workflow"][1])
    config = run_config(configs)
    print_records(graph, records)
    print_records(retries, records)
    retry_ids = {s.slurm_id for s in retries.submissions}
    check_records(check, graph, {k: v for k, v in records.items() if k not in retry_ids},
                  {k: v for k, v in jobcomp.items() if k not in retry_ids}, config, graph_dir)
    if done["smoke graph"][0] == 0:
        check_outputs(check, graph_dir, configs, config)
    check_memory_retry(check, retry_dir, retries, records)
    check_time_retry(check, retry_dir, retries, records)
    if check.failed or keep:
        print(f"work folder (kept): {work}")
    elif created:
        shutil.rmtree(work)
    print(f"e2e took {time.monotonic() - began:.0f} s")
    print(f"slurm_e2e: {check.passed} passed, {check.failed} failed")
    sys.exit(1 if check.failed else 0)


if __name__ == "__main__":
    main()
