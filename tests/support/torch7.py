"""The Torch7 side of the import tests: build VGAN networks as main.lua's module trees, write them as
.t7 files the way torch.save does (cudnn modules, CudaTensor weights), and run them with Torch's
semantics in float64 numpy (BN in evaluate mode, as generate.lua runs the generator)."""
import struct

import numpy as np

from .reference_conv import conv3d, conv3d_transpose

TYPE_NIL, TYPE_NUMBER, TYPE_STRING, TYPE_TABLE, TYPE_TORCH, TYPE_BOOLEAN = 0, 1, 2, 3, 4, 5


class Module:
    def __init__(self, name, **fields):
        self.name, self.fields = name, fields


def seq(*modules):
    return Module("nn.Sequential", modules=list(modules), train=False)


def concat(*modules):
    return Module("nn.ConcatTable", modules=list(modules))


# -- writing ---------------------------------------------------------------------------------------
class T7Writer:
    """torch.save's binary format (torch7/File.lua): little-endian, 8-byte longs, memoised tables/objects."""

    def __init__(self, f):
        self.f, self.next_index = f, 1

    def _int(self, v):
        self.f.write(struct.pack("<i", v))

    def _long(self, v):
        self.f.write(struct.pack("<q", v))

    def _string(self, s):
        data = s.encode()
        self._int(len(data))
        self.f.write(data)

    def _index(self):
        self._int(self.next_index)
        self.next_index += 1

    def obj(self, v):
        if v is None:
            self._int(TYPE_NIL)
        elif isinstance(v, bool):
            self._int(TYPE_BOOLEAN)
            self._int(int(v))
        elif isinstance(v, (int, float)):
            self._int(TYPE_NUMBER)
            self.f.write(struct.pack("<d", float(v)))
        elif isinstance(v, str):
            self._int(TYPE_STRING)
            self._string(v)
        elif isinstance(v, np.ndarray):
            self.tensor(v)
        elif isinstance(v, Module):
            self._int(TYPE_TORCH)
            self._index()
            self._string("V 1")
            self._string(v.name)
            self.obj(dict(v.fields))
        elif isinstance(v, (list, dict)):
            items = list(enumerate(v, 1)) if isinstance(v, list) else list(v.items())
            self._int(TYPE_TABLE)
            self._index()
            self._int(len(items))
            for k, value in items:
                self.obj(k)
                self.obj(value)
        else:
            raise TypeError(type(v))

    def tensor(self, array):
        """A torch.CudaTensor (what checkpoints saved from the GPU hold) over a CudaStorage."""
        array = np.ascontiguousarray(array, np.float32)
        self._int(TYPE_TORCH)
        self._index()
        self._string("V 1")
        self._string("torch.CudaTensor")
        self._int(array.ndim)
        for s in array.shape:
            self._long(s)
        for s in array.strides:
            self._long(s // 4)
        self._long(1)                       # storage offset, 1-based
        self._int(TYPE_TORCH)
        self._index()
        self._string("V 1")
        self._string("torch.CudaStorage")
        self._long(array.size)
        self.f.write(array.tobytes())


def write_t7(path, module):
    with open(path, "wb") as f:
        T7Writer(f).obj(module)


# -- building main.lua's networks --------------------------------------------------------------------
def f32(a):
    """Weights as the file stores them (float32), so the reference and the import see the same values."""
    return np.asarray(a, np.float32)


def full_conv3d(rng, n_in, n_out, k, s, p):
    kt, kh, kw = k
    return Module("cudnn.VolumetricFullConvolution", nInputPlane=n_in, nOutputPlane=n_out, kT=kt, kH=kh, kW=kw,
                  dT=s, dH=s, dW=s, padT=p, padH=p, padW=p, adjT=0, adjH=0, adjW=0,
                  weight=f32(rng.normal(0, 0.05, (n_in, n_out, kt, kh, kw))), bias=f32(rng.normal(0, 0.05, n_out)))


def full_conv2d(rng, n_in, n_out, k, s, p):
    return Module("cudnn.SpatialFullConvolution", nInputPlane=n_in, nOutputPlane=n_out, kH=k, kW=k, dH=s, dW=s,
                  padH=p, padW=p, adjH=0, adjW=0, weight=rng.normal(0, 0.05, (n_in, n_out, k, k)),
                  bias=rng.normal(0, 0.05, n_out))


def conv3d_module(rng, n_in, n_out, k, s, p):
    kt, kh, kw = k
    return Module("cudnn.VolumetricConvolution", nInputPlane=n_in, nOutputPlane=n_out, kT=kt, kH=kh, kW=kw,
                  dT=s, dH=s, dW=s, padT=p, padH=p, padW=p,
                  weight=f32(rng.normal(0, 0.05, (n_out, n_in, kt, kh, kw))), bias=f32(rng.normal(0, 0.05, n_out)))


def batchnorm(rng, kind, n, eps):
    return Module(f"cudnn.{kind}BatchNormalization", weight=f32(rng.normal(1, 0.1, n)), bias=f32(rng.normal(0, 0.1, n)),
                  running_mean=f32(rng.normal(0, 0.2, n)), running_var=f32(rng.uniform(0.5, 2.0, n)), eps=eps,
                  momentum=0.1, affine=True, train=False)


def vgan_generator(rng, nz=100, ngf=64, frames=32, size=64):
    """netG of main.lua:64-114."""
    kt, ks = frames // 16, size // 16
    widths = [ngf * 8, ngf * 4, ngf * 2, ngf]
    video = [Module("nn.View", size=[-1, nz, 1, 1, 1], numElements=nz)]
    static = [Module("nn.View", size=[-1, nz, 1, 1], numElements=nz)]
    n_in = nz
    for i, w in enumerate(widths):
        k3, k2, s, p = ((kt, ks, ks), ks, 1, 0) if i == 0 else ((4, 4, 4), 4, 2, 1)
        video += [full_conv3d(rng, n_in, w, k3, s, p), batchnorm(rng, "Volumetric", w, 1e-5), Module("cudnn.ReLU")]
        static += [full_conv2d(rng, n_in, w, k2, s, p), batchnorm(rng, "Spatial", w, 1e-5), Module("cudnn.ReLU")]
        n_in = w
    gen_net = seq(full_conv3d(rng, ngf, 3, (4, 4, 4), 2, 1), Module("cudnn.Tanh"))
    mask_net = seq(full_conv3d(rng, ngf, 1, (4, 4, 4), 2, 1), Module("cudnn.Sigmoid"),
                   Module("nn.L1Penalty", l1weight=0.1, sizeAverage=True))
    video.append(concat(gen_net, mask_net))
    static += [full_conv2d(rng, ngf, 3, 4, 2, 1), Module("cudnn.Tanh")]
    mask_over_colours = seq(Module("nn.SelectTable", index=2), Module("nn.Squeeze"), Module("nn.Replicate", nfeatures=3, dim=2))
    motion = seq(concat(Module("nn.SelectTable", index=1), mask_over_colours), Module("nn.CMulTable"))
    inverse_mask = seq(Module("nn.SelectTable", index=2), Module("nn.Squeeze"), Module("nn.MulConstant", constant_scalar=-1),
                       Module("nn.AddConstant", constant_scalar=1), Module("nn.Replicate", nfeatures=3, dim=2))
    background = seq(Module("nn.SelectTable", index=3), Module("nn.Replicate", nfeatures=frames, dim=3))
    still = seq(concat(background, inverse_mask), Module("nn.CMulTable"))
    return seq(concat(seq(*video), seq(*static)), Module("nn.FlattenTable"), concat(motion, still), Module("nn.CAddTable"))


def vgan_discriminator(rng, ndf=64, frames=32, size=64):
    """netD of main.lua:116-127."""
    layers, n_in = [], 3
    for i, w in enumerate([ndf, ndf * 2, ndf * 4, ndf * 8]):
        layers.append(conv3d_module(rng, n_in, w, (4, 4, 4), 2, 1))
        if i:
            layers.append(batchnorm(rng, "Volumetric", w, 1e-3))
        layers.append(Module("nn.LeakyReLU", negval=0.2))
        n_in = w
    layers += [conv3d_module(rng, n_in, 2, (frames // 16, size // 16, size // 16), 1, 0),
               Module("nn.View", size=[2], numInputDims=4)]
    return seq(*layers)


# -- running (Torch semantics, float64) ----------------------------------------------------------------
def forward(module, x):
    name, f = module.name.split(".")[-1], module.fields
    if name == "Sequential":
        for m in f["modules"]:
            x = forward(m, x)
        return x
    if name == "ConcatTable":
        return [forward(m, x) for m in f["modules"]]
    if name == "FlattenTable":
        out = []

        def flatten(v):
            for item in v:
                flatten(item) if isinstance(item, list) else out.append(item)
        flatten(x)
        return out
    if name == "SelectTable":
        return x[f["index"] - 1]
    if name == "CAddTable":
        return sum(x)
    if name == "CMulTable":
        return x[0] * x[1]
    if name == "View":
        size = list(f["size"])
        return x.reshape(size) if size[0] == -1 else x.reshape([x.shape[0]] + size)
    if name == "Squeeze":
        return np.squeeze(x)
    if name == "Replicate":
        axis = f["dim"] - 1
        return np.repeat(np.expand_dims(x, axis), f["nfeatures"], axis=axis)
    if name == "MulConstant":
        return x * f["constant_scalar"]
    if name == "AddConstant":
        return x + f["constant_scalar"]
    if name == "ReLU":
        return np.maximum(x, 0)
    if name == "Tanh":
        return np.tanh(x)
    if name == "Sigmoid":
        return 1 / (1 + np.exp(-x))
    if name == "LeakyReLU":
        return np.where(x > 0, x, f["negval"] * x)
    if name == "L1Penalty":
        return x
    if name.endswith("BatchNormalization"):
        shape = (1, -1) + (1,) * (x.ndim - 2)
        return ((x - f["running_mean"].reshape(shape)) / np.sqrt(f["running_var"].reshape(shape) + f["eps"])
                * f["weight"].reshape(shape) + f["bias"].reshape(shape))
    if name in ("VolumetricFullConvolution", "SpatialFullConvolution", "VolumetricConvolution"):
        w = f["weight"].astype(np.float64)
        two_d = name.startswith("Spatial")
        if two_d:
            x, w = x[:, :, None], w[:, :, None]
            stride, pad = (1, f["dH"], f["dW"]), (0, f["padH"], f["padW"])
        else:
            stride, pad = (f["dT"], f["dH"], f["dW"]), (f["padT"], f["padH"], f["padW"])
        op = conv3d if name == "VolumetricConvolution" else conv3d_transpose
        y = op(x, w, stride, pad) + f["bias"].reshape(1, -1, 1, 1, 1)
        return y[:, :, 0] if two_d else y
    raise TypeError(f"no Torch semantics for {module.name}")
