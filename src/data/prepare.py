"""data step: load -> subset -> train/validation split -> corrupt -> tokenise (cached).

Sample order everywhere downstream: [train | validation | test], N_all samples.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import List, Tuple

import numpy as np

from src.config import Config
from src.data import noise as noise_lib
from src.data.datasets import DATASETS, load_dataset
from src.data.splits import stratified_subset, train_val_split
from src.data.tokenize import Tokens, tokenize
from src.errors import UserError
from src.outputs import atomic_save_npz

log = logging.getLogger("dygen")


@dataclass(frozen=True)
class MethodData:
    """What every method may read: texts, token ids and the NOISY train/validation labels.
    Sample order: [train | validation | test]; test samples carry no label here."""
    tokens: Tokens                 # N_all ragged token ids
    texts: List[str]               # N_all texts
    noisy: np.ndarray              # (N_trval,) the given (noisy) labels of train + validation
    n_train: int
    n_val: int
    class_names: List[str]
    row_ids: np.ndarray            # (N_trval,) each train/validation text's row in its source file

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def n_trval(self) -> int:
        return self.n_train + self.n_val

    @property
    def n_all(self) -> int:
        return len(self.texts)

    @property
    def train_idx(self) -> np.ndarray:
        return np.arange(self.n_train)

    @property
    def val_idx(self) -> np.ndarray:
        return np.arange(self.n_train, self.n_trval)

    @property
    def test_idx(self) -> np.ndarray:
        return np.arange(self.n_trval, self.n_all)


@dataclass(frozen=True)
class Oracle:
    """What only evaluation reads: clean train/validation labels (diagnostics) and gold test
    labels (scoring); -1 where unknown. No method receives this object."""
    clean_trval: np.ndarray        # (N_trval,)
    test_gold: np.ndarray          # (N_test,)

    @property
    def has_test_gold(self) -> bool:
        return len(self.test_gold) > 0 and bool((self.test_gold >= 0).all())

    def realised_noise_rate(self, noisy: np.ndarray, rows: np.ndarray) -> float:
        """Fraction of `rows` (with a known clean label) whose given label is wrong."""
        clean = self.clean_trval[rows]
        known = clean >= 0
        return float((noisy[rows][known] != clean[known]).mean()) if known.any() else float("nan")


def data_cache_keys():
    return ("dataset", "bert", "max_len", "noise_type", "noise_ratio", "seed",
            "max_train_samples", "max_test_samples",
            "train_file", "test_file", "text_column", "label_column", "gold_column", "data_fingerprint")


def effective_max_len(cfg: Config) -> int:
    return cfg.max_len if cfg.max_len is not None else DATASETS[cfg.dataset].max_len


def load_token_cache(cache: Path, key: str, n_all: int, n_trval: int, num_classes: int):
    """(tokens, clean, noisy) from a tokenised cache, or None (reported) when it is corrupt,
    made by another configuration, or of the wrong shape."""
    try:
        with np.load(cache, allow_pickle=False) as z:
            if str(z["config_hash"]) != key:
                raise ValueError(f"configuration hash {str(z['config_hash'])!r} is not {key!r}")
            tokens = Tokens(z["ids"], z["offsets"])
            clean, noisy = z["clean"], z["noisy"]
        ok = (len(tokens) == n_all and len(clean) == n_all and len(noisy) == n_trval
              and tokens.offsets[0] == 0 and tokens.offsets[-1] == len(tokens.ids)
              and (np.diff(tokens.offsets) >= 0).all() and ((noisy >= 0) & (noisy < num_classes)).all())
        if not ok:
            raise ValueError("shapes do not match the data")
    except Exception as e:  # noqa: BLE001 - a bad cache is rebuilt, never used
        log.warning("tokenised cache %s is unusable (%s: %s); rebuilding", cache, type(e).__name__,
                    str(e).splitlines()[0] if str(e) else "")
        return None
    return tokens, clean, noisy


def prepare_data(cfg: Config, tokenizer, model_dir: str, device) -> Tuple[MethodData, Oracle]:
    """The method's data and, apart, the oracle labels; the tokenised data and the noisy
    labels are cached (both objects are rebuilt from the one cache file)."""
    raw = load_dataset(cfg.dataset, Path(cfg.path), **custom_options(cfg))
    C = len(raw.class_names)
    seed = cfg.seed
    given = raw.given_train_labels
    n = cfg.max_train_samples
    if n is not None and n < min(C, len(given)):
        # the method needs every class in its training subset (a test subset may miss some)
        raise UserError(f"--max_train_samples {n} is smaller than the number of classes ({C})")
    # Subsets (stratified by the labels the method may see) of the official splits, then the
    # seeded 80/20 carve.
    tr_sub = stratified_subset(given, cfg.max_train_samples or len(given), seed)
    te_sub = np.arange(len(raw.test_texts))
    if cfg.max_test_samples and raw.test_labels is not None:
        te_sub = stratified_subset(raw.test_labels, cfg.max_test_samples, seed)
    tr_pos, va_pos = train_val_split(len(tr_sub), seed)
    tr_idx, va_idx = tr_sub[tr_pos], tr_sub[va_pos]
    texts = ([raw.train_texts[i] for i in tr_idx] + [raw.train_texts[i] for i in va_idx]
             + [raw.test_texts[i] for i in te_sub])
    test_gold = raw.test_labels[te_sub] if raw.test_labels is not None else np.full(len(te_sub), -1)
    n_train, n_val = len(tr_idx), len(va_idx)
    row_ids = raw.row_ids[np.concatenate([tr_idx, va_idx])]

    max_len = effective_max_len(cfg)
    key = cfg.hash(data_cache_keys())
    cache = Path(cfg.path) / cfg.dataset / "saved_data" / f"{key}.npz"
    if cfg.saved_dataset == "y" and cache.exists():
        hit = load_token_cache(cache, key, len(texts), n_train + n_val, C)
        if hit is not None:
            log.info("tokenised data from cache %s", cache)
            tokens, clean, noisy = hit
            return _split(tokens, texts, clean, noisy, n_train, n_val, raw.class_names, row_ids)

    log.info("tokenising %d texts (max_len %d)", len(texts), max_len)
    tokens = tokenize(texts, tokenizer, max_len)
    noisy, clean_trval = noisy_labels(cfg, raw, np.concatenate([tr_idx, va_idx]), n_train, tokens, tokenizer,
                                      model_dir, device)
    clean = np.concatenate([clean_trval, test_gold]).astype(np.int64)
    atomic_save_npz(cache, ids=tokens.ids, offsets=tokens.offsets, clean=clean, noisy=noisy,
                    config_hash=np.array(key))
    return _split(tokens, texts, clean, noisy, n_train, n_val, raw.class_names, row_ids)


def _split(tokens, texts, clean, noisy, n_train, n_val, class_names, row_ids) -> Tuple[MethodData, Oracle]:
    n_trval = n_train + n_val
    data = MethodData(tokens, texts, np.asarray(noisy, np.int64), n_train, n_val, list(class_names),
                      np.asarray(row_ids))
    return data, Oracle(np.asarray(clean[:n_trval], np.int64), np.asarray(clean[n_trval:], np.int64))


def custom_options(cfg: Config) -> dict:
    """The file settings a custom loader (csv/jsonl) takes; nothing for the built-in datasets."""
    if not DATASETS[cfg.dataset].custom:
        return {}
    return dict(train_file=cfg.train_file, test_file=cfg.test_file, text_column=cfg.text_column,
                label_column=cfg.label_column, gold_column=cfg.gold_column)


def noisy_labels(cfg: Config, raw, trval_orig: np.ndarray, n_train: int, tokens: Tokens, tokenizer, model_dir: str,
                 device):
    """(noisy (N_trval,), clean (N_trval,)): the labels as given (real noise), or the clean ones
    corrupted (SN/ASN/IDN), train and validation independently (SPEC section 1)."""
    C = len(raw.class_names)
    if cfg.noise_type == "REAL":  # real noise: use the labels as given
        noisy = raw.noisy_train_labels[trval_orig].astype(np.int64)
        clean = raw.train_labels[trval_orig] if raw.train_labels is not None else np.full(len(noisy), -1)
        log.info("real noise: the given labels are used as they are (--noise_ratio is not applied)")
        return noisy, clean
    # Synthetic noise on a real-noise dataset corrupts its gold labels if it has them, else the given
    # labels (then taken as clean).
    base = raw.train_labels if raw.train_labels is not None else raw.noisy_train_labels
    clean = base[trval_orig].astype(np.int64)
    features = None
    if cfg.noise_type == "IDN":
        from src.data.features import mean_pooled_features
        features = mean_pooled_features(model_dir, tokens.subset(np.arange(len(clean))), tokenizer.pad_token_id,
                                        device, cfg.eval_batch_size)
    rng = np.random.default_rng(cfg.seed)
    parts = []
    for sl in (slice(0, n_train), slice(n_train, len(clean))):
        f = features[sl] if features is not None else None
        try:
            parts.append(noise_lib.corrupt(clean[sl], cfg.noise_type, cfg.noise_ratio, C, rng, f))
        except ValueError as e:
            raise UserError(f"--noise_ratio: {e}") from None
    return np.concatenate(parts), clean
