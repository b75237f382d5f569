"""Checks made before any expensive work, so a typo or a full disk costs seconds, not hours.

Every problem a user can cause is raised as a UserError with one line naming it.
`check_paths` runs before the data step; `check_resources` right after it (the number of
samples is only known then) and before stage 1.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from src.config import Config
from src.errors import UserError

log = logging.getLogger("dygen")

TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "tokenizer.model", "spiece.model",
                   "sentencepiece.bpe.model")
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")
SKIP_ENV = "DYGEN_SKIP_RESOURCE_CHECK"  # =1: warn instead of refusing on disk/memory


def _writable_dir(path: Path, flag: str) -> None:
    """Create `path` if needed and prove it writable by creating (and removing) a file."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{flag} {path} is a file, not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path, prefix=".dygen-write-test-")
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        raise UserError(f"{flag} {path} is not a writable directory ({e.strerror or e})") from None


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise UserError(f"--bert: cannot read {path} ({e.strerror or e})") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise UserError(f"--bert: {path} is not valid JSON ({str(e).splitlines()[0]})") from None


def model_config(model_dir: str) -> dict:
    """config.json of a local model folder, checked readable and parseable, with weights and
    tokenizer files present; {} for a hub name."""
    d = Path(model_dir)
    if not d.is_dir():
        return {}
    cfg_file = d / "config.json"
    cfg = _read_json(cfg_file)
    if not isinstance(cfg, dict) or "model_type" not in cfg:
        raise UserError(f"--bert: {cfg_file} has no model_type (not a transformers model folder)")
    weights = [d / f for f in WEIGHT_FILES if (d / f).exists()]
    if not weights:
        raise UserError(f"--bert: {d} holds no weights (expected one of {', '.join(WEIGHT_FILES)})")
    for w in weights:
        if not os.access(w, os.R_OK):
            raise UserError(f"--bert: {w} is not readable")
    if not any((d / f).exists() for f in TOKENIZER_FILES):
        raise UserError(f"--bert: {d} holds no tokenizer (expected one of {', '.join(TOKENIZER_FILES)})")
    for f in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (d / f).exists():
            _read_json(d / f)
    return cfg


def check_tokenizer(tokenizer, model_dir: str) -> None:
    """A tokenizer that maps ordinary words to [UNK] has lost its vocabulary."""
    ids = tokenizer("the", add_special_tokens=False)["input_ids"]
    if len(tokenizer) < 100 or (ids and ids[0] == tokenizer.unk_token_id):
        raise UserError(f"--bert {model_dir}: the tokenizer has no usable vocabulary ({len(tokenizer)} tokens)")


def check_paths(cfg: Config, model_dir: str, max_len: int) -> dict:
    """Model folder present and readable, max_len within its positions, output folders writable.
    Returns the model's config.json ({} for a hub name)."""
    b = str(cfg.bert)
    if not Path(model_dir).is_dir() and (b.startswith(("/", ".", "~")) or b.count("/") > 1):
        raise UserError(f"--bert {b}: no such directory")
    mcfg = model_config(model_dir)
    n_pos = mcfg.get("max_position_embeddings")
    if isinstance(n_pos, int) and max_len > n_pos:
        raise UserError(f"--max_len {max_len} exceeds the model's {n_pos} positions")
    _writable_dir(Path(cfg.output_dir), "--output_dir")
    _writable_dir(Path(cfg.path), "--path")
    if cfg.save_model:
        _writable_dir(Path(cfg.model_dir), "--model_dir")
    return mcfg


@contextmanager
def user_errors(what: str):
    """Turn an unreadable or undecodable input file into a one-line UserError."""
    try:
        yield
    except UserError:
        raise
    except (OSError, UnicodeDecodeError, EOFError) as e:
        detail = getattr(e, "strerror", None) or (str(e).splitlines() or [type(e).__name__])[0]
        name = getattr(e, "filename", None)
        raise UserError(f"{what}: {detail}" + (f" ({name})" if name else "")) from None


def _gib(n: float) -> str:
    return f"{n / 2 ** 30:.2f} GiB"


def weight_bytes(model_dir: str) -> int:
    d = Path(model_dir)
    if not d.is_dir():
        return 0
    safetensors = sum(f.stat().st_size for f in d.glob("*.safetensors"))
    return safetensors or sum(f.stat().st_size for f in d.glob("*.bin"))


def resource_estimate(cfg: Config, n_all: int, num_classes: int, hidden: int, model_bytes: int) -> dict:
    """Bytes of disk and memory a run needs (stage-1 cache, checkpoint; stage-2 features)."""
    M, E = cfg.n_model, cfg.epochs
    z = M * E * n_all * hidden * 2                       # float16 trajectories (M, E, N_all, D)
    probs = M * E * n_all * num_classes * 4              # float32 softmax (M, E, N_all, C)
    # checkpoint: weights + AdamW moments (+ best copies), and a second copy while it is replaced
    ckpt = 2 * M * model_bytes * (3 + (1 if cfg.save_model else 0)) + probs
    saved = 2 * M * model_bytes if cfg.save_model else 0
    disk = z + 2 * probs + ckpt + saved
    # memory: weights, grads, AdamW moments, best copies; probs; stage-2 float32 features
    memory = M * model_bytes * 5 + probs + M * n_all * E * hidden * 4
    return {"trajectories": z, "disk": disk, "memory": memory}


def _mem_available() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return -1


def check_resources(cfg: Config, n_all: int, num_classes: int, hidden: int, model_bytes: int,
                    already_on_disk: int = 0, disk_usage=shutil.disk_usage) -> dict:
    """Print the estimate; refuse (UserError) when free disk or memory is short."""
    est = resource_estimate(cfg, n_all, num_classes, hidden, model_bytes)
    free = disk_usage(cfg.output_dir).free
    need_disk = max(0, est["disk"] - already_on_disk)
    avail = _mem_available()
    log.info("resources: trajectories %s (M=%d x E=%d x N=%d x D=%d float16); disk needed %s, free %s; "
             "memory needed about %s, available %s", _gib(est["trajectories"]), cfg.n_model, cfg.epochs,
             n_all, hidden, _gib(need_disk), _gib(free), _gib(est["memory"]),
             _gib(avail) if avail >= 0 else "unknown")
    problems = []
    if need_disk > free:
        problems.append(f"not enough free disk under --output_dir {cfg.output_dir}: "
                        f"need about {_gib(need_disk)}, {_gib(free)} free")
    if 0 <= avail < est["memory"]:
        problems.append(f"not enough memory: need about {_gib(est['memory'])}, {_gib(avail)} available")
    if problems:
        if os.environ.get(SKIP_ENV) == "1":
            for p in problems:
                log.warning("%s (ignored: %s=1)", p, SKIP_ENV)
        else:
            raise UserError(problems[0] + f" (fewer --epochs/--n_model/samples, or {SKIP_ENV}=1 to try anyway)")
    return est
