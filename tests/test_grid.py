"""The experiment grid: aggregation against hand-computed answers, paired tests, and
resumption (a finished cell is never recomputed) on a real tiny grid."""
from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, tiny_args
from src import grid

ACC = {"dygen": (0.50, 0.60, 0.70), "cr": (0.55, 0.55, 0.58), "single": (0.40, 0.42, 0.44)}


def _rows():
    rows = []
    for method, accs in ACC.items():
        for seed, a in zip((1, 2, 3), accs):
            rows.append({"dataset": "20news", "noise_type": "SN", "noise_ratio": "0.2", "seed": str(seed),
                         "method": method, "config_hash": "h", "test_acc": str(a), "setting_wall_s": "60"})
    # a second setting with one seed only, where cr wins
    rows.append({"dataset": "20news", "noise_type": "ASN", "noise_ratio": "0.4", "seed": "1", "method": "cr",
                 "config_hash": "h", "test_acc": "0.3"})
    rows.append({"dataset": "20news", "noise_type": "ASN", "noise_ratio": "0.4", "seed": "1", "method": "dygen",
                 "config_hash": "h", "test_acc": "0.2"})
    return rows


def test_mean_std_and_table_against_hand_computed_values():
    agg = grid.aggregate(_rows(), "test_acc")
    m, s, n = agg[("SN", 0.2, "cr")]
    assert n == 3 and m == pytest.approx(0.56) and s == pytest.approx(math.sqrt((0.01 ** 2 * 2 + 0.02 ** 2) / 2))
    md = grid.table(_rows(), "test_acc", ["single", "cr", "dygen"])
    lines = md.splitlines()
    assert lines[0] == "| method | SN 20% | ASN 40% |"
    assert lines[2] == "| single | 42.0 ± 2.0 (3) | - |"
    assert lines[3] == "| cr | 56.0 ± 1.7 (3) | **30.0** (1) |"  # one seed: no spread printed
    assert lines[4] == "| dygen | **60.0 ± 10.0** (3) | 20.0 (1) |"
    # lower is better: the bold moves
    assert "**42.0 ± 2.0** (3)" in grid.table(_rows(), "test_acc", ["single", "cr", "dygen"], higher_better=False)


def test_paired_comparison_against_the_closed_form_t_test():
    rows = _rows()
    ps = grid.per_seed(rows, "test_acc")
    t = grid.paired(ps[("SN", 0.2, "dygen")], ps[("SN", 0.2, "cr")])
    d = np.array([-0.05, 0.05, 0.12])
    tstat = d.mean() / (d.std(ddof=1) / math.sqrt(3))
    p_df2 = 1 - abs(tstat) / math.sqrt(2 + tstat ** 2)        # two-sided p of Student's t with 2 df
    assert t["n"] == 3 and t["mean_diff"] == pytest.approx(0.04) and t["p"] == pytest.approx(p_df2)
    assert (t["wins"], t["ties"], t["losses"]) == (2, 0, 1)
    # a difference that one decimal would print as "-0.0" keeps its sign and size
    assert [grid.signed_points(x) for x in (-0.0004, 0.0003, 0.0, -0.012, 0.00051)] == \
        ["-0.04", "+0.03", "+0.0", "-1.2", "+0.1"]
    assert not grid.beats_outside_spread((0.6, 0.1, 3), (0.56, 0.017, 3))
    assert grid.beats_outside_spread((0.6, 0.01, 3), (0.42, 0.02, 3))
    sig = grid.significance_table(rows, "test_acc", "dygen", ["single", "cr"])
    assert "| SN 20% | single | +18.0 ± 8.0 | 3/0/0 |" in sig and sig.count("| yes |") == 1
    assert "| ASN 40% | cr | -10.0 | 0/0/1 | n/a | n/a (1 seed) |" in sig   # no spread from one seed
    md = grid.results_markdown(rows, ["single", "cr", "dygen"], command="cmd")
    assert "11 cells from 4 settings" in md and "`cmd`" in md and "3.0 min" in md
    # a setting topped up by a second run (another run folder): both runs' wall times count
    topped = rows + [{**rows[0], "method": "npc", "run_dir": "later", "setting_wall_s": "30"}]
    assert "3.5 min" in grid.results_markdown(topped, ["single", "cr", "dygen", "npc"])


def test_dygen_against_the_best_other_method_per_setting():
    best = grid.best_rival_table(_rows(), "test_acc").splitlines()
    # SN 20%: cr (mean 56.0) beats single (42.0); differences -0.05, +0.05, +0.12
    assert best[2] == "| SN 20% | 60.0 ± 10.0 (3) | cr | 56.0 ± 1.7 (3) | +4.0 ± 8.5 | 2/0/1 | 0.503 |"
    assert best[3] == "| ASN 40% | 20.0 (1) | cr | 30.0 (1) | -10.0 | 0/0/1 | n/a |"


