"""The ensemble stages run on the light install: importing them pulls in no model code and no
scikit-learn (the pixel baseline, its only user of scikit-learn's models, is a stage of its own)."""

import subprocess
import sys

HEAVY = ("sklearn", "timm", "torchvision", "whatnext.models", "whatnext.baseline", "whatnext.finetune")


def test_ensemble_stages_import_no_model_code_and_no_scikit_learn():
    code = (
        "import sys\n"
        "import whatnext.ensemble.stacker, whatnext.ensemble.sidecar, whatnext.ensemble.calibration, "
        "whatnext.ensemble.pseudo_label, whatnext.inference.submission\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r} or m.startswith({HEAVY!r})))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", result.stdout
