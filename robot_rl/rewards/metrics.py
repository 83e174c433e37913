"""How a reward model is judged (ANCHORS.md, "Reward and progress reward models").

VOC, the value-order correlation of GVL, is Spearman's ρ between the predicted progress and
the frame order; a reward model that always rises scores 1 on any episode, so it is read on
successful, failed and reversed episodes together. Success is judged per frame against
labels (sim ground truth or the operator's): precision, recall, F1 at a threshold, and
AUROC over all thresholds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats


def voc(progress: np.ndarray) -> float:
    """Spearman's ρ between ``progress`` and frame order (NaN for constant progress or < 2 frames)."""
    progress = np.asarray(progress, dtype=float)
    if len(progress) < 2 or np.all(progress == progress[0]):
        return float("nan")
    return float(stats.spearmanr(np.arange(len(progress)), progress).statistic)


def kendall_tau(progress: np.ndarray) -> float:
    """Kendall's τ between ``progress`` and frame order (NaN as for :func:`voc`)."""
    progress = np.asarray(progress, dtype=float)
    if len(progress) < 2 or np.all(progress == progress[0]):
        return float("nan")
    return float(stats.kendalltau(np.arange(len(progress)), progress).statistic)


@dataclass(frozen=True)
class SuccessScores:
    precision: float
    recall: float
    f1: float
    auroc: float


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve: the chance a random positive outscores a random negative
    (ties count half); NaN without both classes."""
    scores, labels = np.asarray(scores, dtype=float), np.asarray(labels, dtype=bool)
    positives, negatives = labels.sum(), (~labels).sum()
    if positives == 0 or negatives == 0:
        return float("nan")
    ranks = stats.rankdata(scores)
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def success_scores(probabilities: np.ndarray, labels: np.ndarray, threshold: float = 0.5) -> SuccessScores:
    """Precision, recall and F1 of ``probabilities >= threshold`` against ``labels``, and AUROC."""
    predicted, labels = np.asarray(probabilities) >= threshold, np.asarray(labels, dtype=bool)
    tp = float(np.sum(predicted & labels))
    precision = tp / predicted.sum() if predicted.any() else float("nan")
    recall = tp / labels.sum() if labels.any() else float("nan")
    f1 = 2 * tp / (predicted.sum() + labels.sum()) if (predicted.any() or labels.any()) else float("nan")
    return SuccessScores(float(precision), float(recall), float(f1), auroc(probabilities, labels))


def best_threshold(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The threshold with the highest F1 on (validation) ``labels``; ties go to the higher one
    (fewer false positives, which end episodes early)."""
    candidates = np.unique(np.asarray(probabilities, dtype=float))
    best, best_f1 = 0.5, -1.0
    for t in candidates:
        f1 = success_scores(probabilities, labels, t).f1
        if not np.isnan(f1) and f1 >= best_f1:
            best, best_f1 = float(t), f1
    return best
