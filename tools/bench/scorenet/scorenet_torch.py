#!/usr/bin/python3
"""PyTorch peer of the ScoreNet benchmark: the same network, loss and training step, timed the same way.

The network is the time-dependent U-Net of Song's score-SDE tutorial (Song et al., ICLR 2021, the PyTorch Colab),
written out here for this benchmark to match `packages/models/src/scorenet.ts` layer for layer (1,115,297 trainable
parameters, checked at start-up). The training step matches `trainStep` of the models package: continuous DSM loss
under the tutorial SDE dx = 25^t dw (lambda = s(t)^2), backward, the global gradient norm and the loss read back,
Adam (lr 1e-4), an EMA update (decay 0.999).

    /usr/bin/python3 tools/bench/scorenet/scorenet_torch.py --batch 64 --iterations 10 --threads 2

Prints one JSON line: {framework, version, threads, batch, forward: [ms], train: [ms], forwardCpu, trainCpu (CPU ms of
the process), peakRssMb, params}.
Needs `apt-get install python3-torch libopenblas0-openmp` (without the OpenMP BLAS, Debian's reference BLAS makes
the transposed convolutions several times slower).
"""
import argparse
import json
import math
import resource
import time

import torch
import torch.nn as nn

SIGMA = 25.0
EPS = 1e-5
EXPECTED_PARAMS = 1115297


def marginal_std(t):
    """s(t) of dx = sigma^t dw: sqrt((sigma^(2t) - 1) / (2 ln sigma))."""
    return torch.sqrt((SIGMA ** (2 * t) - 1.0) / (2.0 * math.log(SIGMA)))


