"""Plots: the numbers they draw (reliability bins by hand) and readable PNG files."""
from __future__ import annotations

import numpy as np
import pytest

from src import plots
from src.model.evaluate import expected_calibration_error

PNG = b"\x89PNG\r\n\x1a\n"


def _png(path):
    data = path.read_bytes()
    assert data[:8] == PNG and len(data) > 2000
    import matplotlib.image as mpimg
    img = mpimg.imread(path)
    assert img.shape[0] > 200 and img.shape[1] > 300 and img[..., :3].std() > 0.05   # not blank


def test_reliability_bins_by_hand():
    # confidences 0.95 (correct), 0.95 (wrong), 0.55 (correct); 10 bins
    probs = np.array([[0.95, 0.05], [0.95, 0.05], [0.45, 0.55]])
    labels = np.array([0, 1, 1])
    centres, acc, conf, count = plots.reliability_bins(probs, labels, n_bins=10)
    assert count.tolist() == [0, 0, 0, 0, 0, 1, 0, 0, 0, 2]
    assert acc[9] == 0.5 and conf[9] == pytest.approx(0.95) and acc[5] == 1.0 and np.isnan(acc[0])
    assert centres[9] == pytest.approx(0.95)
    # the ECE is the count-weighted gap of those bins
    ece = (2 / 3) * abs(0.5 - 0.95) + (1 / 3) * abs(1.0 - 0.55)
    assert expected_calibration_error(probs, labels, n_bins=10) == pytest.approx(ece)


def test_every_plot_writes_a_readable_png(tmp_path):
    rng = np.random.default_rng(0)
    is_noisy = rng.random(200) < 0.3
    own = rng.normal(5, 1, (4, 200)) + 2 * is_noisy
    out = plots.run_plots(tmp_path, scores=own.mean(0) + own.std(0), own_dist=own, is_noisy=is_noisy,
                          probs_before=rng.dirichlet(np.ones(5), 50), probs_after=rng.dirichlet(np.ones(5) * 0.3, 50),
                          test_labels=rng.integers(0, 5, 50))
    assert set(out) == {"score_histograms", "trajectories", "reliability"}
    for p in out.values():
        _png(tmp_path / p.split("/")[-1])
    series = {"SN": {"dygen": [(0.4, 0.5, 0.02), (0.2, 0.6, 0.01)], "cr": [(0.2, 0.55, 0.0), (0.4, 0.45, 0.03)]},
              "IDN": {"dygen": [(0.2, 0.58, 0.01)]}}
    _png(plots.accuracy_vs_noise(series, tmp_path / "grid.png"))
    # without clean labels only the reliability diagram can be drawn
    out = plots.run_plots(tmp_path / "real", scores=own[0], own_dist=own, is_noisy=None,
                          probs_before=rng.dirichlet(np.ones(5), 50), probs_after=rng.dirichlet(np.ones(5), 50),
                          test_labels=rng.integers(0, 5, 50))
    assert set(out) == {"reliability"}
