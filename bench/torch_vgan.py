"""VGAN in PyTorch, for benchmarks only: the same networks, init and losses as tinyvideo_mx, written
from docs/original.md (§1-3), and the loop most PyTorch ports use.

Not part of the package (PyTorch is never a dependency of tinyvideo-mx). Install it into the venv with
``pip install torch==2.13.0`` (the CPU build this machine keeps on disk) to run bench/versus_pytorch.py.

The loop is the usual DCGAN-style port's (one D step, one G step, same z):
    fake = G(z)
    D step: CE(D(real), real) + CE(D(fake.detach()), fake) -> Adam on D
    G step: CE(D(fake), real) + 0.1 * mean(mask)          -> Adam on G
PyTorch cannot back-propagate the D-step graph through D's updated weights (the original's G step; it
refuses: "modified by an inplace operation"), so the G step runs D(fake) again - one more D forward than
the original's algorithm, which tinyvideo-mx runs by default. D's parameters are frozen during the G step
so their weight gradients are not computed (what a careful port does; without it the G step also pays
D's backward-weights).
"""
import torch
from torch import nn

REAL, FAKE = 0, 1


def first_kernel(frames, size):
    """G's first and D's last kernel: (2, 4, 4) at 32 x 64 x 64 (four doublings follow it)."""
    return frames // 16, size // 16, size // 16


def _init(module):
    """main.lua:130-144: (transposed) convolutions N(0, 0.01), bias 0; BN gamma N(1, 0.02), beta 0."""
    if isinstance(module, (nn.Conv3d, nn.ConvTranspose3d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.01)
        nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm2d, nn.BatchNorm3d)):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class Generator(nn.Module):
    """Two streams (spec 1a-1c): 3-D foreground + mask, 2-D background, video = m*f + (1-m)*b."""

    def __init__(self, nz=100, ngf=64, frames=32, size=64):
        super().__init__()
        w = [ngf * 8, ngf * 4, ngf * 2, ngf]
        video, image, cin = [], [], nz
        first = first_kernel(frames, size)
        for i, ch in enumerate(w):
            k3, k2, s, p = (first, first[1], 1, 0) if i == 0 else (4, 4, 2, 1)
            video += [nn.ConvTranspose3d(cin, ch, k3, s, p), nn.BatchNorm3d(ch, eps=1e-5, momentum=0.1), nn.ReLU(True)]
            image += [nn.ConvTranspose2d(cin, ch, k2, s, p), nn.BatchNorm2d(ch, eps=1e-5, momentum=0.1), nn.ReLU(True)]
            cin = ch
        self.video = nn.Sequential(*video)
        self.foreground = nn.ConvTranspose3d(ngf, 3, 4, 2, 1)
        self.mask = nn.ConvTranspose3d(ngf, 1, 4, 2, 1)
        self.background = nn.Sequential(*image, nn.ConvTranspose2d(ngf, 3, 4, 2, 1), nn.Tanh())
        self.apply(_init)

    def forward(self, z):
        h = self.video(z.view(z.shape[0], -1, 1, 1, 1))
        f = torch.tanh(self.foreground(h))
        m = torch.sigmoid(self.mask(h))
        b = self.background(z.view(z.shape[0], -1, 1, 1)).unsqueeze(2)
        return m * f + (1 - m) * b, m


class Discriminator(nn.Module):
    """docs/original.md §2: Conv3d(4, 2, 1) stages, LeakyReLU 0.2, BN eps 1e-3 on all but the first, 2 logits."""

    def __init__(self, ndf=64, frames=32, size=64):
        super().__init__()
        layers, cin = [], 3
        for i, ch in enumerate([ndf, ndf * 2, ndf * 4, ndf * 8]):
            layers.append(nn.Conv3d(cin, ch, 4, 2, 1))
            if i > 0:
                layers.append(nn.BatchNorm3d(ch, eps=1e-3, momentum=0.1))
            layers.append(nn.LeakyReLU(0.2, True))
            cin = ch
        layers.append(nn.Conv3d(cin, 2, first_kernel(frames, size), 1, 0))
        self.net = nn.Sequential(*layers)
        self.apply(_init)

    def forward(self, video):
        return self.net(video).flatten(1)


class Training:
    """G, D, their Adam optimisers (lr 2e-4, beta1 0.5) and the usual port's step."""

    def __init__(self, batch, bf16=False, seed=0, ngf=64, ndf=64, frames=32, size=64):
        torch.manual_seed(seed)
        self.G, self.D = Generator(ngf=ngf, frames=frames, size=size), Discriminator(ndf, frames, size)
        adam = dict(lr=2e-4, betas=(0.5, 0.999), eps=1e-8)
        self.opt_g = torch.optim.Adam(self.G.parameters(), **adam)
        self.opt_d = torch.optim.Adam(self.D.parameters(), **adam)
        self.ce = nn.CrossEntropyLoss()
        self.bf16 = bf16
        self.batch = batch
        self.real_label = torch.full((batch,), REAL, dtype=torch.long)
        self.fake_label = torch.full((batch,), FAKE, dtype=torch.long)

    def _autocast(self):
        return torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16)

    def step(self, real, z):
        # (1) Update D network: real batch and the detached fake batch, separate BN statistics.
        self.opt_d.zero_grad(set_to_none=True)
        with self._autocast():
            fake, mask = self.G(z)
            loss_d = self.ce(self.D(real), self.real_label) + self.ce(self.D(fake.detach()), self.fake_label)
        loss_d.backward()
        self.opt_d.step()
        # (2) Update G network: non-saturating loss through the updated D, plus the mask prior.
        self.opt_g.zero_grad(set_to_none=True)
        self.D.requires_grad_(False)
        with self._autocast():
            loss_g = self.ce(self.D(fake), self.real_label) + 0.1 * mask.float().mean()
        loss_g.backward()
        self.D.requires_grad_(True)
        self.opt_g.step()
        return loss_d.item(), loss_g.item()
