#!/usr/bin/python3
"""The PyTorch twin of the project's ScoreNet: Yang Song's score-SDE tutorial network, module for module, and the
safetensors files the project exports and imports (`npx nx run experiments:torch`; mapping version 1, documented in
packages/models/src/torch-twin.ts).

    /usr/bin/python3 tools/torch/scorenet_twin.py fixture --out packages/models/test/fixtures/torch-twin
        writes the committed test fixture: scorenet.safetensors (a small-width ScoreNet, random PyTorch init, with the
        __metadata__ the project's export writes) and io.safetensors (inputs x, t and the network's score on them)
    /usr/bin/python3 tools/torch/scorenet_twin.py score --weights model.safetensors
        loads an exported file into the tutorial ScoreNet (strict load_state_dict) and prints the score of a fixed input
        (the other way round: train here, sample or fine-tune in PyTorch)

Needs `apt-get install python3-torch libopenblas0-openmp`; no `safetensors` package (the format is written here: an
8-byte little-endian header length, the JSON header padded with spaces to 8 bytes, then the raw little-endian data).
Run with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset (this machine sets them for older OpenBLAS builds).
"""
import argparse
import json
import math
import os
import struct

import torch
import torch.nn as nn

MAPPING_VERSION = "1"


# ------------------------------------------------------------------------------------------------------------------
# the tutorial network (score_sde's MNIST tutorial, written out; module names and layouts are the tutorial's)
# ------------------------------------------------------------------------------------------------------------------


class GaussianFourierProjection(nn.Module):
    def __init__(self, embed_dim, scale=30.0):
        super().__init__()
        self.W = nn.Parameter(torch.randn(embed_dim // 2) * scale, requires_grad=False)

    def forward(self, t):
        x_proj = t[:, None] * self.W[None, :] * 2 * math.pi
        return torch.cat([torch.sin(x_proj), torch.cos(x_proj)], dim=-1)


class Dense(nn.Module):
    def __init__(self, input_dim, output_dim):
        super().__init__()
        self.dense = nn.Linear(input_dim, output_dim)

    def forward(self, x):
        return self.dense(x)[..., None, None]


def tutorial_groups(channels):
    """The tutorial's GroupNorm counts (4, 32, 32, 32 / 32, 32, 32), each reduced to gcd(count, channels) so that it
    divides the channel count: the tutorial's own counts at its widths, and what the project uses at any width."""
    c1, c2, c3, c4 = channels
    enc = [math.gcd(g, c) for g, c in zip((4, 32, 32, 32), (c1, c2, c3, c4))]
    dec = [math.gcd(32, c) for c in (c3, c2, c1)]
    return enc, dec


class ScoreNet(nn.Module):
    def __init__(self, marginal_prob_std, channels=(32, 64, 128, 256), embed_dim=256, scale=30.0):
        super().__init__()
        enc, dec = tutorial_groups(channels)
        self.embed = nn.Sequential(GaussianFourierProjection(embed_dim=embed_dim, scale=scale), nn.Linear(embed_dim, embed_dim))
        self.conv1 = nn.Conv2d(1, channels[0], 3, stride=1, bias=False)
        self.dense1 = Dense(embed_dim, channels[0])
        self.gnorm1 = nn.GroupNorm(enc[0], num_channels=channels[0])
        self.conv2 = nn.Conv2d(channels[0], channels[1], 3, stride=2, bias=False)
        self.dense2 = Dense(embed_dim, channels[1])
        self.gnorm2 = nn.GroupNorm(enc[1], num_channels=channels[1])
        self.conv3 = nn.Conv2d(channels[1], channels[2], 3, stride=2, bias=False)
        self.dense3 = Dense(embed_dim, channels[2])
        self.gnorm3 = nn.GroupNorm(enc[2], num_channels=channels[2])
        self.conv4 = nn.Conv2d(channels[2], channels[3], 3, stride=2, bias=False)
        self.dense4 = Dense(embed_dim, channels[3])
        self.gnorm4 = nn.GroupNorm(enc[3], num_channels=channels[3])
        self.tconv4 = nn.ConvTranspose2d(channels[3], channels[2], 3, stride=2, bias=False)
        self.dense5 = Dense(embed_dim, channels[2])
        self.tgnorm4 = nn.GroupNorm(dec[0], num_channels=channels[2])
        self.tconv3 = nn.ConvTranspose2d(channels[2] + channels[2], channels[1], 3, stride=2, bias=False, output_padding=1)
        self.dense6 = Dense(embed_dim, channels[1])
        self.tgnorm3 = nn.GroupNorm(dec[1], num_channels=channels[1])
        self.tconv2 = nn.ConvTranspose2d(channels[1] + channels[1], channels[0], 3, stride=2, bias=False, output_padding=1)
        self.dense7 = Dense(embed_dim, channels[0])
        self.tgnorm2 = nn.GroupNorm(dec[2], num_channels=channels[0])
        self.tconv1 = nn.ConvTranspose2d(channels[0] + channels[0], 1, 3, stride=1)
        self.act = lambda x: x * torch.sigmoid(x)
        self.marginal_prob_std = marginal_prob_std

    def forward(self, x, t):
        embed = self.act(self.embed(t))
        h1 = self.act(self.gnorm1(self.conv1(x) + self.dense1(embed)))
        h2 = self.act(self.gnorm2(self.conv2(h1) + self.dense2(embed)))
        h3 = self.act(self.gnorm3(self.conv3(h2) + self.dense3(embed)))
        h4 = self.act(self.gnorm4(self.conv4(h3) + self.dense4(embed)))
        h = self.act(self.tgnorm4(self.tconv4(h4) + self.dense5(embed)))
        h = self.act(self.tgnorm3(self.tconv3(torch.cat([h, h3], dim=1)) + self.dense6(embed)))
        h = self.act(self.tgnorm2(self.tconv2(torch.cat([h, h2], dim=1)) + self.dense7(embed)))
        h = self.tconv1(torch.cat([h, h1], dim=1))
        return h / self.marginal_prob_std(t)[:, None, None, None]


def tutorial_std(sigma):
    """s(t) of the tutorial SDE dx = sigma^t dw: sqrt((sigma^(2t) - 1) / (2 ln sigma))."""
    return lambda t: torch.sqrt((sigma ** (2 * t) - 1.0) / (2.0 * math.log(sigma)))


# ------------------------------------------------------------------------------------------------------------------
# safetensors
# ------------------------------------------------------------------------------------------------------------------


def write_safetensors(path, tensors, metadata):
    """tensors: list of (name, float32 tensor) in storage order; metadata: dict of str -> str."""
    header = {}
    offset = 0
    blobs = []
    for name, t in tensors:
        data = t.detach().to(torch.float32).contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n].decode("utf-8"))
    metadata = header.pop("__metadata__", {})
    base = 8 + n
    out = {}
    for name, e in header.items():
        if e["dtype"] != "F32":
            raise ValueError(f"{name}: dtype {e['dtype']}, only F32 is read here")
        b, end = e["data_offsets"]
        out[name] = torch.frombuffer(bytearray(raw[base + b : base + end]), dtype=torch.float32).reshape(e["shape"]).clone()
    return out, metadata


