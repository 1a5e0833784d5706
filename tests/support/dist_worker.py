"""A worker of the distributed-training tests (started by tinyvideo_mx.training.launch with DMLC_ROLE=worker):
trains the tiny model with the kvstore given on the command line and saves its own replica's weights."""
import os
import sys
import warnings

warnings.filterwarnings("ignore", category=DeprecationWarning)
# the support package lives in tests/, this script's parent folder
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tinyvideo_mx.training import GanTraining  # noqa: E402

from support.helpers import tiny_config  # noqa: E402


def main(run_dir, out_dir, kvstore, iterations, data_list):
    cfg = tiny_config(kvstore=kvstore, batch_size=4, iterations=int(iterations), checkpoint_every=int(iterations),
                      sample_every=0, data_list=data_list)
    run = GanTraining(cfg, run_dir, progress=False).run()
    rank = run.replicas.rank
    for name, net in (("G", run.G), ("D", run.D)):
        net.save_parameters(f"{out_dir}/rank{rank}-{name}.params")


if __name__ == "__main__":
    main(*sys.argv[1:])
