import pytest
import torch

from whatnext.runtime.atomic import atomic_open, write_json
from whatnext.runtime.checkpoint import CheckpointError, load_checkpoint, load_state_strict, save_checkpoint


def test_failed_write_leaves_previous_file_and_no_temporaries(tmp_path):
    target = tmp_path / "out.json"
    write_json(target, {"a": 1})
    with pytest.raises(RuntimeError):
        with atomic_open(target) as handle:
            handle.write("partial")
            raise RuntimeError("killed")
    assert target.read_text().strip().startswith("{")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_checkpoint_roundtrip_with_kind_check(tmp_path):
    layer = torch.nn.Linear(3, 2)
    path = tmp_path / "enc.pt"
    save_checkpoint(path, kind="encoder", model_config={"encoder": "x"}, state_dict=layer.state_dict(), meta={"generation": 2})
    ckpt = load_checkpoint(path, expected_kind="encoder")
    assert ckpt["meta"]["generation"] == 2 and ckpt["model_config"] == {"encoder": "x"}
    assert torch.equal(ckpt["state_dict"]["weight"], layer.weight)
    with pytest.raises(CheckpointError, match="holds a 'encoder' checkpoint, expected 'classifier'"):
        load_checkpoint(path, expected_kind="classifier")


def test_truncated_checkpoint_is_named(tmp_path):
    path = tmp_path / "ft.pt"
    save_checkpoint(path, kind="classifier", model_config={}, state_dict=torch.nn.Linear(30, 20).state_dict())
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match=r"ft\.pt: unreadable or truncated"):
        load_checkpoint(path)


def test_foreign_pickle_is_refused(tmp_path):
    path = tmp_path / "plain.pt"
    torch.save({"weight": torch.zeros(2)}, path)
    with pytest.raises(CheckpointError, match="not a whatnext checkpoint"):
        load_checkpoint(path)


def test_state_of_another_architecture_is_named(tmp_path):
    with pytest.raises(CheckpointError, match="src.pt: weights do not fit Linear"):
        load_state_strict(torch.nn.Linear(3, 2), torch.nn.Linear(4, 2).state_dict(), "src.pt")
