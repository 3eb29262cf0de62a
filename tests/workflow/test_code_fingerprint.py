"""Code fingerprints of the stages (workflow_scripts/code_fingerprint.py) and their use by every rule."""

import re
from pathlib import Path

from workflow_scripts.cli_manifest import FINETUNE_CLI
from workflow_scripts.code_fingerprint import import_closure, stage_fingerprint

REPO = Path(__file__).resolve().parents[2]


def test_the_sidecar_closure_holds_the_stacker_and_the_submission_but_no_model_or_trainer_code():
    closure = import_closure("whatnext.ensemble.sidecar", REPO / "whatnext")
    assert {"whatnext.ensemble.stacker", "whatnext.inference.submission", "whatnext.runtime.prob_cache"} <= set(closure)
    assert not [m for m in closure if m.startswith("whatnext.models") or m.startswith("whatnext.finetune")]
    assert "whatnext.runtime.trainer" not in closure


def test_a_package_import_reaches_the_submodules_its_init_imports():
    closure = import_closure("whatnext.inference.cache_probs", REPO / "whatnext")
    assert {"whatnext.models", "whatnext.models.factory", "whatnext.models.heads", "whatnext.models.vit_base"} <= set(closure)


def make_package(root: Path) -> Path:
    package = root / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "stage.py").write_text(
        "import os\nfrom . import near\nfrom pkg.sub import (\n    deep,  # a comment\n    far,\n)\n\n\n"
        "def later():\n    from pkg.lazy import thing\n    return thing\n"
    )
    for name in ("near.py", "lazy.py", "sub/deep.py", "sub/far.py", "unrelated.py"):
        (package / name).write_text("thing = 1\n")
    (package / "sub" / "table.csv").write_text("a,b\n")
    return package


def test_relative_parenthesised_and_lazy_imports_are_in_the_closure(tmp_path):
    package = make_package(tmp_path)
    assert import_closure("pkg.stage", package) == [
        "pkg", "pkg.lazy", "pkg.near", "pkg.stage", "pkg.sub", "pkg.sub.deep", "pkg.sub.far",
    ]


def test_fingerprint_moves_with_the_closure_and_its_data_files_only(tmp_path, monkeypatch):
    package = make_package(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    from workflow_scripts import code_fingerprint

    def fingerprint():
        code_fingerprint.stage_fingerprint.cache_clear()
        code_fingerprint._imports.cache_clear()
        code_fingerprint.package_root.cache_clear()
        return stage_fingerprint("pkg.stage")

    first = fingerprint()
    assert re.fullmatch(r"[0-9a-f]{12}", first)
    (package / "unrelated.py").write_text("thing = 2\n")
    assert fingerprint() == first
    (package / "lazy.py").write_text("thing = 2\n")
    second = fingerprint()
    assert second != first
    (package / "sub" / "table.csv").write_text("a,b\n1,2\n")
    assert fingerprint() not in (first, second)
    code_fingerprint.package_root.cache_clear()


def test_every_rule_running_a_stage_carries_that_stages_fingerprint():
    text = "\n".join(p.read_text() for p in sorted((REPO / "rules").glob("*.smk")))
    blocks = re.split(r"(?m)^(?=\s*rule \w+:|use rule )", text)
    checked = 0
    for block in blocks:
        stage = re.search(r'"python -m (whatnext\.[\w.{}]+|\{params\.cli\})', block)
        if not stage:
            continue
        name = re.search(r"rule (\w+):", block).group(1)
        if "{params.method}" in stage.group(1):  # ssl_pretrain: the method's CLI, through ssl_params()
            assert "**ssl_params()" in block, name
            continue
        if stage.group(1) == "{params.cli}":  # the finetune rules: the family's CLI and its fingerprint
            assert "**finetune_params(" in block, name
            checked += 1
            continue
        assert f'code=stage_fingerprint("{stage.group(1)}")' in block, f"rule {name} runs {stage.group(1)} without its code fingerprint"
        checked += 1
    assert checked >= 13


def test_each_finetune_rule_takes_its_own_familys_inputs_params_and_resources():
    """The rules derived with ``use rule finetune_cascade as finetune_X with:`` inherit whatever they do not
    override: each must name its own family (the CLI and its fingerprint come with finetune_params(family))."""
    text = (REPO / "rules" / "finetune.smk").read_text()
    for family in FINETUNE_CLI:
        head = rf"(?:rule finetune_{family}|use rule \w+ as finetune_{family} with):"
        block = re.search(rf"(?m)^{head}\n(.*?)(?=^(?:use )?rule |\Z)", text, re.S).group(1)
        assert f'unpack(finetune_inputs("{family}"))' in block, family
        assert f'**finetune_params("{family}")' in block, family
        assert f'**training_resources("finetune_{family}")' in block, family
        folders = re.findall(r'f"\{(?:R|LOGS|BENCH)\}/(?:models|finetune)/(\w+)-', block)  # ckpt, metrics, log, benchmark
        assert folders == [family] * 4, (family, folders)
