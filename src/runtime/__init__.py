"""Where and how this process computes, kept out of the training code:

    allocator.py    jemalloc for the process's memory (re-executes the entry point once)
    device.py       the device, and batches copied onto it
    amp.py          mixed precision on CUDA (autocast, gradient scaler)
    threads.py      torch's thread count; the M models trained in threads (`ModelThreads`)
    distributed.py  torchrun (DDP): process group, ranks, gathering rows
    resume.py       RNG states, saved and restored for an exact resume
    perf.py         throughput counters of stage 1 (scripts/bench.py)
    models.py       `ModelRuntime`: all of the above for the M models stage 1 trains
"""
