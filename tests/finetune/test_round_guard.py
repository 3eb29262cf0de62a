"""The pseudo-label round guard: a round that lowers stop-split accuracy beyond noise keeps the previous weights."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from whatnext.finetune.round_guard import decide, kept_checkpoint, main, paired_difference
from whatnext.runtime.errors import BadInput

IDS = [f"c{i}" for i in range(20)]


def record(correct):
    return {"clip_ids": IDS, "correct": correct, "top1": sum(correct) / len(correct)}


def test_paired_difference_and_its_standard_error_by_hand():
    new = [1] * 5 + [0] * 5 + [1] * 2 + [0] * 8  # 7 right
    old = [1] * 5 + [1] * 5 + [0] * 2 + [0] * 8  # 10 right; discordant: 5 only old, 2 only new
    difference, se = paired_difference(new, old)
    assert difference == pytest.approx((2 - 5) / 20)
    assert se == pytest.approx((7 - 9 / 20) ** 0.5 / 20)


def test_a_round_worse_beyond_noise_falls_back_to_the_previous_weights():
    old = record([1] * 12 + [0] * 8)
    new = record([1] * 4 + [0] * 16)  # 8 clips lost, none gained: -0.40 with se 0.11
    decision = decide("cascade-g2-attn-r1", new, "cascade-g2-attn-r0", old)
    assert decision["fallback"] and decision["kept_member"] == "cascade-g2-attn-r0"
    assert decision["stop_split"] == old
    assert (decision["new_top1"], decision["previous_top1"]) == (0.2, 0.6)


def test_a_drop_within_noise_keeps_the_rounds_own_weights():
    old = record([1] * 10 + [0] * 10)
    new = record([1] * 9 + [0] * 10 + [1])  # one lost, one gained... and one more lost below
    new["correct"][0] = 0  # -0.05 with two discordant clips either way: se 0.08
    decision = decide("cascade-g2-attn-r1", new, "cascade-g2-attn-r0", old)
    assert decision["difference"] == pytest.approx(-0.05) and not decision["fallback"]
    assert decision["kept_member"] == "cascade-g2-attn-r1" and decision["stop_split"] == new


def test_different_stop_splits_cannot_be_compared():
    other = {"clip_ids": IDS[::-1], "correct": [1] * 20}
    with pytest.raises(ValueError, match="different stop splits"):
        decide("m-r1", record([1] * 20), "m-r0", other)


def write(path, document):
    path.write_text(json.dumps(document))
    return path


def test_cli_writes_the_flag_and_chains_to_the_weights_actually_kept(tmp_path):
    r0 = write(tmp_path / "r0.json", {"stop_split": record([1] * 12 + [0] * 8)})
    r1 = write(tmp_path / "r1.json", {"stop_split": record([0] * 20)})
    r2 = write(tmp_path / "r2.json", {"stop_split": record([1] * 11 + [0] * 8 + [1])})
    args = lambda new, prev, prev_member, member, out: ["--member", member, "--new", new, "--previous", prev,  # noqa: E731
                                                        "--previous-member", prev_member, "--out", out]
    result = CliRunner().invoke(main, [str(a) for a in args(r1, r0, "m-r0", "m-r1", tmp_path / "g1.json")])
    assert result.exit_code == 0, result.output
    g1 = json.loads((tmp_path / "g1.json").read_text())
    assert g1["fallback"] and g1["kept_member"] == "m-r0" and "FALLBACK" in result.output
    # round 2 is compared with the weights round 1 kept (round 0's), not with round 1's own
    result = CliRunner().invoke(main, [str(a) for a in args(r2, tmp_path / "g1.json", "m-r1", "m-r2", tmp_path / "g2.json")])
    g2 = json.loads((tmp_path / "g2.json").read_text())
    assert (g2["previous_member"], g2["previous_top1"], g2["fallback"]) == ("m-r0", 0.6, False)


def test_metrics_without_a_stop_split_are_exit_2_naming_the_file(tmp_path):
    r0 = write(tmp_path / "r0.json", {"epochs": []})
    r1 = write(tmp_path / "r1.json", {"stop_split": record([1] * 20)})
    result = CliRunner().invoke(main, ["--member", "m-r1", "--new", str(r1), "--previous", str(r0), "--previous-member", "m-r0",
                                       "--out", str(tmp_path / "g.json")])
    assert result.exit_code == 2 and "r0.json: no stop_split record" in result.output


def test_kept_checkpoint_is_the_candidate_of_the_kept_member(tmp_path):
    guard = write(tmp_path / "g.json", {"member": "m-r1", "kept_member": "m-r0", "fallback": True})
    path, summary = kept_checkpoint(guard, "m-r1", tmp_path / "r1.pt", {"m-r0": tmp_path / "r0.pt"})
    assert path == tmp_path / "r0.pt" and summary["fallback"] and summary["kept_member"] == "m-r0"
    with pytest.raises(BadInput, match="no --candidate m-r0=CKPT"):
        kept_checkpoint(guard, "m-r1", tmp_path / "r1.pt", {})
    with pytest.raises(BadInput, match="is the guard of 'm-r1', not of 'm-r2'"):
        kept_checkpoint(guard, "m-r2", tmp_path / "r1.pt", {"m-r0": tmp_path / "r0.pt"})
