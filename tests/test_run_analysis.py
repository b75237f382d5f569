"""The run-folder analysis scripts: per-class recall over runs, and one class's label flow."""
import importlib.util
import json

import numpy as np

from conftest import ROOT


def _load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_per_class_recall_script_averages_over_runs(tmp_path, capsys):
    mod = _load("per_class_recall")
    labels = np.array([0, 0, 1, 1])
    for i, pred in enumerate(([0, 1, 1, 1], [0, 0, 0, 1])):   # class A: 50% then 100%; B: 100% then 50%
        d = tmp_path / f"run-{i}"
        d.mkdir()
        np.savez(d / "test_predictions.npz", test_labels=labels, dygen_probs=np.eye(2)[pred])
        (d / "label_map.json").write_text(json.dumps({"A": 0, "B": 1}))
    assert mod.main([str(tmp_path / "run-*"), "--methods", "dygen"]) == 0
    out = capsys.readouterr().out
    assert "| method | A (2) | B (2) |" in out and "| dygen | 75 [50/100] | 75 [100/50] |" in out
    assert mod.main([str(tmp_path / "run-*"), "--methods", "npc"]) == 2          # no npc predictions
    # a grid setting split over two folders: `single` alone in a third; each method reads its own
    d = tmp_path / "run-2"
    d.mkdir()
    np.savez(d / "test_predictions.npz", test_labels=labels, single_probs=np.eye(2)[[1, 1, 1, 1]])
    (d / "label_map.json").write_text(json.dumps({"A": 0, "B": 1}))
    assert mod.main([str(tmp_path / "run-*"), "--methods", "dygen", "single"]) == 0
    out = capsys.readouterr().out
    assert "mean over 1/2 run(s)" in out and "| dygen | 75 [50/100] | 75 [100/50] |" in out
    assert "| single | 0 [0] | 100 [100] |" in out
    assert mod.main([str(tmp_path / "none-*")]) == 2


def test_class_flow_counts_a_hand_made_case(tmp_path, capsys):
    mod = _load("class_flow")
    head = "row,given_label,dygen_label,flagged,cleanlab_label,clean_label\n"
    rows = ["1,A,A,0,A,A", "2,A,B,1,A,A",       # truly A, kept A: one flagged and moved to B by DyGen
            "3,B,B,1,A,A",                      # truly A, given B
            "4,A,B,1,B,B", "5,A,B,1,B,B",       # given A, truly B
            "6,B,B,0,B,B"]
    d = tmp_path / "run-1"
    d.mkdir()
    (d / "corrected_labels.csv").write_text(head + "\n".join(rows) + "\n")
    import csv
    f = mod.class_flow(list(csv.DictReader(open(d / "corrected_labels.csv"))), "A")
    assert (f["given"], f["true"], f["true_kept"], f["true_flagged"]) == (4, 3, 2, 2)
    assert f["given_really"] == {"B": 2, "A": 2} and f["true_dygen"] == {"A": 1, "B": 2}
    assert f["true_cleanlab"] == {"A": 3}
    assert mod.main([str(tmp_path / "run-*"), "--label", "A"]) == 0
    assert "| run-1 | 4 (A 2, B 2) | 3 | 2 | 2 | B 2, A 1 | A 3 |" in capsys.readouterr().out
    assert mod.main([str(tmp_path / "none-*"), "--label", "A"]) == 2


def test_run_folders_keeps_finished_runs_in_name_order(tmp_path):
    from src.outputs import run_folders
    for name, done in (("20260102-run", True), ("20260101-run", True), ("20260103-run", False)):
        (tmp_path / name).mkdir()
        if done:
            (tmp_path / name / "metrics.json").write_text("{}")
    (tmp_path / "20260104-run").write_text("a file, not a folder")
    (tmp_path / "20260103-run" / "metrics.json").mkdir()   # a folder of that name is not the file
    assert run_folders(str(tmp_path / "2026*-run"), "metrics.json") == [
        str(tmp_path / "20260101-run"), str(tmp_path / "20260102-run")]
    assert run_folders(str(tmp_path / "none-*"), "metrics.json") == []
