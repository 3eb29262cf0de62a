"""All Python of the graph: config validation, paths, the member table and the input functions."""

import functools
import os
import re
import shlex
import sys

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

sys.path.insert(0, workflow.basedir)

from workflow_scripts import config_checks, member_table as member_table_lib
from workflow_scripts.code_fingerprint import stage_fingerprint
from workflow_scripts.cli_manifest import FINETUNE_CLI, load_manifest
from workflow_scripts.member_table import ConfigError
from workflow_scripts.training_settings import job_seed, merge_settings, render_flags

from workflow_scripts import resources as job_resources, retry_policy
from workflow_scripts import time_limits as job_limits

validate(config, schema="../schemas/config.schema.yaml")

try:
    # Snakemake silently ignores set-resources of a profile naming no known job: refuse those.
    job_limits.check_profile_rules(
        workflow.resource_settings.overwrite_resources, workflow.basedir
    )
except job_limits.TimeLimitError as err:
    raise WorkflowError(f"profile error: {err}") from None

R = config["results"]
DATA = f"{R}/data"
LOGS = f"{R}/logs"
BENCH = f"{R}/benchmarks"
FROM_CACHES = config["ensemble"]["caches"] is not None
CACHE_DIR = config["ensemble"]["caches"]["dir"] if FROM_CACHES else f"{R}/probs"
TWINS = config["twins"]
TASK = config["task"]["name"]
EPIC = TASK == "epic"
CONDA_ENV = "../envs/whatnext.yaml"  # relative to rules/

try:
    if config["data"]["source"] == "challenge":
        CHALLENGE_FILES = (
            config_checks.epic_data_files(config)
            if EPIC
            else config_checks.challenge_data_files(config)
        )
    if EPIC:
        config_checks.check_epic_graph(config)
    if FROM_CACHES:
        MEMBERS = {}
        STACKED = config_checks.read_member_ids(
            config["ensemble"]["caches"]["members"], "ensemble.caches.members"
        )
        config_checks.existing_cache_files(
            CACHE_DIR,
            STACKED,
            [("train", "val"), ("train", "test")]
            + ([("trainval", "test")] if TWINS else []),
            "ensemble.caches.dir",
        )
    else:
        config_checks.check_names(config, load_manifest())
        MEMBERS = member_table_lib.member_table(config)
        STACKED = member_table_lib.stacked_members(
            MEMBERS, config["ensemble"]["exclude"]
        )
except ConfigError as err:
    raise WorkflowError(f"config error: {err}") from None


def _alternatives(names):
    """A regex matching exactly the given names (none: matches nothing)."""
    return "|".join(re.escape(n) for n in sorted(names)) or "(?!)"


SSL_FAMILIES = config.get("ssl", {})


wildcard_constraints:
    member="[A-Za-z0-9_.-]+",
    name="[A-Za-z0-9_.]+",
    head="[A-Za-z0-9_.]+",
    gen="[0-9]+",
    round="[0-9]+",
    fit="train|trainval",
    split="val|test",
    family=_alternatives(SSL_FAMILIES),


# ---------------------------------------------------------------- data


FRAMES_NAME = (
    CHALLENGE_FILES["frames"].name
    if config["data"]["source"] == "challenge" and not EPIC
    else "frames.zip"
)
# The data dir's files by output name (for the epic task the EPIC annotation files;
# the frames or videos sit beside them, in rgb_frames/ and videos/).
DATA_FILES = (
    {name.removesuffix(".csv"): f"{DATA}/{name}" for name in config_checks.EPIC_FILES}
    if EPIC
    else {
        "frames": f"{DATA}/{FRAMES_NAME}",
        "train": f"{DATA}/train.csv",
        "val": f"{DATA}/val.csv",
        "test": f"{DATA}/test.csv",
    }
)


def synth_size_flag():
    """--size of the generator: the config's, or none (the preset's native size) when it is null."""
    size = config["data"]["synth"].get("size")
    return "" if size is None else f"--size {size}"


