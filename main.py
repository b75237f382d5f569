"""DyGen entry point: flags -> Config -> pipeline.run(config)."""
from __future__ import annotations

import logging
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main(argv=None) -> int:
    from src.config import build_parser, config_from_args
    from src.errors import UserError
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    try:
        cfg = config_from_args(argv)
        from src import pipeline
        metrics = pipeline.run(cfg)
    except UserError as e:
        print(f"main.py: error: {e}", file=sys.stderr)
        print("(python main.py --help lists every flag)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted; stage-1 results are cached only once stage 1 completes", file=sys.stderr)
        return 130
    print(pipeline.summary_table(metrics))
    return 0


if __name__ == "__main__":
    sys.exit(main())
