import pytest

from condgen_helpers import CondgenError
from condgen_helpers.leaderboard import END, START, leaderboard, to_markdown, update_readme


def test_markdown_table_has_a_row_per_model_and_dashes_for_missing_figures():
    rows = [{"model": "gan", "train_seconds": 12.3, "fd": 33.5, "classes_covered": 10},
            {"model": "vae", "train_seconds": 20.0, "fd": 50.0, "test_nelbo_nats": 95.2,
             "classes_covered": 9}]
    table = to_markdown(rows).splitlines()
    assert table[0] == "| model | train s | FD | classes | test NELBO (nats) |"
    assert table[2] == "| gan | 12 | 33.5 | 10 | - |"
    assert table[3] == "| vae | 20 | 50.0 | 9 | 95.2 |"


def test_readme_table_is_replaced_between_markers(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{START}\nold table\n{END}\noutro\n")
    update_readme("| new |\n", readme)
    assert readme.read_text() == f"intro\n{START}\n| new |\n{END}\noutro\n"
    readme.write_text("no markers")
    with pytest.raises(CondgenError, match="markers"):
        update_readme("| new |\n", readme)


def test_unknown_model_is_refused_before_training():
    with pytest.raises(CondgenError, match="unknown model"):
        leaderboard(["gan", "stylegan"])


def test_floor_row_is_real_images_with_their_labels(monkeypatch):
    import condgen_helpers.benchmark as bench

    calls = []

    def fake_train(name, dataset, seed, device, progress):
        calls.append(name)
        return None, None, {"train_seconds": 1.0, "fd": 30.0, "floor": {"fd": -1.0}}

    monkeypatch.setattr(bench, "train_and_evaluate", fake_train)
    rows = leaderboard(["gan", "cgan"])
    assert calls == ["gan", "cgan"] and [r["model"] for r in rows[:2]] == ["gan", "cgan"]
    floor = rows[-1]
    assert floor["model"].startswith("real") and floor["train_seconds"] is None
    # the floor is measured, not copied from the first model: real test digits, true labels
    assert floor["conditional_accuracy"] >= 0.97 and 10 < floor["fd"] < 30