def data_inputs(wildcards=None):
    """The data dir's files every stage reads (the stage gets the folder, DATA)."""
    return [*DATA_FILES.values(), f"{DATA}/norm_stats.json"]


def task_flag():
    """--task of the stages that read the data: none for whatnext (their command lines as before)."""
    return f"--task {TASK}" if EPIC else ""


def epic_synth_flags():
    """The EPIC-like generator's options (data.epic_synth) as flags."""
    options = config["data"].get("epic_synth", {})
    return " ".join(f"--{key} {value}" for key, value in sorted(options.items()))


def data_dir(wildcards, input):
    """--data of a stage: the folder of its data inputs (``input.data``)."""
    return os.path.dirname(input.data[-1])


def cache_dir(wildcards, input):
    """--cache-dir of an ensemble stage: the folder above its member caches (``input.caches``)."""
    return os.path.dirname(os.path.dirname(input.caches[0]))


def ensemble_params():
    """Params every nested-CV ensemble stage shares (stacker, head_stacker, sidecar, calibration,
    pseudo_label): --cache-dir, --data, --folds and --seed."""
    return dict(
        cache_dir=cache_dir,
        data=data_dir,
        folds=config["ensemble"]["folds"],
        seed=config["seed"],
    )


def challenge_file(name):
    """Input function of the link rule: the challenge's file ``name`` (frames is the zip or the folder)."""
    return lambda wildcards: str(CHALLENGE_FILES[name])


# ---------------------------------------------------------------- SSL cascade


def ssl_encoder(family, gen):
    return f"{R}/ssl/{family}/gen{gen}/encoder.pt"


def ssl_inputs(wildcards):
    """Input function of the SSL rule: data, plus the previous generation (or the declared init)."""
    family, gen = wildcards.family, int(wildcards.gen)
    section = SSL_FAMILIES[family]
    if gen > section["generations"]:
        raise WorkflowError(
            f"ssl.{family}.generations is {section['generations']}: no generation {gen}"
        )
    found = {"data": data_inputs()}
    if gen > 1:
        found["init"] = ssl_encoder(family, gen - 1)
    elif section.get("init"):
        found["init"] = section["init"]
    return found


def ssl_params():
    """Params of the SSL rule: code fingerprint, method, arch, the --init-encoder flag, seed and training flags
    (with --masking when the family's ``masking`` is not the default random)."""

    def init_flag(wildcards, input):
        return f"--init-encoder {input.init}" if "init" in input.keys() else ""

    def train_flags(wildcards):
        family = SSL_FAMILIES[wildcards.family]
        settings = merge_settings(config.get("train"), family.get("train"))
        seed = job_seed(config["seed"], f"ssl-{wildcards.family}-gen{wildcards.gen}")
        masking = family.get("masking", "random")
        masking_flag = "" if masking == "random" else f" --masking {masking}"
        flags = f"--seed {seed} {render_flags(settings)}{masking_flag}{deadline_flag()}"
        if EPIC and "frames" not in settings.get("options", {}):
            flags += f" --frames {config['task']['frames']}"
        return flags + (" --task epic" if EPIC else "")

    def stage_code(wildcards):
        return stage_fingerprint(
            f"whatnext.ssl.pretrain_{SSL_FAMILIES[wildcards.family]['method']}"
        )

    return {
        "code": stage_code,
        "method": lambda wildcards: SSL_FAMILIES[wildcards.family]["method"],
        "arch": lambda wildcards: SSL_FAMILIES[wildcards.family]["arch"],
        "init": init_flag,
        "train": train_flags,
    }


def ssl_launcher(wildcards, resources):
    """The SSL command's prefix: with more than one GPU (the profile's ``gpu``), one data-parallel rank
    per GPU through whatnext.runtime.launch (exit 75 kept); nothing for one GPU or the CPU.
    """
    gpus = int(resources.gpu or 0)
    return f"python -m whatnext.runtime.launch --nproc {gpus} -- " if gpus > 1 else ""


# ---------------------------------------------------------------- finetuning


