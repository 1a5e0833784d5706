"""import-t7: the original's Torch7 checkpoints (cudnn modules, CudaTensors) -> our networks, checked
against a float64 numpy run of the Torch module tree with Torch's semantics."""
import os

import mxnet as mx
import numpy as np
import pytest
from click.testing import CliRunner

from tinyvideo_mx import checkpoint
from tinyvideo_mx.cli import main
from tinyvideo_mx.errors import FileProblem
from tinyvideo_mx.generation import torch_import
from tinyvideo_mx.generation.inference import load_generator, run_generator

from support import torch7

SIZES = dict(nz=10, ngf=4, frames=16, size=16)


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """iter65000_net.t7 + iter65000_netD.t7 as main.lua saves them (tiny widths)."""
    folder = tmp_path_factory.mktemp("t7")
    rng = np.random.default_rng(0)
    G = torch7.vgan_generator(rng, **SIZES)
    D = torch7.vgan_discriminator(rng, ndf=4, frames=16, size=16)
    torch7.write_t7(str(folder / "iter65000_net.t7"), G)
    torch7.write_t7(str(folder / "iter65000_netD.t7"), D)
    return folder, G, D


def test_the_serializer_writes_what_torchfile_reads(tmp_path):
    import torchfile
    module = torch7.Module("cudnn.ReLU", inplace=True, weight=np.arange(6, dtype=np.float32).reshape(2, 3), tags=["a", "b"])
    torch7.write_t7(str(tmp_path / "m.t7"), module)
    back = torchfile.load(str(tmp_path / "m.t7"), utf8_decode_strings=True)
    assert back._typename == b"cudnn.ReLU" and back["inplace"] is True and back["tags"] == ["a", "b"]
    np.testing.assert_array_equal(back["weight"], np.arange(6).reshape(2, 3))


def test_imported_generator_matches_the_torch_network(tmp_path, released):
    folder, G_t7, D_t7 = released
    ckpt = torch_import.import_t7(str(folder / "iter65000_net.t7"), str(tmp_path / "golf"))
    assert ckpt == str(tmp_path / "golf" / "ckpt-00065000")         # iteration from the file name
    meta = checkpoint.read_meta(ckpt)
    assert {k: meta["config"][k] for k in SIZES} == SIZES and meta["config"]["ndf"] == 4   # read off the weights
    assert meta["imported_from"]["D"] == str(folder / "iter65000_netD.t7")                   # found beside G
    z = np.random.default_rng(1).standard_normal((3, SIZES["nz"])).astype(np.float32)
    want = torch7.forward(G_t7, z.astype(np.float64))
    G, _ = load_generator(str(tmp_path / "golf"))
    got = run_generator(G, z)["video"]
    np.testing.assert_allclose(got, want, atol=2e-5, rtol=1e-4)
    assert np.abs(want).max() > 0.05        # a real signal, not saturated zeros


def test_imported_discriminator_matches_the_torch_network(tmp_path, released):
    folder, _, D_t7 = released
    ckpt = torch_import.import_t7(str(folder / "iter65000_net.t7"), str(tmp_path / "run"))
    from tinyvideo_mx.config import TrainConfig
    from tinyvideo_mx.models.factory import build_networks, prepare
    _, D = build_networks(TrainConfig.from_dict(checkpoint.read_meta(ckpt)["config"]))
    prepare(D, [mx.cpu()])
    D.load_parameters(os.path.join(ckpt, "D.params"))
    x = np.random.default_rng(2).uniform(-1, 1, (2, 3, 16, 16, 16)).astype(np.float32)
    want = torch7.forward(D_t7, x.astype(np.float64))
    got = D(mx.nd.array(x)).asnumpy()              # inference mode: BN running statistics
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-4)


def test_import_command_then_sample_and_resume(tmp_path, released):
    folder, _, _ = released
    runner = CliRunner()
    result = runner.invoke(main, ["import-t7", str(folder / "iter65000_net.t7"), "--out", str(tmp_path / "golf")])
    assert result.exit_code == 0, result.output
    assert result.output == f"imported generator and discriminator -> {tmp_path / 'golf' / 'ckpt-00065000'}\n"
    result = runner.invoke(main, ["sample", str(tmp_path / "golf"), "--out", str(tmp_path / "s"), "-n", "2"])
    assert result.exit_code == 0, result.output
    # Fine-tune the released model further: Adam starts afresh, everything else is the import.
    result = runner.invoke(main, ["train", "--resume", str(tmp_path / "golf"), "--iterations", "65001", "--quiet"])
    assert result.exit_code == 0, result.output
    assert os.path.isdir(tmp_path / "golf" / "ckpt-00065001")


def test_bad_t7_files_are_named(tmp_path, released):
    folder, _, D_t7 = released
    with pytest.raises(FileProblem) as err:
        torch_import.import_t7(str(tmp_path / "missing_net.t7"), str(tmp_path / "x"))
    assert str(err.value) == f"{tmp_path / 'missing_net.t7'}: file not found"
    cut = tmp_path / "cut_net.t7"
    cut.write_bytes((folder / "iter65000_net.t7").read_bytes()[:1000])
    with pytest.raises(FileProblem, match="cut_net.t7: not a readable Torch7 file"):
        torch_import.import_t7(str(cut), str(tmp_path / "x"))
    with pytest.raises(FileProblem) as err:
        torch_import.import_t7(str(folder / "iter65000_netD.t7"), str(tmp_path / "x"))   # D given as G
    assert str(err.value) == (f"{folder / 'iter65000_netD.t7'}: not a VGAN generator (VolumetricFullConvolution): "
                              "expected 6 of its layers, found 0")
    assert not os.path.exists(tmp_path / "x")