class FourierFeatures(nn.Module):
    def __init__(self, embed_dim, scale=30.0):
        super().__init__()
        self.W = nn.Parameter(torch.randn(embed_dim // 2) * scale, requires_grad=False)

    def forward(self, t):
        proj = t[:, None] * self.W[None, :] * 2 * math.pi
        return torch.cat([torch.sin(proj), torch.cos(proj)], dim=-1)


class Dense(nn.Module):
    """A linear map of the embedding, as a per-channel bias [B, C, 1, 1]."""

    def __init__(self, d_in, d_out):
        super().__init__()
        self.dense = nn.Linear(d_in, d_out)

    def forward(self, x):
        return self.dense(x)[..., None, None]


def swish(x):
    return x * torch.sigmoid(x)


def gn(groups, ch):
    """GroupNorm with the tutorial's group count reduced to gcd(groups, channels), as `groupCounts` of scorenet.ts."""
    return nn.GroupNorm(math.gcd(groups, ch), ch)


class ScoreNet(nn.Module):
    def __init__(self, channels=(32, 64, 128, 256), embed_dim=256, fourier_scale=30.0):
        super().__init__()
        c1, c2, c3, c4 = channels
        self.embed = nn.Sequential(FourierFeatures(embed_dim, fourier_scale), nn.Linear(embed_dim, embed_dim))
        self.conv1 = nn.Conv2d(1, c1, 3, stride=1, bias=False)
        self.dense1 = Dense(embed_dim, c1)
        self.gnorm1 = gn(4, c1)
        self.conv2 = nn.Conv2d(c1, c2, 3, stride=2, bias=False)
        self.dense2 = Dense(embed_dim, c2)
        self.gnorm2 = gn(32, c2)
        self.conv3 = nn.Conv2d(c2, c3, 3, stride=2, bias=False)
        self.dense3 = Dense(embed_dim, c3)
        self.gnorm3 = gn(32, c3)
        self.conv4 = nn.Conv2d(c3, c4, 3, stride=2, bias=False)
        self.dense4 = Dense(embed_dim, c4)
        self.gnorm4 = gn(32, c4)
        self.tconv4 = nn.ConvTranspose2d(c4, c3, 3, stride=2, bias=False)
        self.dense5 = Dense(embed_dim, c3)
        self.tgnorm4 = gn(32, c3)
        self.tconv3 = nn.ConvTranspose2d(c3 + c3, c2, 3, stride=2, bias=False, output_padding=1)
        self.dense6 = Dense(embed_dim, c2)
        self.tgnorm3 = gn(32, c2)
        self.tconv2 = nn.ConvTranspose2d(c2 + c2, c1, 3, stride=2, bias=False, output_padding=1)
        self.dense7 = Dense(embed_dim, c1)
        self.tgnorm2 = gn(32, c1)
        self.tconv1 = nn.ConvTranspose2d(c1 + c1, 1, 3, stride=1)

    def forward(self, x, t):
        """The un-normalised output (the score is this / s(t)), as `scoreNet` of the models package."""
        embed = swish(self.embed(t))
        h1 = swish(self.gnorm1(self.conv1(x) + self.dense1(embed)))
        h2 = swish(self.gnorm2(self.conv2(h1) + self.dense2(embed)))
        h3 = swish(self.gnorm3(self.conv3(h2) + self.dense3(embed)))
        h4 = swish(self.gnorm4(self.conv4(h3) + self.dense4(embed)))
        h = swish(self.tgnorm4(self.tconv4(h4) + self.dense5(embed)))
        h = swish(self.tgnorm3(self.tconv3(torch.cat([h, h3], dim=1)) + self.dense6(embed)))
        h = swish(self.tgnorm2(self.tconv2(torch.cat([h, h2], dim=1)) + self.dense7(embed)))
        return self.tconv1(torch.cat([h, h1], dim=1))


def dsm_loss(model, x0):
    """mean_b sum ||s(t) * score + z||^2 = mean_b sum ||net(x_t, t) + z||^2 with x_t = x0 + s(t) z."""
    t = torch.rand(x0.shape[0]) * (1.0 - EPS) + EPS
    z = torch.randn_like(x0)
    std = marginal_std(t)[:, None, None, None]
    out = model(x0 + std * z, t)
    return torch.mean(torch.sum((out + z) ** 2, dim=(1, 2, 3)))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--iterations", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = ScoreNet()
    params = sum(q.numel() for q in model.parameters() if q.requires_grad)
    if params != EXPECTED_PARAMS:
        raise SystemExit(f"parameter count {params} != {EXPECTED_PARAMS}: the network does not match")
    trainable = [q for q in model.parameters() if q.requires_grad]
    ema = [q.detach().clone() for q in trainable]
    opt = torch.optim.Adam(trainable, lr=1e-4)
    x0 = torch.rand(a.batch, 1, 28, 28)
    t = torch.rand(a.batch) * (1.0 - EPS) + EPS

    def forward():
        with torch.no_grad():
            model(x0, t)

    def train():
        opt.zero_grad(set_to_none=True)
        loss = dsm_loss(model, x0)
        loss.backward()
        norm = torch.sqrt(sum(torch.sum(q.grad * q.grad) for q in trainable)).item()
        if not (math.isfinite(loss.item()) and math.isfinite(norm)):
            raise SystemExit("non-finite loss or gradient")
        opt.step()
        with torch.no_grad():
            for e, q in zip(ema, trainable):
                e.mul_(0.999).add_(q, alpha=0.001)

    def timed(f):
        """Wall and CPU milliseconds (CPU: the whole process, all threads)."""
        c0, t0 = time.process_time(), time.perf_counter()
        f()
        return (time.perf_counter() - t0) * 1000.0, (time.process_time() - c0) * 1000.0

    for _ in range(a.warmup):
        forward()
    fwd = [timed(forward) for _ in range(a.iterations)]
    for _ in range(a.warmup):
        train()
    trn = [timed(train) for _ in range(a.iterations)]
    print(
        json.dumps(
            {
                "framework": "pytorch",
                "version": torch.__version__,
                "threads": torch.get_num_threads(),
                "batch": a.batch,
                "forward": [w for w, _ in fwd],
                "train": [w for w, _ in trn],
                "forwardCpu": [c for _, c in fwd],
                "trainCpu": [c for _, c in trn],
                "peakRssMb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
                "params": params,
                "parallelInfo": torch.__config__.parallel_info(),
            }
        )
    )


if __name__ == "__main__":
    main()