# ------------------------------------------------------------------------------------------------------------------
# commands
# ------------------------------------------------------------------------------------------------------------------


def fixture(out):
    torch.manual_seed(0)
    channels, embed_dim, scale, sigma = (4, 8, 8, 8), 8, 30.0, 25.0
    model = ScoreNet(tutorial_std(sigma), channels=channels, embed_dim=embed_dim, scale=scale).eval()
    os.makedirs(out, exist_ok=True)
    metadata = {
        "format": "score-sde-ts/scorenet-torch",
        "mapping_version": MAPPING_VERSION,
        "config": json.dumps({"channels": list(channels), "embedDim": embed_dim, "fourierScale": scale}),
        "sde": json.dumps({"kind": "tutorial", "sigma": sigma, "T": 1}),
        "parameterisation": json.dumps({"kind": "tutorial"}),
        "producer": f"tools/torch/scorenet_twin.py (torch {torch.__version__})",
    }
    write_safetensors(os.path.join(out, "scorenet.safetensors"), list(model.state_dict().items()), metadata)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(2, 1, 28, 28, generator=g)
    t = torch.tensor([0.1, 0.7])
    with torch.no_grad():
        score = model(x, t)
    write_safetensors(os.path.join(out, "io.safetensors"), [("x", x), ("t", t), ("score", score)], {"layout": "NCHW (C = 1: the same order as NHWC)"})
    print(json.dumps({"params": sum(p.numel() for p in model.parameters()), "score_abs_max": score.abs().max().item()}))


def score(weights):
    tensors, metadata = read_safetensors(weights)
    config = json.loads(metadata["config"])
    sde = json.loads(metadata["sde"])
    if sde.get("kind") != "tutorial":
        raise SystemExit(f"this peer builds the tutorial SDE only, the file says {sde}")
    model = ScoreNet(tutorial_std(sde["sigma"]), channels=config["channels"], embed_dim=config["embedDim"], scale=config["fourierScale"])
    model.load_state_dict(tensors, strict=True)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(2, 1, 28, 28, generator=g)
    with torch.no_grad():
        s = model.eval()(x, torch.tensor([0.1, 0.7]))
    print(json.dumps({"loaded": len(tensors), "score_abs_max": s.abs().max().item(), "score_mean": s.mean().item()}))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="command", required=True)
    f = sub.add_parser("fixture")
    f.add_argument("--out", required=True)
    s = sub.add_parser("score")
    s.add_argument("--weights", required=True)
    a = p.parse_args()
    torch.set_num_threads(1)
    if a.command == "fixture":
        fixture(a.out)
    else:
        score(a.weights)


if __name__ == "__main__":
    main()
