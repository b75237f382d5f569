"""Generated doc blocks: marker replacement, which settings count as finished, and the
verdict sentence against hand-computed differences."""
from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import ROOT
from src import grid_docs


def _row(nt, ratio, seed, method, acc):
    return {"dataset": "trec", "noise_type": nt, "noise_ratio": str(ratio), "seed": str(seed), "method": method,
            "config_hash": "h", "test_acc": str(acc), "test_acc_last_epoch": ""}


def _rows():
    rows = []
    # SN 20%: DyGen 0.90/0.92 against traj_lr 0.91/0.93 (loses by 1 point at both seeds)
    for seed, base in ((1, 0.90), (2, 0.92)):
        for m in grid_docs.SETTING_METHODS:
            rows.append(_row("SN", 0.2, seed, m, {"dygen": base, "traj_lr": base + 0.01}.get(m, base - 0.05)))
    # IDN 40% seed 1: DyGen best by 3 points over cr
    for m in grid_docs.SETTING_METHODS:
        rows.append(_row("IDN", 0.4, 1, m, {"dygen": 0.80, "cr": 0.77}.get(m, 0.70)))
    # ASN 20% seed 1 half-run: only two methods so far -> must not count
    rows += [_row("ASN", 0.2, 1, "dygen", 0.99), _row("ASN", 0.2, 1, "cr", 0.10)]
    return rows


def test_replace_block_keeps_markers_and_the_text_around():
    t = "a\n<!-- x -->\nold\n<!-- /x -->\nb\n"
    assert grid_docs.replace_block(t, "x", "new") == "a\n<!-- x -->\nnew\n<!-- /x -->\nb\n"
    for bad in ("no markers", "<!-- /x --> <!-- x -->", t + t):
        with pytest.raises(ValueError):
            grid_docs.replace_block(bad, "x", "new")


def test_finished_settings_exclude_a_half_run_setting():
    assert grid_docs.finished_settings(_rows()) == [("SN", 0.2, 1), ("SN", 0.2, 2), ("IDN", 0.4, 1)]
    assert not any(r["noise_type"] == "ASN" for r in grid_docs.complete_rows(_rows()))


def test_verdict_against_hand_computed_differences():
    v = grid_docs.verdict(grid_docs.complete_rows(_rows()))
    assert "best mean test accuracy in 1 of the 2 noise settings" in v
    assert "SN 20%: -1.0 against traj_lr (0/0/2 over 2 seeds)" in v
    assert "IDN 40%: +3.0 against cr (1/0/0 over 1 seed)" in v
    assert "in 1 of the 2 noise settings. DyGen minus" in grid_docs.verdict(grid_docs.complete_rows(_rows()),
                                                                          complete=True)
    assert grid_docs.verdict([]) == "No noise setting of the grid has finished yet."
    assert grid_docs.verdict([], where=" on X") == "No noise setting of the grid on X has finished yet."
    s = grid_docs.status_line(_rows(), 18)
    assert s.startswith("Status: 3 of 18 settings finished (SN 20% seed 1, SN 20% seed 2, IDN 40% seed 1)")


def test_fill_rebuilds_each_grids_blocks_from_its_own_rows():
    a = grid_docs.GridDoc("trec", "a.csv", "A", "a test", 18)
    b = grid_docs.GridDoc("20news", "b.csv", "B", "b test", 12)
    readme = "".join(f"<!-- {m} -->\nold\n<!-- /{m} -->\n" for g in (a, b) for m in g.markers()[:2])
    results = "".join(f"<!-- {g.markers()[2]} -->\nold\n<!-- /{g.markers()[2]} -->\n" for g in (a, b))
    new_readme, new_results = grid_docs.fill(readme, results, {"trec": _rows()}, grids=(a, b))
    assert "old" not in new_readme + new_results
    # grid A: its 3 finished settings, the half-run ASN one left out; grid B: no CSV yet
    assert "on A, every method fitted on the same noisy training split (3 of 18 settings so far" in new_readme
    a3 = grid_docs.GridDoc("trec", "a.csv", "A", "a test", 3)   # all 3 finished: no "so far"
    done_readme, _ = grid_docs.fill(readme, results, {"trec": _rows()}, grids=(a3, b))
    assert "(3 of 3 settings; command" in done_readme and "in 1 of the 2 noise settings. DyGen" in done_readme
    assert "| SN 20% | IDN 40% |" in new_readme and "ASN" not in new_readme
    assert "on B, every method fitted on the same noisy training split (0 of 12 settings so far" in new_readme
    assert "No noise setting of the grid on B has finished yet." in new_readme
    assert "Status: 3 of 18 settings finished" in new_results and "Status: 0 of 12 settings finished (none)" in new_results
    assert "a test; mean" in new_results and "b test" not in new_results
    with pytest.raises(ValueError):   # a grid whose markers are missing fails loudly
        grid_docs.fill(readme, results, {}, grids=(a, b, grid_docs.GridDoc("r8", "c.csv", "C", "c", 6)))


def test_committed_docs_match_the_committed_grid_csvs():
    """README.md and docs/results.md were regenerated after the last change to a grid CSV."""
    r = subprocess.run([sys.executable, str(ROOT / "scripts/update_grid_docs.py"), "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
