"""The member table: ids, structure and errors, from hand-made configs."""

import pytest

from workflow_scripts.member_table import (
    ConfigError,
    format_member_list,
    member_table,
    members_before_round,
    parse_member_id,
    previous_round_member,
    pseudo_rounds,
    stacked_members,
)


def small_config(**cascade):
    return {
        "seed": 0,
        "train": {"max_epochs": 2, "lr": 0.001},
        "ssl": {"c": {"method": "videomae", "arch": "a", "generations": 3}, "m": {"method": "mae2d", "arch": "b", "generations": 2}},
        "members": {
            "cascade": {"ssl": "c", "generations": [2, 3], "heads": ["attn", "lstm"], "rounds": [0, 1], **cascade},
            "mae2d": {"ssl": "m", "variants": {"m4a": {"head": "perceiver", "aux": ["pair_direction"]}}},
            "scratch": {"variants": {"net": {"arch": "conv2d", "head": "attn"}}},
        },
    }


def test_cascade_grid_expands_to_generations_x_heads_x_rounds():
    table = member_table(small_config())
    cascade = [m for m in table.values() if m.family == "cascade"]
    assert len(cascade) == 2 * 2 * 2
    assert "cascade-g3-lstm-r1" in table


def test_member_ids_follow_the_contract_naming():
    assert list(member_table(small_config()))[-2:] == ["mae2d-m4a", "scratch-net"]


def test_variant_finetunes_the_last_generation_of_its_ssl_family_by_default():
    member = member_table(small_config())["mae2d-m4a"]
    assert (member.ssl_family, member.ssl_generation, member.aux) == ("m", 2, ("pair_direction",))


def test_scratch_member_has_no_encoder_and_keeps_its_arch():
    member = member_table(small_config())["scratch-net"]
    assert member.ssl_family is None and member.arch == "conv2d"


def test_override_changes_only_the_named_member():
    table = member_table(small_config(overrides={"cascade-g2-attn-r0": {"max_epochs": 9}}))
    assert table["cascade-g2-attn-r0"].train["max_epochs"] == 9
    assert table["cascade-g2-attn-r1"].train["max_epochs"] == 2


def test_override_of_unknown_member_is_an_error_naming_it():
    with pytest.raises(ConfigError, match="cascade-g9-attn-r0"):
        member_table(small_config(overrides={"cascade-g9-attn-r0": {"max_epochs": 9}}))


def test_cascade_generation_beyond_the_ssl_family_is_an_error():
    with pytest.raises(ConfigError, match="members.cascade.generations: 4 outside 1..3"):
        member_table(small_config(generations=[4]))


def test_pseudo_round_without_earlier_members_is_an_error():
    config = small_config(rounds=[2])
    del config["members"]["mae2d"], config["members"]["scratch"]
    with pytest.raises(ConfigError, match="round 2"):
        member_table(config)


def test_pseudo_round_r_is_made_from_members_of_rounds_below_r():
    table = member_table(small_config(rounds=[0, 1, 2]))
    assert pseudo_rounds(table) == [1, 2]
    before_1 = members_before_round(table, 1)
    assert "cascade-g2-attn-r0" in before_1 and "mae2d-m4a" in before_1
    assert not any(i.endswith("-r1") for i in before_1)
    assert len(members_before_round(table, 2)) == len(before_1) + 4


def test_seed_of_a_member_does_not_depend_on_the_other_members():
    config = small_config()
    fewer = small_config(heads=["lstm"])
    assert member_table(config)["cascade-g2-lstm-r0"].seed == member_table(fewer)["cascade-g2-lstm-r0"].seed


def test_parse_member_id_returns_the_family_wildcards():
    assert parse_member_id("cascade-g8-lstm-r3") == ("cascade", {"gen": "8", "head": "lstm", "round": "3"})
    assert parse_member_id("scratch-efficientformer_l1") == ("scratch", {"name": "efficientformer_l1"})


def test_parse_member_id_rejects_an_id_no_rule_builds():
    with pytest.raises(ConfigError, match="'m4a-perceiver' matches no finetune rule"):
        parse_member_id("m4a-perceiver")


def test_exclusion_of_unknown_member_is_an_error():
    with pytest.raises(ConfigError, match="ensemble.exclude: unknown member id 'mae2d-zzz'"):
        stacked_members(member_table(small_config()), ["mae2d-zzz"])


def test_excluded_member_does_not_reach_the_stacker():
    table = member_table(small_config())
    assert "scratch-net" not in stacked_members(table, ["scratch-net"])
    assert len(stacked_members(table, ["scratch-net"])) == len(table) - 1


def test_member_list_text_has_comment_then_one_id_a_line():
    assert format_member_list(["a", "b"], "two\nlines") == "# two\n# lines\na\nb\n"


def test_paper_config_defines_95_members_split_as_in_the_design(paper_config):
    table = member_table(paper_config)
    families = [m.family for m in table.values()]
    assert len(table) == 95
    assert (families.count("cascade"), families.count("mae2d"), families.count("videomae"), families.count("scratch")) == (80, 3, 2, 10)


def test_a_variant_with_folds_expands_into_its_fold_members_of_each_pool():
    config = small_config()
    config["members"]["scratch"]["variants"]["net"]["folds"] = {"train": 2, "trainval": 3}
    table = member_table(config)
    folds = {m.id: (m.fold, m.fold_pool) for m in table.values() if m.family == "scratch"}
    assert folds == {
        "scratch-net.fold0of2": ("0/2", "train"), "scratch-net.fold1of2": ("1/2", "train"),
        "scratch-net.vfold0of3": ("0/3", "trainval"), "scratch-net.vfold1of3": ("1/3", "trainval"),
        "scratch-net.vfold2of3": ("2/3", "trainval"),
    }
    assert all(parse_member_id(member_id) == ("scratch", {"name": member_id[8:]}) for member_id in folds)
    assert len({table[m].seed for m in folds}) == 5
    assert stacked_members(table)[-5:] == list(folds)


def test_jepa_members_need_an_ssl_family_of_method_jepa():
    config = small_config()
    config["ssl"]["j"] = {"method": "jepa", "arch": "conv2d_tiny", "generations": 1}
    config["members"]["jepa"] = {"ssl": "j", "variants": {"a": {"head": "attn"}}}
    member = member_table(config)["jepa-a"]
    assert (member.family, member.ssl_family, member.ssl_generation) == ("jepa", "j", 1)
    config["members"]["jepa"]["ssl"] = "m"
    with pytest.raises(ConfigError, match="members.jepa.variants.a.ssl: SSL family 'm' uses method 'mae2d'"):
        member_table(config)


def test_a_round_falls_back_to_the_same_generation_and_head_in_the_latest_earlier_round():
    table = member_table(small_config(rounds=[0, 1, 3]))
    assert previous_round_member(table, "cascade-g2-attn-r1") == "cascade-g2-attn-r0"
    assert previous_round_member(table, "cascade-g2-attn-r3") == "cascade-g2-attn-r1"
    assert previous_round_member(table, "cascade-g2-attn-r0") is None
    assert previous_round_member(table, "mae2d-m4a") is None
