"""Bad input for the bring-your-own-data path: one clear line, exit code 2, no traceback."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import main

ROOT = Path(__file__).resolve().parents[1]


def _csv(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


GOOD = "text,label\n" + "".join(f"text number {i},{'ab'[i % 2]}\n" for i in range(10))


def _cases(tmp: Path):
    good = _csv(tmp / "good.csv", GOOD)
    bad_bytes = tmp / "latin1.csv"
    bad_bytes.write_bytes("text,label\ncaf\u00e9 au lait,a\nthe tea,b\n".encode("latin-1"))
    return [
        ("missing file", ["--train_file", str(tmp / "nope.csv")], "no such file"),
        ("missing train_file", [], "needs --train_file"),
        ("missing column", ["--train_file", good, "--text_column", "body"], "no text column 'body'"),
        ("missing gold column", ["--train_file", good, "--gold_column", "truth"], "no gold column 'truth'"),
        ("empty file", ["--train_file", _csv(tmp / "empty.csv", "")], "empty"),
        ("header only", ["--train_file", _csv(tmp / "header.csv", "text,label\n")], "no data rows"),
        ("label once", ["--train_file", _csv(tmp / "once.csv", GOOD + "odd one,c\n")],
         "label 'c' appears only once (row 10)"),
        ("one class", ["--train_file", _csv(tmp / "one.csv", "text,label\nx,a\ny,a\nz,a\n")], "only one class"),
        ("non utf-8", ["--train_file", str(bad_bytes)], "not UTF-8 text (byte 0xe9 at line 2)"),
        ("all blank", ["--train_file", _csv(tmp / "blank.csv", "text,label\n ,a\n,b\n")], "every text"),
        ("unseen test label", ["--train_file", good, "--test_file",
                               _csv(tmp / "t.csv", "text,label\nq,zz\n")], "never given in training"),
        ("noise_ratio", ["--train_file", good, "--noise_ratio", "1.0"], "--noise_ratio must be in [0, 1)"),
        ("flag_ratio", ["--train_file", good, "--flag_ratio", "-0.1"], "--flag_ratio must be in [0, 1)"),
        ("flag_ratio high", ["--train_file", good, "--flag_ratio", "1"], "--flag_ratio must be in [0, 1)"),
    ]


def test_bad_inputs_in_process(tmp_path, capsys, tiny_bert_dir):
    for name, extra, expected in _cases(tmp_path):
        argv = ["--dataset", "csv", "--bert", tiny_bert_dir, "--path", str(tmp_path / "ds"),
                "--output_dir", str(tmp_path / "cache"), *extra]
        rc = main.main(argv)
        err = capsys.readouterr().err
        errors = [l for l in err.splitlines() if l.startswith("main.py: error:")]
        assert rc == 2, (name, err[-500:])
        assert "Traceback" not in err, name
        assert len(errors) == 1 and expected in errors[0], (name, errors)


def test_train_file_with_a_builtin_dataset_is_refused(capsys):
    assert main.main(["--dataset", "trec", "--train_file", "x.csv"]) == 2
    assert "only with --dataset csv or jsonl" in capsys.readouterr().err


@pytest.mark.parametrize("extra,expected", [
    (["--dataset", "csv", "--train_file", "/nonexistent/x.csv"], "no such file"),
    (["--dataset", "agnews", "--path", "/nonexistent"], "put train.csv, test.csv under"),
])
def test_bad_input_as_a_subprocess(extra, expected, tiny_bert_dir):
    p = subprocess.run([sys.executable, "main.py", "--bert", tiny_bert_dir, *extra], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 2
    assert "Traceback" not in p.stderr
    errors = [l for l in p.stderr.splitlines() if l.startswith("main.py: error:")]
    assert len(errors) == 1 and expected in errors[0]


def test_blank_texts_are_dropped_and_counted(tmp_path, caplog):
    from src.data.datasets import load_dataset
    f = _csv(tmp_path / "b.csv", "text,label\nx,a\n,b\ny,b\n   ,a\nz,a\nw,b\n")
    with caplog.at_level("WARNING", logger="dygen"):
        ds = load_dataset("csv", tmp_path, train_file=f)
    assert ds.row_ids.tolist() == [0, 2, 4, 5]
    assert "dropped 2 rows with a blank text (rows 1, 3)" in caplog.text
