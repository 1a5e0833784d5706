"""Run in its own process by tests/test_precision.py: AMP rewrites MXNet's operators process-wide."""
import json
import os
import sys
import tempfile
import warnings

warnings.filterwarnings("ignore", category=DeprecationWarning)
# the support package lives in tests/, this script's parent folder
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# tinyvideo_mx before MXNet and OpenCV (it configures them as they load): not sorted
# isort: off
import tinyvideo_mx         # noqa: E402, F401  (first: numpy aliases, threads, AMX before MXNet loads)
import mxnet as mx          # noqa: E402
# isort: on
import numpy as np  # noqa: E402

from tinyvideo_mx.models.factory import prepare  # noqa: E402
from tinyvideo_mx.models.networks import Discriminator  # noqa: E402
from tinyvideo_mx.training import GanTraining  # noqa: E402

from support.helpers import tiny_config  # noqa: E402


def discriminator_logits(params_file, x):
    D = prepare(Discriminator(ndf=16, frames=16, size=32), [mx.cpu()], hybridize=True)
    if params_file:
        D.load_parameters(params_file)
    return D, D(x).asnumpy()


def main(data_list, g_form, upsampling):
    x = mx.nd.array(np.random.default_rng(0).uniform(-1, 1, (2, 3, 16, 32, 32)))
    D, fp32 = discriminator_logits(None, x)
    params = tempfile.mktemp(suffix=".params")
    D.save_parameters(params)
    run = GanTraining(tiny_config(amp=True, iterations=3, sample_every=0, checkpoint_every=3, data_list=data_list,
                                   g_form=g_form, upsampling=upsampling),
                      tempfile.mkdtemp(), progress=False)          # switches AMP on
    _, bf16 = discriminator_logits(params, x)
    before = {k: p.data().asnumpy().copy() for k, p in run.G.collect_params().items()}
    run.run()
    rows = [json.loads(line) for line in open(f"{run.run_dir}/metrics.jsonl")]
    moved = sum(np.abs(p.data().asnumpy() - before[k]).max() > 0 for k, p in run.G.collect_params().items())
    # Exact resume under AMP: 2 iterations + a resume to 3 equal 3 straight ones.
    split_dir = tempfile.mkdtemp()
    GanTraining(tiny_config(amp=True, iterations=2, sample_every=0, checkpoint_every=2, data_list=data_list,
                            g_form=g_form, upsampling=upsampling),
                split_dir, progress=False).run()
    resumed = GanTraining.resume(split_dir, progress=False, iterations=3).run()
    exact = all(np.array_equal(p.data().asnumpy(), q.data().asnumpy())
                for net, other in ((run.G, resumed.G), (run.D, resumed.D))
                for p, q in zip(net.collect_params().values(), other.collect_params().values()))
    print(json.dumps({"dtype": run.precision.dtype, "g_hybridized": run.G._active, "d_hybridized": run.D._active,
                      "logit_scale": float(np.abs(fp32).max()), "logit_change": float(np.abs(bf16 - fp32).max()),
                      "losses_finite": bool(all(np.isfinite(r["loss_d"]) and np.isfinite(r["loss_g"]) for r in rows)),
                      "iterations": len(rows), "g_params_moved": int(moved), "g_params": len(before),
                      "resume_exact": bool(exact)}))


if __name__ == "__main__":
    main(*sys.argv[1:])