def deadline_flag():
    return f" --deadline {config['deadline']}" if config.get("deadline") else ""


def member_of(family):
    """A function of wildcards giving the Member a finetune rule of ``family`` builds."""

    def find(wildcards):
        member_id = member_table_lib.member_id_of(family, wildcards)
        if member_id not in MEMBERS:
            raise WorkflowError(
                f"member {member_id!r} is not defined by the config (members.{family})"
            )
        return MEMBERS[member_id]

    return find


def finetune_inputs(family):
    """Input function: data, the SSL encoder the member finetunes, and its round's pseudo-labels."""
    find = member_of(family)

    def inputs(wildcards):
        member = find(wildcards)
        found = {"data": data_inputs()}
        if member.ssl_family is not None:
            found["encoder"] = ssl_encoder(member.ssl_family, member.ssl_generation)
        if member.round > 0:
            found["pseudo"] = pseudo_labels(member.round)
        return found

    return inputs


def finetune_params(family):
    """Params of the finetune job of a ``family`` member: the CLI module it runs (``cli``, FINETUNE_CLI),
    that module's code fingerprint, the member's head, arch, aux/pseudo flags, its encoder flag, seed and
    training flags, the data and resume dirs and the outcome file.

    The same keys for every family: the rules derived from finetune_cascade (rules/finetune.smk) override
    its params key by key, so a key that finetune_cascade alone had would leak into them.
    """
    find = member_of(family)
    cli = FINETUNE_CLI[family]

    def member_flags(wildcards):
        """Wildcards only, so that Snakemake tracks the value (params rerun trigger)."""
        member = find(wildcards)
        flags = [f"--head {member.head}"]
        if EPIC:
            flags.append(f"--task epic --reader {config['task']['reader']}")
            if "frames" not in member.train.get("options", {}):
                flags.append(f"--frames {config['task']['frames']}")
        if member.arch:
            flags.append(f"--arch {member.arch} --img-size {config['img_size']}")
        flags += [f"--aux {a}" for a in member.aux]
        if member.fold is not None:
            flags.append(f"--fold {member.fold} --fold-pool {member.fold_pool}")
        if member.round > 0:
            flags.append(f"--pseudo {pseudo_labels(member.round)}")
        return " ".join(flags)

    def train_flags(wildcards):
        member = find(wildcards)
        return f"--seed {member.seed} {render_flags(member.train)}{deadline_flag()}"

    return {
        "cli": cli,
        "code": stage_fingerprint(cli),
        "member": member_flags,
        "encoder": encoder_flag,
        "train": train_flags,
        "data": data_dir,
        "resume": resume_dir,
        "outcome": outcome_path(f"finetune_{family}"),
    }


def encoder_flag(wildcards, input):
    """`` --encoder-ckpt PATH`` (leading space) of a member finetuning an SSL encoder (``input.encoder``);
    none for a member trained from scratch."""
    return f" --encoder-ckpt {input.encoder}" if "encoder" in input.keys() else ""


def resume_dir(wildcards, output):
    """Resumable state of a training job, outside its declared outputs: {results}/resume/<output path>."""
    return os.path.join(R, "resume", os.path.relpath(os.path.splitext(output[0])[0], R))


# ---------------------------------------------------------------- resources


def outcome_path(rule_name):
    """Params function: the file a GPU job records its runs in (``--outcome``), read by its retries."""
    return lambda wildcards: retry_policy.outcome_file(LOGS, rule_name, wildcards)


def retry_plan(rule_name, wildcards, attempt):
    """What the earlier attempts of a job ran out of (time, host or CUDA memory), from their recorded outcomes."""
    return _retry_plan_at(
        retry_policy.outcome_file(LOGS, rule_name, wildcards), attempt
    )


@functools.lru_cache(maxsize=None)
def _retry_plan_at(outcome_file, attempt):
    """One read of the outcome file (and of Slurm's records) per job and attempt: runtime, mem_mb and
    micro_batch share it."""
    return retry_policy.retry_plan(outcome_file, attempt)


