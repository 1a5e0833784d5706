"""The original's objectives (docs/original.md §3, §4).

D ends in 2 logits and is trained with softmax cross-entropy (``nn.CrossEntropyCriterion``), Torch
classes 1 = real, 2 = fake, here 0 and 1. G uses the non-saturating loss (its fakes labelled real).
Both criteria average over the batch, so the trainers step with ``step(1)``.
"""
from mxnet import gluon, nd

REAL, FAKE = 0, 1
_cross_entropy = gluon.loss.SoftmaxCrossEntropyLoss()


def cross_entropy(logits, label, smoothing=0.0):
    """Mean softmax cross-entropy of (N, 2) logits against one class for the whole batch. ``smoothing``
    moves that much of the target to the other class: (1 - s) * CE(label) + s * CE(other) (one-sided label
    smoothing when given for the real clips only; 0 is the original)."""
    loss = _cross_entropy(logits, nd.full((logits.shape[0],), label, ctx=logits.context)).mean()
    if smoothing:
        other = _cross_entropy(logits, nd.full((logits.shape[0],), 1 - label, ctx=logits.context)).mean()
        loss = (1 - smoothing) * loss + smoothing * other
    return loss


def mask_prior(mask, weight=0.1):
    """``nn.L1Penalty(0.1, sizeAverage=true)`` on the sigmoid mask: 0.1 * mean(m) over every element
    (not the paper's sum); m > 0 so |m| = m and the gradient is weight / m.size, as in L1Penalty."""
    return weight * mask.mean()


def mode_seeking(video, z, weight=1.0, epsilon=1e-5):
    """G's mode-seeking term (a deviation, ``--mode-seeking``, docs/deviations.md; Mao et al., CVPR 2019):
    the batch's first and second halves are paired, and G pays ``weight / (d_video / d_z + epsilon)`` with
    d_z the mean absolute difference of paired z and d_video that of the paired clips' *average frames*
    (the mean over time). A G that answers different z with the same clip pays most. Measured on average
    frames because on whole clips the term also paid for frame-to-frame change that differs between clips -
    flicker (docs/learning.md, "Mode seeking on the average frame"). Batches of fewer than 2 rows pay
    nothing (returns None). ``video`` (N, C, T, H, W)."""
    half = video.shape[0] // 2
    if half == 0:
        return None
    def apart(x):
        return nd.abs(nd.slice_axis(x, axis=0, begin=0, end=half) - nd.slice_axis(x, axis=0, begin=half, end=2 * half)).mean()
    return weight / (apart(mean_frame(video)) / apart(z.reshape((z.shape[0], -1))) + epsilon)


def mean_frame(video):
    """(N, C, T, H, W) -> (N, C * H * W): every clip's average frame, as one batched product with a row
    of 1/T. MXNet 1.9.1 reduces a middle axis (``mean(axis=2)``) with a generic kernel: forward and backward
    cost 10x the product's, 5 % of a demo step (docs/performance.md)."""
    n, c, t = video.shape[:3]
    rows = video.reshape((n * c, t, -1))
    return nd.batch_dot(nd.full((n * c, 1, t), 1.0 / t, ctx=video.context), rows).reshape((n, -1))


def first_frame_l1(video, image, weight=10.0):
    """Conditional model: ``10 * AbsCriterion(G(x0)[:, :, 0], x0)``, the mean absolute error between the
    first generated frame and the input image (main_conditional.lua)."""
    return weight * nd.abs(nd.slice_axis(video, axis=2, begin=0, end=1).squeeze(axis=2) - image).mean()
