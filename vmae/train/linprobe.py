"""`vmae linprobe`: logistic regression on frozen, mean-pooled encoder features.

    vmae linprobe --data DIR --out DIR [--init CKPT] [--train-manifest CSV] [--seed S]
                  [--config YAML] [key=value ...]

The encoder comes from ``--init`` or is left at its random initialisation (the scratch reference).
Features = ``forward_head(pre_logits=True)`` (mean pool -> fc_norm), extracted once and averaged
over views: ``train_clips`` evenly spaced centre clips a training video, the test views
(``data.test_clips x data.test_crops``) a validation video; cached in ``<out>/features.npz``.
Classifier: scikit-learn ``StandardScaler`` + ``LogisticRegression(C, max_iter)``; with ``C_grid``,
C is the grid value of the best mean accuracy over ``cv_folds`` stratified folds of the training
features (``GridSearchCV``; the evaluated videos never take part). Writes ``metrics.json`` (top1,
top5 in percent, C, train_videos, val_videos (the ``--eval-manifest``'s), bad_videos,
val_bad_videos, init, wall_s, clips_per_s) and ``predictions.csv``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
import zipfile
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from vmae.atomic import atomic_open
from vmae.config import LinprobeConfig, to_dict
from vmae.data.dataset import FixedViews
from vmae.models import build_encoder
from vmae.models.checkpoints import load_encoder_weights
from vmae.models.vit import VideoViT
from vmae.train import cli_common
from vmae.train.distributed import DistEnv, shutdown
from vmae.train.evaluate import (
    VideoOutputs,
    accuracy_metrics,
    video_outputs,
    write_predictions,
)
from vmae.train.flops import encoder_clip_flops

FEATURES_NAME = "features.npz"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    cli_common.add_run_arguments(parser, epochs=False, init=True)


def fit_probe(features: np.ndarray, labels: np.ndarray, cfg: LinprobeConfig) -> Pipeline:
    """Standardise features (N, D), then multinomial logistic regression (L2, strength 1/C): ``cfg.C``,
    or the ``cfg.C_grid`` value that cross-validates best on these training features (scaler refit
    within each fold), refit on all of them."""
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=cfg.C, max_iter=cfg.max_iter, random_state=cfg.seed))
    if not cfg.C_grid:
        return probe.fit(features, labels)
    folds = StratifiedKFold(n_splits=cfg.cv_folds, shuffle=True, random_state=cfg.seed)
    search = GridSearchCV(probe, {"logisticregression__C": list(cfg.C_grid)}, cv=folds, scoring="accuracy")
    return search.fit(features, labels).best_estimator_


def probe_C(probe: Pipeline) -> float:
    """The regularisation the fitted probe used."""
    return float(probe[-1].C)


def probe_scores(probe: Pipeline, features: np.ndarray, num_classes: int) -> np.ndarray:
    """Class probabilities (N, num_classes), zero for classes absent from the probe's training set."""
    scores = np.zeros((len(features), num_classes))
    scores[:, probe.classes_] = probe.predict_proba(features)
    return scores


def extract(model: VideoViT, dataset: FixedViews, env: DistEnv, cfg: LinprobeConfig) -> VideoOutputs:
    """View-averaged pooled features (N, D) of every readable video of ``dataset``."""
    return video_outputs(lambda clips: model.forward_head(model.forward_features(clips), pre_logits=True),
                         dataset, env.device, cfg.batch_size, cfg.data.num_workers)


def cached_features(path: Path, key: str, model: VideoViT, train_set: FixedViews, val_set: FixedViews,
                    env: DistEnv, cfg: LinprobeConfig) -> tuple[VideoOutputs, VideoOutputs, float]:
    """Train and val features from ``path`` if it holds them for ``key`` (the run's config and init),
    else extracted and saved there. Returns (train, val, extraction seconds; 0 when cached)."""
    if path.exists():
        try:
            with np.load(path) as data:
                if str(data["key"]) == key:
                    parts = [VideoOutputs(list(data[f"{s}_paths"]), data[f"{s}_labels"], data[f"{s}_features"],
                                          int(data[f"{s}_bad"])) for s in ("train", "val")]
                    print(f"features read from {path}")
                    return parts[0], parts[1], 0.0
            print(f"{path} holds features of another config or init: extracting again")
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as err:  # cut short by a kill (older runs)
            print(f"{path} is unreadable ({type(err).__name__}): extracting again")
    start = time.perf_counter()
    train, val = extract(model, train_set, env, cfg), extract(model, val_set, env, cfg)
    seconds = time.perf_counter() - start
    arrays = {"key": np.asarray(key)}
    for split, part in (("train", train), ("val", val)):
        arrays.update({f"{split}_paths": np.asarray(part.paths), f"{split}_labels": part.labels,
                       f"{split}_features": part.outputs, f"{split}_bad": np.asarray(part.bad_videos)})
    with atomic_open(path, "wb") as handle:
        np.savez(handle, **arrays)
    return train, val, seconds


def main(args: argparse.Namespace) -> int:
    cfg = cli_common.load_run_config(LinprobeConfig, args)
    out: Path = args.out
    if cli_common.finished(out, to_dict(cfg), args):
        return 0
    env = cli_common.start(cfg.seed, cfg.device)
    if not env.is_main:  # feature extraction and the probe run on one process
        shutdown(env)
        return 0
    train_set = cli_common.fixed_views(args, cfg, env, cli_common.train_manifest(args), cfg.train_clips, crops=1)
    val_set = cli_common.eval_views(args, cfg, env)
    num_classes = train_set.info.num_classes
    model = build_encoder(cfg.model).to(env.device).eval()
    if args.init:
        for line in load_encoder_weights(model, args.init, trust=args.trust_checkpoint):
            print(line)
    start = time.perf_counter()
    key = json.dumps({"config": to_dict(cfg), **cli_common.run_inputs(args),
                      "inputs": cli_common.input_identity(args)})
    train, val, extract_s = cached_features(out / FEATURES_NAME, key, model, train_set, val_set, env, cfg)
    probe = fit_probe(train.outputs, train.labels, cfg)
    scores = probe_scores(probe, val.outputs, num_classes)
    write_predictions(out / "predictions.csv", dataclasses.replace(val, outputs=scores))
    clips = len(train.paths) * cfg.train_clips + len(val.paths) * cfg.data.test_clips * cfg.data.test_crops
    cli_common.write_metrics(out, cfg, args, env, {
        **accuracy_metrics(scores, val.labels), "C": probe_C(probe),
        "train_flops": encoder_clip_flops(cfg.model, 0, False) * clips,  # the features of every view
        "train_videos": len(train_set), "val_videos": len(val_set),
        "bad_videos": train.bad_videos, "val_bad_videos": val.bad_videos,
        "feature_dim": int(train.outputs.shape[1]),
        "wall_s": time.perf_counter() - start, "clips_per_s": clips / extract_s if extract_s else None,
    })
    shutdown(env)
    return 0