def gpu_runtime(rule_name):
    """runtime: the deadline-aware limit, grown once per earlier attempt that ran out of time."""
    return lambda wildcards, attempt: job_limits.runtime_minutes(
        rule_name,
        wildcards,
        attempt,
        config,
        time_retries=retry_plan(rule_name, wildcards, attempt).time_retries,
        members=MEMBERS,
    )


def gpu_micro_batch(rule_name):
    """micro_batch (the training CLIs' --micro-batch): 0, the whole batch, until an earlier attempt ran out
    of CUDA memory; then half the micro-batch that attempt recorded. A resource, not a param: Snakemake
    re-evaluates resources, not params, for a retry."""
    return lambda wildcards, attempt: retry_plan(
        rule_name, wildcards, attempt
    ).micro_batch


def gpu_count(rule_name):
    return job_resources.gpu_job_resources(rule_name, config)["gpu"]


def gpu_mem_mb(rule_name):
    """mem_mb: the config's, grown once per earlier attempt that ran out of host memory."""
    return lambda wildcards, attempt: job_resources.memory_mb(
        rule_name,
        config,
        retry_plan(rule_name, wildcards, attempt).memory_retries,
    )


def training_resources(rule_name):
    """Resources of a GPU training job (SSL or finetune) of ``rule_name``: runtime, gpu, mem_mb and micro_batch."""
    return dict(
        runtime=gpu_runtime(rule_name),
        gpu=gpu_count(rule_name),
        mem_mb=gpu_mem_mb(rule_name),
        micro_batch=gpu_micro_batch(rule_name),
    )


# ---------------------------------------------------------------- caches, pseudo-labels, ensemble


def member_checkpoint(wildcards):
    if wildcards.member not in MEMBERS:
        raise WorkflowError(
            f"member {wildcards.member!r} is not defined by the config, so no job builds its cache"
        )
    return f"{R}/models/{wildcards.member}/{wildcards.fit}.pt"


def previous_round(member_id):
    """The member a pseudo-label round's guard compares with (None: the member has no guard)."""
    return member_table_lib.previous_round_member(MEMBERS, member_id)


def guard_file(member_id):
    return f"{R}/pseudo/guard/{member_id}.json"


def round_guard_inputs(wildcards):
    """The guard's inputs: the member's train-fit metrics and the previous round's (its guard if it has one)."""
    previous = previous_round(wildcards.member)
    if previous is None:
        raise WorkflowError(
            f"member {wildcards.member!r} has no earlier pseudo-label round to compare with"
        )
    return {
        "new": f"{R}/models/{wildcards.member}/train-metrics.json",
        "previous": (
            guard_file(previous)
            if previous_round(previous)
            else f"{R}/models/{previous}/train-metrics.json"
        ),
    }


def guard_inputs(wildcards):
    """cache_probs of a guarded member: its guard and the checkpoints of every earlier round it may keep."""
    if wildcards.member not in MEMBERS or previous_round(wildcards.member) is None:
        return {}
    earlier, member = [], wildcards.member
    while (member := previous_round(member)) is not None:
        earlier.append(member)
    return {
        "guard": guard_file(wildcards.member),
        "candidates": [f"{R}/models/{m}/{wildcards.fit}.pt" for m in earlier],
    }


def guard_flags(wildcards, input):
    """--guard/--candidate flags of cache_probs (none for an unguarded member)."""
    if "guard" not in input.keys():
        return ""
    pairs = [
        f"--candidate {os.path.basename(os.path.dirname(path))}={path}"
        for path in input.candidates
    ]
    return " ".join([f"--guard {input.guard}", *pairs])


def cache_file(member, fit, split):
    return f"{CACHE_DIR}/{member}/{fit}-{split}.npz"


def cache_flags(wildcards, output):
    """--split S --out PATH of each cache a cache_probs job writes (its outputs named after the splits)."""
    return " ".join(
        f"--split {split} --out {output[split]}"
        for split in ("val", "test")
        if split in output.keys()
    )


