import pytest

from whatnext.data.class_table import load_class_table


def test_packaged_table_matches_the_challenge_totals():
    table = load_class_table()
    assert table.num_classes == 33
    assert sum(table.train_clips) == 44_993 and sum(table.val_clips) == 6_745
    assert table.empty_classes == (27,)


def test_pairs_come_from_the_table():
    table = load_class_table()
    assert table.mirror_pairs == ((18, 19),)
    perm = table.mirror_permutation()
    assert perm[18] == 19 and perm[19] == 18
    assert sum(perm[c] != c for c in range(33)) == 2
    assert (30, 30) in table.reverse_pairs and (0, 10) in table.reverse_pairs
    assert all(table.real_action_of[p] == r for p, r in table.pretend_pairs)


def test_asymmetric_mirror_column_is_an_error(tmp_path):
    path = tmp_path / "classes.csv"
    path.write_text(
        "id,name,train_clips,val_clips,mirror_of,reverse_of,real_action_of\n"
        "0,a,1,1,1,,\n"
        "1,b,1,1,,,\n"
    )
    with pytest.raises(ValueError, match="mirror_of is not symmetric between classes 0 and 1"):
        load_class_table(path)


def test_missing_column_is_named(tmp_path):
    path = tmp_path / "classes.csv"
    path.write_text("id,name\n0,a\n")
    with pytest.raises(ValueError, match=r"missing columns \['train_clips'"):
        load_class_table(path)
