"""Distributed training on MXNet's parameter-server kvstore (dist_sync), on 127.0.0.1 only."""
import json
import os
import shutil
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest
from click.testing import CliRunner

from tinyvideo_mx import checkpoint
from tinyvideo_mx.cli import main
from tinyvideo_mx.data import read_list, synthetic
from tinyvideo_mx.data.iterator import StripIter
from tinyvideo_mx.training import GanTraining, launch

from support.helpers import tiny_config

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = [sys.executable, os.path.join(HERE, "support", "dist_worker.py")]


@pytest.fixture(scope="module")
def data_list(tmp_path_factory):
    return synthetic.ensure_dataset(str(tmp_path_factory.mktemp("data")), clips=16, frames=32, frame_height=128)


def load(path):
    return {k: v.asnumpy() for k, v in mx.nd.load(str(path)).items()}


class ConcatenatedShards(StripIter):
    """What W workers read together: batch k = worker 0's batch k, then worker 1's, ..."""

    def __init__(self, paths, batch_size, workers, **kw):
        self.shards = [StripIter(paths, batch_size // workers, part_index=r, num_parts=workers, **kw)
                       for r in range(workers)]
        super().__init__(paths, batch_size, **kw)

    def next(self):
        batches = [s.next() for s in self.shards]
        return mx.io.DataBatch([mx.nd.concat(*(b.data[0] for b in batches), dim=0)])

    def close(self):
        for s in self.shards:
            s.close()
        super().close()


def single_process_reference(tmp_path, data_list):
    """1 process x 2 contexts on the concatenated shards of 2 workers: {name: params} after 3 iterations,
    and the initial parameters."""
    cfg = tiny_config(batch_size=4, iterations=3, checkpoint_every=3, sample_every=0, ctx="cpu0,cpu1",
                      data_list=data_list)
    iterator = ConcatenatedShards(read_list(data_list), 4, 2, frames=cfg.frames, size=cfg.size,
                                  frame_height=cfg.frame_height, seed=cfg.seed, decode_threads=1)
    single = GanTraining(cfg, str(tmp_path / "single"), progress=False, iterator=iterator)
    initial = {}
    for name, net in (("G", single.G), ("D", single.D)):
        net.save_parameters(str(tmp_path / f"initial-{name}.params"))
        initial[name] = load(tmp_path / f"initial-{name}.params")
    single.run()
    final = {}
    for name, net in (("G", single.G), ("D", single.D)):
        net.save_parameters(str(tmp_path / f"single-{name}.params"))
        final[name] = load(tmp_path / f"single-{name}.params")
    return final, initial


def assert_workers_match_reference(out, reference, initial):
    for name in ("G", "D"):
        rank0, rank1 = load(out / f"rank0-{name}.params"), load(out / f"rank1-{name}.params")
        assert rank0.keys() == rank1.keys() == reference[name].keys()
        for k in rank0:
            np.testing.assert_array_equal(rank0[k], rank1[k], err_msg=k)            # the workers agree
            np.testing.assert_array_equal(rank0[k], reference[name][k], err_msg=k)  # and equal the reference
        moved = [k for k in rank0 if np.abs(rank0[k] - initial[name][k]).max() > 1e-4]
        assert len(moved) > len(rank0) // 2          # three iterations really trained both networks


@pytest.mark.parametrize("kind", ["dist_sync", "dist_device_sync"])
def test_two_workers_match_one_process_with_two_contexts(tmp_path, data_list, kind):
    """2 workers x 1 context through a parameter server = 1 process x 2 contexts on the concatenated
    shards: the same slices, the same z rows, the same summed gradients and averaged BN statistics."""
    out = tmp_path / "out"
    out.mkdir()
    code = launch.launch_local(WORKER + [str(tmp_path / "dist"), str(out), kind, "3", data_list],
                               workers=2, servers=1, timeout=240)
    assert code == 0
    assert_workers_match_reference(out, *single_process_reference(tmp_path, data_list))
    for name in ("G", "D"):                       # rank 0's checkpoint is rank 0's state
        saved, dist = load(tmp_path / "dist" / "ckpt-00000003" / f"{name}.params"), load(out / f"rank0-{name}.params")
        for k in dist:
            np.testing.assert_array_equal(saved[k], dist[k], err_msg=k)
    # Only rank 0 wrote the run folder's files (two writers would have logged every iteration twice).
    assert sorted(os.listdir(tmp_path / "dist")) == ["ckpt-00000003", "config.json", "latest", "metrics.jsonl",
                                                     "tensorboard"]
    assert [json.loads(line)["iteration"] for line in open(tmp_path / "dist" / "metrics.jsonl")] == [1, 2, 3]
    assert len(os.listdir(tmp_path / "dist" / "tensorboard")) == 1


def horovod_available():
    try:
        import horovod.mxnet  # noqa: F401
    except ImportError:
        return False
    return shutil.which("horovodrun") is not None


@pytest.mark.skipif(not horovod_available(), reason="Horovod with MXNet support is not installed (optional)")
def test_horovod_workers_match_one_process_with_two_contexts(tmp_path, data_list):
    out = tmp_path / "out"
    out.mkdir()
    command = ["horovodrun", "--gloo", "-np", "2", "-H", "localhost:2", "--network-interfaces", "lo"]
    command += WORKER + [str(tmp_path / "hvd"), str(out), "horovod", "3", data_list]
    proc = subprocess.Popen(command, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        output, _ = proc.communicate(timeout=300)
    finally:
        launch.stop([proc])
    assert proc.returncode == 0, output[-8000:]
    assert_workers_match_reference(out, *single_process_reference(tmp_path, data_list))


def test_launch_stops_every_process_when_a_worker_fails_or_hangs():
    started = []
    failing = [sys.executable, "-c", "import sys; sys.exit(3)"]
    assert launch.launch_local(failing, workers=2, servers=1, timeout=60, started=started) == 3
    assert sorted(role for role, _ in started) == ["scheduler", "server", "worker", "worker"]
    assert all(p.poll() is not None for _, p in started)     # the waiting scheduler and server were stopped
    started.clear()
    with pytest.raises(launch.LaunchError, match="did not finish within 2 s; stopped all processes"):
        launch.launch_local([sys.executable, "-c", "import time; time.sleep(60)"], timeout=2, started=started)
    assert len(started) == 4 and all(p.poll() is not None for _, p in started)


def test_cluster_commands_name_every_process():
    lines = launch.cluster_commands(["tinyvideo-mx", "train", "--kvstore", "dist_sync"], ["a", "b"], 2, 1, 9000)
    assert len(lines) == 5 and lines[-1] == "wait"
    assert lines[0].startswith("ssh a ") and "DMLC_ROLE=scheduler" in lines[0] and lines[0].endswith("# scheduler")
    assert "DMLC_ROLE=server" in lines[1] and "DMLC_PS_ROOT_URI=a DMLC_PS_ROOT_PORT=9000" in lines[1]
    assert lines[2].startswith("ssh a ") and lines[3].startswith("ssh b ")
    assert "DMLC_NUM_WORKER=2 DMLC_NUM_SERVER=1 DMLC_NODE_HOST=b tinyvideo-mx train --kvstore dist_sync" in lines[3]
    with pytest.raises(launch.LaunchError, match="no worker command given"):
        launch.cluster_commands([], ["a"], 1, 1)


def test_cli_launch_trains_and_resumes_exactly(tmp_path, data_list):
    """tinyvideo-mx launch ... -- tinyvideo-mx train --kvstore dist_sync: 4 iterations straight equal
    2 iterations + a distributed resume to 4, and the run folder holds rank 0's files only."""
    cli = [sys.executable, os.path.join(os.path.dirname(HERE), "bin", "tinyvideo-mx")]
    train = cli + ["train", "--kvstore", "dist_sync", "--preset", "tiny", "--data", data_list, "--batch-size", "4",
                   "--sample-every", "0", "--checkpoint-every", "2", "--quiet"]
    runner = CliRunner()
    for args in (train + ["--out", str(tmp_path / "straight"), "--iterations", "4"],
                 train + ["--out", str(tmp_path / "split"), "--iterations", "2"],
                 cli + ["train", "--resume", str(tmp_path / "split"), "--iterations", "4", "--quiet"]):
        result = runner.invoke(main, ["launch", "-n", "2", "-s", "1", "--timeout", "240", "--"] + args)
        assert result.exit_code == 0, result.output
    straight, resumed = (checkpoint.resolve(str(tmp_path / d)) for d in ("straight", "split"))
    assert resumed.endswith("ckpt-00000004")
    for name in ("G.params", "D.params"):
        a, b = load(os.path.join(straight, name)), load(os.path.join(resumed, name))
        for k in a:
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    meta = checkpoint.read_meta(resumed)
    assert meta["config"]["kvstore"] == "dist_sync" and meta["data"]["next_batch"] == 4


def test_cli_launch_reports_a_failing_worker(tmp_path):
    result = CliRunner().invoke(main, ["launch", "-n", "2", "--", sys.executable, "-c", "import sys; sys.exit(5)"])
    assert result.exit_code == 1
    assert "a worker failed with exit status 5; all processes were stopped" in result.output


def test_launch_hosts_file_prints_one_ssh_command_per_process_and_refuses_what_it_cannot_read(tmp_path):
    hosts = tmp_path / "hosts.txt"
    hosts.write_text("# the cluster\nnode-a\n\n  node-b  \n")
    result = CliRunner().invoke(main, ["launch", "-n", "2", "-s", "1", "--hosts", str(hosts), "--", "train"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert [line.rsplit("# ", 1)[-1] for line in lines[:-1]] == ["scheduler", "server", "worker", "worker"]
    assert [line.split()[1] for line in lines[:-1]] == ["node-a", "node-a", "node-a", "node-b"]
    assert lines[-1] == "wait" and "DMLC_PS_ROOT_URI=node-a" in lines[0] and "DMLC_PS_ROOT_PORT=9091" in lines[0]
    empty = tmp_path / "empty.txt"
    empty.write_text("# nobody yet\n\n")
    fifo = tmp_path / "hosts.fifo"
    os.mkfifo(fifo)               # no writer: opened the plain way, reading it would wait forever
    for path, reason in ((empty, "no hosts listed"), (fifo, "is a FIFO (named pipe), not a regular hosts file")):
        result = CliRunner().invoke(main, ["launch", "--hosts", str(path), "--", "train"])
        assert result.exit_code == 1
        assert result.output == f"Error: {path}: {reason}\n"