STACKER_CACHES = (("train", "val"), ("train", "test"))


def member_caches(ids, with_twins=False):
    pairs = STACKER_CACHES + ((("trainval", "test"),) if with_twins else ())
    return [cache_file(m, fit, split) for m in ids for fit, split in pairs]


def member_list_ids(name):
    """Ids of the member list ``name``: ``final`` (the stacker's) or ``round{r}`` (members of rounds < r)."""
    if name == "final":
        return STACKED
    return member_table_lib.members_before_round(
        MEMBERS, int(name.removeprefix("round"))
    )


def member_list_file(name):
    if FROM_CACHES and name == "final":
        return config["ensemble"]["caches"]["members"]
    return f"{R}/ensemble/members/{name}.txt"


def pseudo_labels(round_):
    return f"{R}/pseudo/round{round_}.csv"


def pseudo_inputs(wildcards):
    name = f"round{wildcards['round']}"
    return {
        "members": member_list_file(name),
        "caches": member_caches(member_list_ids(name)),
        "data": data_inputs(),
    }


def final_ensemble_inputs(with_twins=False):
    return lambda wildcards: {
        "members": member_list_file("final"),
        "caches": member_caches(STACKED, with_twins),
        "data": data_inputs(),
    }


def final_test_probs():
    """Test probabilities the submission is made from: the sidecar's with twins, else the stacker's."""
    if TWINS:
        return f"{R}/ensemble/sidecar/trainval-test.npz"
    return f"{R}/ensemble/stacker/train-test.npz"


# The pixel baseline's folder; its name is the baseline's member id in the caches' provenance.
BASELINE_DIR = f"{R}/baseline"


def baseline_cache(split):
    """The pixel baseline's probability cache of ``split`` (fit on train), read like a member's."""
    return f"{BASELINE_DIR}/train-{split}.npz"


def run_settings_flags(wildcards):
    """This Snakemake call's config files, ``--config`` and per-rule resources and threads as flags, so that
    a nested dry run (the efficiency report's) sees the graph and resources this run sees.
    """
    settings, resources = workflow.config_settings, workflow.resource_settings
    flags = (
        ["--configfile", *map(str, settings.configfiles)]
        if settings.configfiles
        else []
    )
    flags += ["--config", *settings.config_args] if settings.config_args else []
    overwrite = [
        f"{rule}:{name}={getattr(value, 'raw', value)}"
        for rule, values in resources.overwrite_resources.items()
        for name, value in values.items()
    ]
    flags += ["--set-resources", *overwrite] if overwrite else []
    threads = [
        f"{rule}={getattr(value, 'raw', value)}"
        for rule, value in resources.overwrite_threads.items()
    ]
    flags += ["--set-threads", *threads] if threads else []
    return shlex.join(flags)


def report_assets():
    return [
        f"{R}/report/{name}"
        for name in (
            "summary.json",
            "cascade_table.html",
            "confusion.png",
            "stacker_weights.png",
        )
    ]


def final_outputs():
    """The default target's inputs: the submission, the baseline's, the analysis and the report assets
    (task epic: submission.pt and the per-head stacker's report)."""
    if EPIC:
        return [f"{R}/submission.pt", f"{R}/ensemble/heads/report.json"]
    return [
        f"{R}/submission.csv",
        f"{BASELINE_DIR}/submission.csv",
        f"{R}/analysis/error_decomposition/summary.json",
        f"{R}/ensemble/calibration/table.md",
        *report_assets(),
    ]


def tta_flags():
    """--tta / --flip flags of cache_probs from the config's inference section."""
    section = config["inference"]
    flags = [] if section["tta"] == "none" else [f"--tta {section['tta']}"]
    if EPIC:  # no flipped views: a mirror changes what the hands do
        task = config["task"]
        return " ".join(
            flags
            + [
                f"--no-flip --task epic --clips {task['test_clips']} --reader {task['reader']}"
            ]
        )
    return " ".join(flags + (["--flip"] if section["flip"] else ["--no-flip"]))
