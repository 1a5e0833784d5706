"""``tinyvideo-mx finetune-classifier``: action recognition from the discriminator (main_ucf.lua).

The original loads a trained D, removes its last two modules (the 2-logit convolution and the View),
appends ``VolumetricDropout(0.5)`` and ``VolumetricConvolution(512, K, 2,4,4)`` + ``View(-1, K)``, and
fine-tunes every layer with cross-entropy, Adam (lr 2e-4, beta1 0.5), batch 256 (docs/original.md §4). Here
the same network, with two differences that do not change the model: dropout is Gluon's inverted
dropout (scaled at training time; Torch scales at test time) over whole channels, as
VolumetricDropout; and the original printed only training accuracy, while this reports accuracy on
a held-out list too.

Lists are the original's ``path class`` format with classes 1..K (donkey_video3.lua); a list that uses
class 0 is read as 0-based.
"""
import json
import logging
import os
import time

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon
from mxnet.gluon import nn

from . import checkpoint
from .config import TrainConfig
from .data.iterator import StripIter, every_clip
from .data.listfile import read_labelled_list
from .errors import SettingError
from .fsutil import atomic_path, write_text_atomic
from .generation.inference import padded_batches
from .models.factory import HYBRIDIZE_FLAGS
from .models.layers import conv_kwargs
from .models.networks import Discriminator, first_kernel
from .runtime.context import parse_contexts

log = logging.getLogger(__name__)


