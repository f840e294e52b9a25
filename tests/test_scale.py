"""Evaluation at MNIST size: 10,000 samples against a 50,000-image training set must fit in 4 GB
and finish in about 3 minutes on 2 cores (the evaluation issue's target)."""

import os
import struct
import subprocess
import sys
import time

import numpy as np
import pytest
import torch


def _write_mnist_idx(root, n_train=60_000, n_test=10_000, seed=0):
    """IDX files of the real MNIST size, in the layout torchvision reads. The pixels are sparse
    strokes-like blobs, not real digits: memory and time depend on the sizes, not the content."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = (rng.random((n, 28, 28)) < 0.2).astype(np.uint8) * 255
        labels = rng.integers(0, 10, n).astype(np.uint8)
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 2051, n, 28, 28) + images.tobytes())
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, n) + labels.tobytes())


@pytest.mark.slow
def test_mnist_sized_evaluation_fits_in_4_gb(tmp_path):
    from condgen_helpers.evaluation.classifier import _classifier_for, classifier_file

    _write_mnist_idx(tmp_path)
    # an untrained classifier in the cache: this test measures the evaluation, not its training
    cache = tmp_path / "classifiers"
    cache.mkdir()
    torch.save(_classifier_for(28).state_dict(), cache / classifier_file("mnist"))
    env = {**os.environ, "CONDGEN_DATA": str(tmp_path), "OMP_NUM_THREADS": "2"}
    start = time.perf_counter()
    # train for 0 epochs: what is left is the closing evaluation of 10,000 samples and the floor
    # the child reports its own peak resident memory (kB on Linux) as its last line
    wrapper = ("import resource, sys\nfrom condgen_helpers.cli import main\ntry:\n    code = main(sys.argv[1:])\n"
               "finally:\n    print('peak-kb', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
               "sys.exit(code)\n")
    proc = subprocess.run([sys.executable, "-c", wrapper, "train", "gan", "--dataset", "mnist",
                           "--epochs", "0", "--out", str(tmp_path / "run"), "--quiet"],
                          env=env, capture_output=True, text=True, timeout=600)
    seconds = time.perf_counter() - start
    assert proc.returncode == 0, proc.stderr[-2000:]
    peak_gb = int(proc.stderr.strip().splitlines()[-1].split()[-1]) / 2**20
    import json
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["n"] == 10_000 and "copy_share" in metrics and "interval" in metrics["floor"]
    print(f"MNIST-sized evaluation: {seconds:.0f} s, peak {peak_gb:.2f} GB")
    assert peak_gb < 4.0, f"peak memory {peak_gb:.2f} GB"
