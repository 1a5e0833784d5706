"""Scalars in TensorBoard's event format (tensorboardX) and as JSON lines (for scripts)."""
import json
import os


class ScalarLog:
    def __init__(self, run_dir, start=0):
        from tensorboardX import SummaryWriter
        # purge_step: after a resume, TensorBoard drops the events the crashed run wrote past it.
        self.writer = SummaryWriter(logdir=os.path.join(run_dir, "tensorboard"), purge_step=start or None)
        self.jsonl = open(os.path.join(run_dir, "metrics.jsonl"), "a")

    def write(self, step, values):
        for key, value in values.items():
            self.writer.add_scalar(f"train/{key}", value, step)
        self.jsonl.write(json.dumps(dict(values, iteration=step)) + "\n")
        self.jsonl.flush()

    def close(self):
        self.writer.close()
        self.jsonl.close()