def _load_script():
    spec = importlib.util.spec_from_file_location("run_grid", ROOT / "scripts" / "run_grid.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_tiny_grid_resumes_and_recomputes_nothing(tiny_bert_dir, tmp_path, monkeypatch):
    from src import pipeline
    calls = []
    real_run = pipeline.run

    def counting_run(cfg):
        calls.append(cfg.variants)
        return real_run(cfg)

    monkeypatch.setattr(pipeline, "run", counting_run)
    real_single = pipeline.run_single_only
    monkeypatch.setattr(pipeline, "run_single_only", lambda cfg: calls.append("single alone") or real_single(cfg))
    released = []   # after every setting the grid hands jemalloc's kept pages back
    monkeypatch.setattr(grid.allocator, "release_free_memory", lambda: released.append(len(calls)))
    script = _load_script()
    out = tmp_path / "grid"
    main_flags = [a for a in tiny_args(tiny_bert_dir, tmp_path)]
    argv = ["--noise_types", "SN", "--ratios", "0.2", "--seeds", "1", "--methods", "dygen,cr",
            "--output_dir", str(out), "--", *main_flags]
    assert script.main(argv) == 0
    assert calls == ["cr,dygen"]
    rows = grid.read_rows(out / "results.csv")
    assert sorted(r["method"] for r in rows) == ["cleanlab", "cr", "dygen"]
    first = (out / "results.csv").read_text()
    assert script.main(argv) == 0                     # nothing left to do
    assert calls == ["cr,dygen"] and (out / "results.csv").read_text() == first
    # a new method on the same setting: only its stage 2, on the cached stage 1
    argv[argv.index("dygen,cr")] = "dygen,cr,npc"
    assert script.main(argv) == 0
    assert calls == ["cr,dygen", "npc"]
    rows = grid.read_rows(out / "results.csv")
    assert len(rows) == 4 and [r["stage1_cached"] for r in rows if r["method"] == "npc"] == ["True"]
    # `single` alone: its own one-model stage 1, and no ensemble even where its cache is gone
    import shutil
    (ensemble,) = list((out / "stage1").iterdir())
    shutil.rmtree(ensemble)
    argv[argv.index("dygen,cr,npc")] = "dygen,cr,npc,single"
    assert script.main(argv) == 0
    assert calls[-1] == "single alone"
    assert not ensemble.exists() and len(list((out / "stage1").iterdir())) == 1     # single's cache only
    single = [r for r in grid.read_rows(out / "results.csv") if r["method"] == "single"]
    assert len(single) == 1 and 0 <= float(single[0]["test_acc"]) <= 1 and single[0]["test_acc_last_epoch"]
    # another configuration (here: more stage-2 epochs) is another cell
    assert script.main(argv + ["--vae_epochs", "2"]) == 0
    assert calls[-1] == "single,cr,npc,dygen"
    assert released == [1, 2, 3, 4]                  # once after each setting run, none for skipped ones
    assert len(grid.read_rows(out / "results.csv")) == 10
    # a new setting asked for `single` only: alone, and cleanlab's row (it needs DyGen) is left for later
    argv[argv.index("dygen,cr,npc,single")] = "single"
    argv[argv.index("--seeds") + 1] = "2"
    assert script.main(argv) == 0
    assert calls[-1] == "single alone"
    seed2 = [r["method"] for r in grid.read_rows(out / "results.csv") if r["seed"] == "2"]
    assert seed2 == ["single"]
    md = (out / "results.md").read_text()
    assert "| dygen |" in md and "| cleanlab |" in md and (out / "grid_accuracy.png").stat().st_size > 1000


def test_reproduction_against_the_committed_seed_spread():
    committed = _rows()
    committed[-1]["config_hash"] = "old"                       # ASN 40% dygen ran with another config
    rerun = [{**r, "test_acc": v} for r, v in (
        (committed[1], "0.65"),    # dygen seed 2: 0.60 -> 0.65, spread (std) 0.10: within
        (committed[4], "0.60"),    # cr seed 2: 0.55 -> 0.60, std sqrt(0.0003) = 0.0173: outside
    )]
    rep = {r["method"]: r for r in grid.reproduction(committed, rerun, "SN", 0.2, 2)}
    assert set(rep) == {"dygen", "cr"}
    assert math.isclose(rep["dygen"]["diff"], 0.05) and math.isclose(rep["dygen"]["seed_std"], 0.1)
    assert rep["dygen"]["within"] is True and rep["dygen"]["same_config"] is True
    assert math.isclose(rep["cr"]["seed_std"], math.sqrt(0.0003)) and rep["cr"]["within"] is False
    one = grid.reproduction(committed, [{**committed[-1], "config_hash": "h"}], "ASN", 0.4, 1)
    assert one[0]["within"] is None and one[0]["diff"] == 0 and one[0]["same_config"] is False
    assert grid.reproduction(committed, rerun, "SN", 0.2, 3) == []      # the rerun holds seed 2 only
    # a method the committed grid lacks is not compared
    assert grid.reproduction(committed, [{**committed[1], "method": "npc"}], "SN", 0.2, 2) == []


def _load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_reproduce_cell_rewrites_only_the_grid_flags():
    rc = _load("reproduce_cell")
    argv = rc.grid_argv("python3 scripts/run_grid.py --dataset trec --noise_types SN ASN --ratios 0.2 0.4 "
                        "--seeds 1 2 3 --output_dir cache --results docs/grid/trec/results.csv -- --preset trec --seed 9")
    new = rc.override(argv, noise_types="IDN", ratios=0.4, seeds=2, output_dir="/tmp/r", results="/tmp/r/x.csv")
    assert new == ["--dataset", "trec", "--noise_types", "IDN", "--ratios", "0.4", "--seeds", "2",
                   "--output_dir", "/tmp/r", "--results", "/tmp/r/x.csv", "--", "--preset", "trec", "--seed", "9"]
    with pytest.raises(ValueError):
        rc.grid_argv("python3 main.py --preset trec")


def test_a_rerun_from_scratch_reproduces_the_committed_cell_exactly(tiny_bert_dir, tmp_path, capsys):
    script, rc = _load_script(), _load("reproduce_cell")
    committed = tmp_path / "committed" / "results.csv"
    argv = ["--noise_types", "SN", "--ratios", "0.2", "--seeds", "1", "--methods", "dygen,cr,traj_lr",
            "--output_dir", str(tmp_path / "grid"), "--results", str(committed), "--",
            *tiny_args(tiny_bert_dir, tmp_path)]
    assert script.main(argv) == 0
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x").write_text("")
    args = ["--results", str(committed), "--noise_type", "SN", "--ratio", "0.2", "--seed", "1"]
    assert rc.main(args + ["--output_dir", str(busy)]) == 2          # a used folder could hold a cache
    assert rc.main(args[:-1] + ["7", "--output_dir", str(tmp_path / "r0")]) == 2   # no such committed seed
    assert rc.main(args + ["--output_dir", str(tmp_path / "r")]) == 0
    rep = grid.reproduction(grid.read_rows(committed), grid.read_rows(tmp_path / "r" / "results.csv"), "SN", 0.2, 1)
    assert sorted(r["method"] for r in rep) == ["cr", "dygen", "traj_lr"]
    assert all(r["diff"] == 0 and r["same_config"] for r in rep)     # same seed, same machine: bit-identical
    assert "| dygen |" in capsys.readouterr().out


def test_stage1_sweep_appends_one_row_per_setting_and_resumes(tiny_bert_dir, tmp_path, monkeypatch):
    from src.runtime import allocator
    released = []   # after every fine-tuning the sweep hands jemalloc's kept pages back
    monkeypatch.setattr(allocator, "release_free_memory", lambda: released.append(1))
    sweep = _load("sweep_stage1")
    out = tmp_path / "sweep.csv"
    argv = ["--dataset", "20news", "--lrs", "1e-3", "3e-3", "--epochs", "2", "--out", str(out),
            "--output_dir", str(tmp_path / "cache"), "--", *tiny_args(tiny_bert_dir, tmp_path)]
    assert sweep.main(argv) == 0
    rows = grid.read_rows(out)
    assert [(float(r["lr"]), int(r["epochs"])) for r in rows] == [(1e-3, 2), (3e-3, 2)] and released == [1, 1]
    for r in rows:  # the best epoch is the argmax of the recorded per-epoch noisy-validation accuracies
        accs = [float(a) for a in r["val_acc_noisy_per_epoch"].split()]
        assert len(accs) == 2 and int(r["best_epoch"]) == 1 + int(np.argmax(accs))
        assert float(r["val_acc_noisy_best"]) == max(accs)
    first = out.read_text()
    assert sweep.main(argv) == 0                      # every (lr, epochs) is done: nothing re-runs
    assert out.read_text() == first and released == [1, 1]
