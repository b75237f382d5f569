"""DyGen entry point: flags -> Config -> pipeline.run(config).

Exit codes: 0 done; 2 a problem with the input or the environment (one line, no
traceback); 3 a numerical failure (NaN/inf loss or embeddings); 130 interrupted
(Ctrl-C or SIGTERM; re-run the same command to resume stage 1).
"""
from __future__ import annotations

import errno
import logging
import os
import signal
import sys

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

HINT = "(python main.py --help lists every flag)"
# OSErrors that mean "your environment", not "a bug": reported in one line.
ENV_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOENT,
              errno.EISDIR, errno.ENOTDIR}


def _fail(msg: str, code: int, hint: bool = True) -> int:
    print(f"main.py: error: {msg}", file=sys.stderr)
    if hint:
        print(HINT, file=sys.stderr)
    return code


def _sigterm(signum, frame):
    raise KeyboardInterrupt


def main(argv=None) -> int:
    from src.config import config_from_args
    from src.errors import UserError
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    if argv is None:  # a real process: treat SIGTERM like Ctrl-C (checkpoint kept, clean exit)
        signal.signal(signal.SIGTERM, _sigterm)
        # and Ctrl-C always interrupts: a shell starting a job in the background (`cmd &`) leaves
        # SIGINT ignored, and Python then never raises KeyboardInterrupt
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        cfg = config_from_args(argv)
        from src import pipeline
        metrics = pipeline.run(cfg)
    except UserError as e:
        return _fail(str(e), 2)
    except FloatingPointError as e:
        return _fail(f"numerical failure, run stopped: {e}. No results were written; try a lower --lr / "
                     f"--vae_lr or check the inputs", 3, hint=False)
    except MemoryError:
        return _fail("out of memory (fewer samples, --eval_batch_size or --train_batch_size)", 2)
    except OSError as e:
        if e.errno not in ENV_ERRNOS:
            raise  # a bug, not the user's doing
        where = f" ({e.filename})" if e.filename else ""
        return _fail(f"{e.strerror or e}{where}", 2)
    except RuntimeError as e:
        if type(e).__name__ != "OutOfMemoryError":  # torch.cuda.OutOfMemoryError
            raise
        return _fail("out of GPU memory (lower --train_batch_size / --eval_batch_size, or --device cpu)", 2)
    except KeyboardInterrupt:
        print("\nmain.py: interrupted. Stage 1 is checkpointed after every epoch: re-run the same "
              "command to resume from the last finished epoch.", file=sys.stderr)
        return 130
    if metrics is not None:  # None: a rank > 0 of a torchrun launch (rank 0 reports)
        from src.outputs import summary_table
        print(summary_table(metrics))
    return 0


if __name__ == "__main__":
    from src.runtime.allocator import reexec_with_jemalloc
    reexec_with_jemalloc()  # once, before anything is loaded: jemalloc when the machine has it
    sys.exit(main())
