"""Evaluation pieces: top-k, the linear probe on separable features, video-level CutMix/Mixup."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vmae.config import FinetuneConfig, LinprobeConfig
from vmae.train.evaluate import VideoOutputs, accuracy_metrics, topk_percent, write_predictions
from vmae.train.finetune import mix_clips, video_mixup
from vmae.train.linprobe import fit_probe, probe_C, probe_scores


def test_topk_percent_by_hand():
    scores = np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])
    labels = np.array([1, 1, 0, 2])
    assert topk_percent(scores, labels, 1) == pytest.approx(25.0)  # only the first
    assert topk_percent(scores, labels, 2) == pytest.approx(50.0)  # + the second
    assert topk_percent(scores, labels, 3) == 100.0
    binary = np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    assert accuracy_metrics(binary, np.array([0, 1, 1])) == {"top1": pytest.approx(200 / 3), "top5": 100.0}


def test_linear_probe_separates_gaussian_clusters():
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=4.0, size=(5, 32))
    labels = np.repeat(np.arange(5), 40)
    features = centres[labels] + rng.normal(size=(200, 32))
    test_labels = np.repeat(np.arange(5), 20)
    test_features = centres[test_labels] + rng.normal(size=(100, 32))
    probe = fit_probe(features, labels, LinprobeConfig())
    scores = probe_scores(probe, test_features, num_classes=5)
    assert accuracy_metrics(scores, test_labels)["top1"] >= 99.0


def test_probe_C_is_the_grid_value_that_cross_validates_best():
    """Few samples, 3 informative dimensions among 40: the grid's values score differently on
    held-out folds. The chosen C is the best mean accuracy of the same folds computed by hand (here
    C = 0.01, not the smallest or largest), and the probe is refit on all training features with it."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 12)
    centres = np.zeros((3, 40))
    centres[:, :3] = rng.normal(scale=1.5, size=(3, 3))
    features = centres[labels] + rng.normal(size=(36, 40))
    cfg = LinprobeConfig(C_grid=(1e-4, 1e-2, 1.0, 100.0), cv_folds=3, seed=2)
    folds = StratifiedKFold(n_splits=3, shuffle=True, random_state=2)
    by_hand = {c: cross_val_score(make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000,
                                                                                     random_state=2)),
                                  features, labels, cv=folds).mean() for c in cfg.C_grid}
    probe = fit_probe(features, labels, cfg)
    assert probe_C(probe) == max(by_hand, key=by_hand.get) == 1e-2
    assert probe[-1].coef_.shape == (3, 40) and probe_C(fit_probe(features, labels, LinprobeConfig(C=0.5))) == 0.5


def test_probe_scores_cover_classes_missing_from_training():
    features = np.array([[0.0], [0.1], [5.0], [5.1]])
    probe = fit_probe(features, np.array([0, 0, 2, 2]), LinprobeConfig())
    scores = probe_scores(probe, np.array([[5.05]]), num_classes=3)
    assert scores.shape == (1, 3) and scores[0, 1] == 0.0 and scores[0].argmax() == 2


def test_cutmix_cuts_the_same_box_from_every_frame():
    mixup = video_mixup(FinetuneConfig(mixup=0.0, cutmix=1.0, label_smoothing=0.0), num_classes=4)
    video = torch.stack([torch.full((3, 4, 16, 16), float(i)) for i in range(4)])  # clip i is all i
    mixed, targets = mix_clips(mixup, video.clone(), torch.arange(4))
    assert mixed.shape == video.shape and targets.shape == (4, 4)
    changed = mixed[0] != video[0]  # (C, T, H, W): clip 0 got a box of the flipped clip 3
    assert torch.equal(changed, changed[:1, :1].expand_as(changed))  # same box in every channel and frame
    area = changed[0, 0].float().mean()
    assert targets[0, 0] == pytest.approx(1 - area.item(), abs=1e-6)  # lam adjusted to the box area
    assert video_mixup(FinetuneConfig(), num_classes=4) is None


def test_write_predictions(tmp_path):
    result = VideoOutputs(["a.mp4", "b.mp4"], np.array([1, 0]), np.array([[0.2, 0.8], [0.3, 0.7]]), 0)
    path = tmp_path / "predictions.csv"
    write_predictions(path, result)
    assert path.read_text().splitlines() == ["path,label,pred,prob", "a.mp4,1,1,0.800000", "b.mp4,0,1,0.700000"]
