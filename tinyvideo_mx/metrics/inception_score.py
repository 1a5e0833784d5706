"""Inception Score: exp(E_x KL(p(y|x) || p(y))), averaged over ``splits`` disjoint parts (as in TGAN)."""
import numpy as np


def inception_score(probabilities, splits=1, eps=1e-12):
    """(mean, std) over the splits of the IS of class probabilities (N, K) (rows sum to 1)."""
    p = np.asarray(probabilities, np.float64)
    if p.ndim != 2 or len(p) < splits or splits < 1:
        raise ValueError(f"need (N, K) probabilities with N >= splits >= 1, got {p.shape} and {splits} splits")
    scores = []
    for part in np.array_split(p, splits):
        marginal = part.mean(axis=0, keepdims=True)
        kl = (part * (np.log(part + eps) - np.log(marginal + eps))).sum(axis=1)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))
