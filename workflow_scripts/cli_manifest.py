"""The names a config may use, taken from the package: encoders, heads, SSL methods, each training CLI's options.

Snakemake checks the config's names against ``workflow_scripts/cli_manifest.json`` when it builds the
graph (``workflow_scripts.config_checks.check_names``), so a misspelt head, architecture or training
option fails the dry run instead of a job an hour later. The graph reads the JSON rather than the
registries because importing the package (torch, timm) would add seconds to every Snakemake start;
``tests/workflow/test_cli_manifest.py`` rebuilds the manifest from the live registries and CLIs and fails
when the file differs. After adding an encoder, head, SSL method or CLI option, rewrite it::

    python -m workflow_scripts.cli_manifest
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

MANIFEST = Path(__file__).with_name("cli_manifest.json")
# member family -> the finetune CLI its rule runs (rules/finetune.smk)
FINETUNE_CLI = {
    "cascade": "whatnext.finetune.track_a_videomae",
    "mae2d": "whatnext.finetune.track_a_mae2d",
    "videomae": "whatnext.finetune.track_a_videomae",
    "jepa": "whatnext.finetune.track_a_jepa",
    "scratch": "whatnext.finetune.track_a_scratch",
}


def ssl_cli(method: str) -> str:
    """The CLI module of an SSL method (the rule runs ``python -m whatnext.ssl.pretrain_{method}``)."""
    return f"whatnext.ssl.pretrain_{method}"


def cli_options(module: str) -> list[str]:
    """Long option names (without ``--``) of the click command ``main`` of ``module``, sorted."""
    command = importlib.import_module(module).main
    names = {opt[2:] for param in command.params for opt in (*param.opts, *param.secondary_opts) if opt.startswith("--")}
    return sorted(names - {"help"})


def build_manifest() -> dict:
    """The manifest from the live package (imports torch and every CLI)."""
    from whatnext.models import list_encoders, list_heads
    from whatnext.ssl.methods import METHODS

    modules = [*sorted(set(FINETUNE_CLI.values())), *(ssl_cli(method) for method in sorted(METHODS))]
    return {
        "encoders": sorted(list_encoders()),
        "heads": sorted(list_heads()),
        "ssl_methods": sorted(METHODS),
        "cli_options": {module: cli_options(module) for module in modules},
    }


def load_manifest(path: Path = MANIFEST) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def format_manifest(manifest: dict) -> str:
    return json.dumps(manifest, indent=1, sort_keys=True) + "\n"


if __name__ == "__main__":
    MANIFEST.write_text(format_manifest(build_manifest()), encoding="utf-8")
    print(f"wrote {MANIFEST}")
