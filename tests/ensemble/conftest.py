"""Fixtures of the ensemble tests: hand-made member pools on disk (a data dir and a cache dir)."""

from __future__ import annotations

from pathlib import Path

import importlib.util

import numpy as np
import pandas as pd
import pytest
import torch

from whatnext.ensemble.synthetic_members import generate_members
from whatnext.runtime.prob_cache import cache_path, write_prob_cache

NUM_CLASSES = 33


def specialist_strengths(num_members: int = 3, strong: float = 4.0, weak: float = 0.5) -> np.ndarray:
    """[M, 33]: member i is strong on the classes c with c % M == i, weak elsewhere."""
    strength = np.full((num_members, NUM_CLASSES), weak, dtype=np.float32)
    for i in range(num_members):
        strength[i, i::num_members] = strong
    return strength


def write_pool(root: Path, strength: np.ndarray, num_val: int = 400, num_test: int = 200, seed: int = 0,
               twins: bool = True) -> tuple[Path, Path, list[str], np.ndarray]:
    """Write DATA/{val,test}.csv and caches train-{val,test} (+ twins trainval-{val,test}) of members m0..;

    returns (data_dir, cache_dir, members, val_labels). The twins' val caches hold the labels
    one-hot (as an in-sample model would): reading them would leak.
    """
    data_dir, cache_dir = root / "data", root / "probs"
    data_dir.mkdir(parents=True, exist_ok=True)
    val = generate_members(strength, num_val, seed=seed)
    test = generate_members(strength, num_test, seed=seed + 1)
    twin_test = generate_members(strength + 0.5, num_test, seed=seed + 2)
    val_ids = np.array([str(100000 + i) for i in range(num_val)])
    test_ids = np.array([str(200000 + i) for i in range(num_test)])
    pd.DataFrame({"video_id": val_ids, "label": val.labels}).to_csv(data_dir / "val.csv", index=False)
    pd.DataFrame({"video_id": test_ids}).to_csv(data_dir / "test.csv", index=False)
    members = [f"m{i}" for i in range(len(strength))]
    onehot = np.eye(NUM_CLASSES, dtype=np.float32)[val.labels]
    for i, member in enumerate(members):
        write_prob_cache(cache_path(cache_dir, member, "train", "val"), val_ids, val.probs[i], {"member": member})
        write_prob_cache(cache_path(cache_dir, member, "train", "test"), test_ids, test.probs[i], {"member": member})
        if twins:
            write_prob_cache(cache_path(cache_dir, member, "trainval", "test"), test_ids, twin_test.probs[i], {"member": member})
            write_prob_cache(cache_path(cache_dir, member, "trainval", "val"), val_ids, onehot * 0.99 + 0.01 / NUM_CLASSES, {"member": member})
    return data_dir, cache_dir, members, val.labels


def write_member_list(path: Path, members: list[str]) -> Path:
    path.write_text("# members\n" + "\n".join(members) + "\n")
    return path


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: the machine is shared, and more threads under contention are far slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def specialist_pool(tmp_path):
    """Three specialists (member i strong on classes c % 3 == i), twins included, as on disk."""
    data_dir, cache_dir, members, labels = write_pool(tmp_path, specialist_strengths())
    return {"data": data_dir, "cache": cache_dir, "members": members, "labels": labels,
            "member_list": write_member_list(tmp_path / "members.txt", members), "root": tmp_path}


@pytest.fixture(scope="session")
def bench_stacker():
    """bench/stacker.py as a module (its per-fold loop reference and problem generator)."""
    path = Path(__file__).resolve().parents[2] / "bench" / "stacker.py"
    spec = importlib.util.spec_from_file_location("bench_stacker", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