class ActionClassifier(nn.HybridBlock):
    """D's feature stages (shared with a Discriminator), channel dropout, a (T/16, S/16, S/16)
    convolution to ``classes`` logits."""

    def __init__(self, features, classes, width, frames=32, size=64, dropout=0.5, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.features = features
            self.dropout = nn.Dropout(dropout, axes=(2, 3, 4))   # drops whole channels (VolumetricDropout)
            self.head = nn.Conv3D(classes, first_kernel(frames, size), 1, 0, prefix="head_", **conv_kwargs(width))

    def hybrid_forward(self, F, video):
        return F.flatten(self.head(self.dropout(self.features(video))))


def zero_based(labels, path):
    """Class indices from the list's labels: 1..K as the original, or 0..K-1 if a 0 appears."""
    labels = np.asarray(labels)
    if labels.min() < 0:
        raise SettingError(f"{path}: negative class {labels.min()}")
    return labels - 1 if labels.min() >= 1 else labels


def build_classifier(source, classes, ctx, frames=None, size=None, ndf=None, from_scratch=False):
    """(classifier, d_config): D's features from ``source`` (a Checkpoint, a run or checkpoint folder; or
    random, with ``from_scratch``: the original's ``net:reset()`` baseline), and a new head."""
    if source:
        ckpt = checkpoint.opened(source)
        config = ckpt.config
    else:
        config = TrainConfig(frames=frames or 32, size=size or 64, ndf=ndf or 64)
        from_scratch = True
    D = Discriminator(ndf=config.ndf, frames=config.frames, size=config.size, prefix="D_")
    D.initialize(mx.init.Zero(), ctx=ctx)
    if not from_scratch:
        d_params = os.path.join(ckpt.folder, "D.params")
        if not os.path.exists(d_params):
            raise checkpoint.CheckpointError(f"{ckpt}: has no discriminator (D.params) to fine-tune")
        ckpt.load_parameters(D, "D", ctx=ctx)
    net = ActionClassifier(D.features, classes, config.ndf * 8, config.frames, config.size, prefix="classifier_")
    net.dropout.initialize(ctx=ctx)
    net.head.initialize(ctx=ctx)
    return net, config


def predict(net, paths, config, batch, ctx, frame_height=128):
    """Class scores of every clip in ``paths`` (inference mode), in fixed-size batches (padded)."""
    out = []
    for clips in every_clip(paths, batch, frames=config.frames, size=config.size, frame_height=frame_height):
        for rows, (padded,) in padded_batches([clips], batch):
            out.append(net(mx.nd.array(padded, ctx=ctx)).asnumpy()[:rows])
    return np.concatenate(out)


def accuracy(scores, labels):
    return float((np.argmax(scores, axis=1) == np.asarray(labels)).mean())


def _fit(net, trainer, data, context, iterations, out_dir, log_every, progress):
    """``iterations`` steps of softmax cross-entropy on batches of ``data``; every ``log_every`` the loss
    and the training accuracy since the last line go to ``out_dir``'s scalar log and the progress bar."""
    from tqdm import tqdm

    from .training.tensorboard_log import ScalarLog
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    scalars = ScalarLog(out_dir)
    bar = tqdm(total=iterations, disable=not progress, unit="it", desc="finetune")
    correct = seen = 0
    try:
        for it in range(1, iterations + 1):
            batch = data.next_any_epoch()
            x, y = batch.data[0].as_in_context(context), batch.label[0].as_in_context(context)
            with autograd.record():
                scores = net(x)
                loss = loss_fn(scores, y).mean()
            loss.backward()
            trainer.step(1)
            correct += int((scores.argmax(axis=1) == y).sum().asscalar())
            seen += len(y)
            bar.update(1)
            if it % log_every == 0 or it == iterations:
                scalars.write(it, {"loss": float(loss.asscalar()), "train_accuracy": correct / seen})
                bar.set_postfix(loss=f"{loss.asscalar():.3f}", acc=f"{correct / seen:.2f}", refresh=False)
                correct = seen = 0
    finally:
        bar.close()
        scalars.close()


def finetune(train_list, out_dir, source=None, test_list=None, classes=None, iterations=1000, batch_size=32,
             lr=2e-4, beta1=0.5, from_scratch=False, seed=0, frame_height=None, ctx="cpu", data_root=None,
             log_every=10, progress=True, frames=None, size=None, ndf=None, max_bad=50):
    """Fine-tune; returns the result dict (also in ``out_dir``/result.json, with classifier.params).
    ``frame_height`` (rows per frame in the strips) defaults to the checkpoint's, else 128."""
    context = parse_contexts(ctx)[0]
    paths, raw = read_labelled_list(train_list, data_root)
    labels = zero_based(raw, train_list)
    classes = classes or int(labels.max()) + 1
    if labels.max() >= classes:
        raise SettingError(f"{train_list}: class {int(labels.max()) + 1} but only {classes} classes")
    mx.random.seed(seed)
    source = checkpoint.opened(source) if source else None
    net, config = build_classifier(source, classes, context, frames, size, ndf, from_scratch)
    frame_height = frame_height or config.frame_height     # the strips the checkpoint was trained on
    net.hybridize(**HYBRIDIZE_FLAGS)
    trainer = gluon.Trainer(net.collect_params(), "adam", {"learning_rate": lr, "beta1": beta1})
    data = StripIter(paths, batch_size, frames=config.frames, size=config.size, frame_height=frame_height,
                     seed=seed, labels=labels, max_bad=max_bad)
    os.makedirs(out_dir, exist_ok=True)
    started = time.time()
    try:
        _fit(net, trainer, data, context, iterations, out_dir, log_every, progress)
    finally:
        data.close()
    result = {"classes": classes, "iterations": iterations, "batch_size": batch_size, "from_scratch": from_scratch or not source,
              "source": source.folder if source else None, "train_list": train_list,
              "seconds": time.time() - started, "bad_clips": len(data.bad)}
    result["train_accuracy"] = accuracy(predict(net, paths, config, batch_size, context, frame_height), labels)
    if test_list:
        test_paths, test_raw = read_labelled_list(test_list, data_root)
        test_labels = zero_based(test_raw, test_list)
        result["test_list"] = test_list
        result["test_accuracy"] = accuracy(predict(net, test_paths, config, batch_size, context, frame_height), test_labels)
        result["chance"] = float(np.bincount(test_labels, minlength=classes).max() / len(test_labels))
    with atomic_path(os.path.join(out_dir, "classifier.params")) as tmp:
        net.save_parameters(tmp)
    write_text_atomic(os.path.join(out_dir, "result.json"), json.dumps(result, indent=2) + "\n")
    return result
