"""PyTorch peer of benchmarks/bench_train_step.cpp: the same R2C-GAN, one training iteration and inference.

The networks, TensorFlow 'same' padding, losses and Algorithm 1 follow ../shared/docs/r2cgan-spec.md as
models/ implements them. The operational layer takes the fastest stock-PyTorch form: the powers
[x, x^2 .. x^Q] concatenated along channels and one conv2d (conv_transpose2d) with Q*Cin input channels;
its weights are one [Cout, Q*Cin, k, k] leaf (transposed: [Q*Cin, Cout, k, k]) and its Q biases one [Q, Cout]
leaf, so that parameter counts equal the engine's.

One training iteration, as models/trainer.cpp's Trainer::step: the generator step (L_G over the six
generator passes, made in three calls with each network's independent inputs joined along the batch as
models/losses.cpp makes them, backward, a finiteness check of the losses and gradients, Adam over G and F),
then the discriminator step on image-pooled fakes (L_D, each discriminator called once on its real and fake
images joined, backward, the check, Adam over D_A and D_B), then the loss
terms fetched to the host. The losses and gradients are the engine's (tests/test_torch_oracle.cpp checks
them in float64); the update is PyTorch's Adam with the engine's hyperparameters, which adds epsilon after
the bias correction where the engine's (Keras's) adds it before: the same work, updates that differ where
a gradient is not large against epsilon. Inference: G on a batch without gradients, restored image and class
probabilities, the probabilities fetched to the host (as `r2c restore` does once per image).

Prints one JSON object: {"torch", "device", "device_name", "threads", "precision", "size", "warmup",
"reps", "modes": {"eager": {"results": [...]}, "compile": {"results": [...]} or {"error": why}}}; each
result {"method", "q", "label", "params": {"generator", "generator_classify", "discriminator"},
"train": [{"batch", "ms", "cpu_ms", "images_per_s", "peak_bytes" (CUDA only)}],
"inference": [{"batch", "ms_per_sample", "cpu_ms_per_sample"}]}, with the medians over the timed
repetitions. --params-only prints the parameter counts of every method without timing anything.
"""

import argparse
import contextlib
import json
import math
import random
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

METHODS = {
    "q1": ("operational", 1),
    "q3": ("operational", 3),
    "q5": ("operational", 5),
    "cnn": ("convolutional", 1),
    "cnn-light": ("convolutional-light", 1),
}
LABELS = {"q1": "Q=1", "q3": "Q=3", "q5": "Q=5", "cnn": "CNN", "cnn-light": "CNN*"}


def same_pads(n, k, s):
    """TensorFlow 'same': (before, after) padding of one dimension."""
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def glorot_(t, fan_in, fan_out):
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    with torch.no_grad():
        t.uniform_(-limit, limit)
    return t


def powers(x, q):
    return x if q == 1 else torch.cat([x] + [x**p for p in range(2, q + 1)], dim=1)


class Oper2d(nn.Module):
    """sum_q conv(x^q, W_q) + b_q with 'same' (TensorFlow) or 'valid' padding."""

    def __init__(self, q, cin, cout, k, stride, same, bias):
        super().__init__()
        self.q, self.k, self.stride, self.same = q, k, stride, same
        self.weight = nn.Parameter(glorot_(torch.empty(cout, q * cin, k, k), cin * k * k, cout * k * k))
        self.bias = nn.Parameter(torch.zeros(q, cout)) if bias else None

    def forward(self, x):
        if self.same:
            top, bottom = same_pads(x.shape[2], self.k, self.stride)
            left, right = same_pads(x.shape[3], self.k, self.stride)
            if top or bottom or left or right:
                x = F.pad(x, (left, right, top, bottom))
        bias = None if self.bias is None else self.bias.sum(0)
        return F.conv2d(powers(x, self.q), self.weight, bias, stride=self.stride)


class Oper2dTranspose(nn.Module):
    """sum_q conv_transpose(x^q, W_q) + b_q, TensorFlow 'same': the full result cropped to n*stride."""

    def __init__(self, q, cin, cout, k, stride, bias):
        super().__init__()
        self.q, self.k, self.stride = q, k, stride
        self.weight = nn.Parameter(glorot_(torch.empty(q * cin, cout, k, k), cout * k * k, cin * k * k))
        self.bias = nn.Parameter(torch.zeros(q, cout)) if bias else None

    def forward(self, x):
        h, w = x.shape[2] * self.stride, x.shape[3] * self.stride
        crop = max(self.k - self.stride, 0) // 2
        bias = None if self.bias is None else self.bias.sum(0)
        y = F.conv_transpose2d(powers(x, self.q), self.weight, bias, stride=self.stride)
        return y[:, :, crop : crop + h, crop : crop + w]


class InstanceNorm(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x):
        return F.instance_norm(x, weight=self.gamma, bias=self.beta, eps=1e-3)


class ClassHead(nn.Module):
    """Global max pool -> Dense(C -> 2) -> softmax."""

    def __init__(self, channels):
        super().__init__()
        self.dense = nn.Linear(channels, 2)
        glorot_(self.dense.weight, channels, 2)
        nn.init.zeros_(self.dense.bias)

    def forward(self, h):
        return torch.softmax(self.dense(torch.amax(h, dim=(2, 3))), dim=1)


def reflect(x, p):
    return F.pad(x, (p, p, p, p), mode="reflect")


class OpGenerator(nn.Module):
    def __init__(self, q):
        super().__init__()
        self.enc = Oper2d(q, 3, 128, 3, 2, True, False)
        self.enc_norm = InstanceNorm(128)
        self.res_conv1 = Oper2d(q, 128, 128, 3, 1, False, False)
        self.res_norm1 = InstanceNorm(128)
        self.res_conv2 = Oper2d(q, 128, 128, 3, 1, False, False)
        self.res_norm2 = InstanceNorm(128)
        self.head = ClassHead(128)
        self.dec = Oper2dTranspose(q, 128, 3, 3, 2, True)

    def forward(self, x):
        e = self.enc_norm(self.enc(x))
        t = torch.tanh(self.res_norm1(self.res_conv1(reflect(torch.tanh(e), 1))))
        t = self.res_norm2(self.res_conv2(reflect(t, 1)))
        h = torch.tanh(e + t)  # the block adds its input, not tanh of it (as published)
        return torch.tanh(self.dec(h)), self.head(h)


class ResBlock(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv1 = Oper2d(1, channels, channels, 3, 1, False, False)
        self.norm1 = InstanceNorm(channels)
        self.conv2 = Oper2d(1, channels, channels, 3, 1, False, False)
        self.norm2 = InstanceNorm(channels)

    def forward(self, x):
        h = torch.relu(self.norm1(self.conv1(reflect(x, 1))))
        return x + self.norm2(self.conv2(reflect(h, 1)))


class ConvGenerator(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = nn.ModuleList(
            [
                Oper2d(1, 3, 64, 7, 1, False, False),
                InstanceNorm(64),
                Oper2d(1, 64, 128, 3, 2, True, False),
                InstanceNorm(128),
                Oper2d(1, 128, 256, 3, 2, True, False),
                InstanceNorm(256),
            ]
        )
        self.blocks = nn.ModuleList([ResBlock(256) for _ in range(9)])
        self.head = ClassHead(256)
        self.dec = nn.ModuleList(
            [
                Oper2dTranspose(1, 256, 128, 3, 2, False),
                InstanceNorm(128),
                Oper2dTranspose(1, 128, 64, 3, 2, False),
                InstanceNorm(64),
            ]
        )
        self.out = Oper2d(1, 64, 3, 7, 1, False, True)

    def forward(self, x):
        h = reflect(x, 3)
        for conv, norm in zip(self.enc[0::2], self.enc[1::2]):
            h = torch.relu(norm(conv(h)))
        probs = None
        for i, block in enumerate(self.blocks):
            h = block(h)
            if i == 4:
                probs = self.head(h)  # the class head is taken after the 5th block
        for conv, norm in zip(self.dec[0::2], self.dec[1::2]):
            h = torch.relu(norm(conv(h)))
        return torch.tanh(self.out(reflect(h, 3))), probs


class ConvCompGenerator(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = Oper2d(1, 3, 128, 3, 2, True, False)
        self.enc_norm = InstanceNorm(128)
        self.block = ResBlock(128)
        self.head = ClassHead(128)
        self.dec = Oper2dTranspose(1, 128, 3, 3, 2, True)

    def forward(self, x):
        h = self.block(torch.relu(self.enc_norm(self.enc(x))))
        return torch.tanh(self.dec(h)), self.head(h)


class Discriminator(nn.Module):
    """PatchGAN: layers (cin, cout, stride, bias, norm) with k4 'same', LeakyReLU(0.2) after each but the
    last, and after the last too when final_activation."""

    def __init__(self, q, layers, final_activation):
        super().__init__()
        self.convs = nn.ModuleList([Oper2d(q, ci, co, 4, s, True, b) for ci, co, s, b, _ in layers])
        self.norms = nn.ModuleList([InstanceNorm(co) if n else nn.Identity() for _, co, _, _, n in layers])
        self.final_activation = final_activation

    def forward(self, x):
        last = len(self.convs) - 1
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            x = norm(conv(x))
            if i < last or self.final_activation:
                x = F.leaky_relu(x, 0.2)
        return x


COMPACT_D = [(3, 64, 2, True, False), (64, 128, 4, False, True), (128, 1, 1, True, False)]
DEEP_D = [
    (3, 64, 2, True, False),
    (64, 128, 2, False, True),
    (128, 256, 2, False, True),
    (256, 512, 1, False, True),
    (512, 1, 1, True, False),
]


def make_networks(method, q):
    if method == "operational":
        return OpGenerator(q), Discriminator(q, COMPACT_D, True)
    if method == "convolutional":
        return ConvGenerator(), Discriminator(1, DEEP_D, False)
    return ConvCompGenerator(), Discriminator(1, COMPACT_D, False)


def count(module):
    return sum(p.numel() for p in module.parameters())


def param_counts(method, q):
    torch.manual_seed(0)
    g, d = make_networks(method, q)
    # Up to the class head: everything but the decoder (and, for the deep CNN, the last four blocks).
    classify = count(g) - sum(count(m) for name, m in g.named_children() if name in ("dec", "out"))
    if method == "convolutional":
        classify -= sum(count(b) for b in g.blocks[5:])
    return {"generator": count(g), "generator_classify": classify, "discriminator": count(d)}


def mse_to(x, value):
    return torch.mean((x - value) ** 2)


def mae(a, b):
    return torch.mean(torch.abs(a - b))


def crossentropy(probs, onehot):
    """Keras categorical cross-entropy on probabilities, averaged over the batch."""
    return torch.mean(-torch.sum(onehot * torch.log(torch.clamp(probs, 1e-7, 1 - 1e-7)), dim=1))


class ImagePool:
    """Image pool of 50 (the spec's query rule), one image per batch element."""

    def __init__(self, size, rng):
        self.size, self.rng, self.items = size, rng, []

    def query(self, images):
        out = []
        for img in images.split(1):
            if len(self.items) < self.size:
                self.items.append(img)
                out.append(img)
            elif self.rng.random() < 0.5:
                i = self.rng.randrange(self.size)
                out.append(self.items[i])
                self.items[i] = img
            else:
                out.append(img)
        return torch.cat(out)


def joined(net, *inputs):
    """net on each input in one call on the inputs joined along the batch: the images and the class
    probabilities, each a tuple with one entry per input."""
    sizes = [len(x) for x in inputs]
    images, probs = net(torch.cat(inputs))
    return torch.split(images, sizes), torch.split(probs, sizes)


class Step:
    """One iteration of Algorithm 1 over G, F (A -> B, B -> A) and D_A, D_B."""

    def __init__(self, method, q, device, compile_nets, autocast):
        torch.manual_seed(0)
        self.G, self.D_A = make_networks(method, q)
        self.F, self.D_B = make_networks(method, q)
        for m in (self.G, self.F, self.D_A, self.D_B):
            m.to(device)
        self.g_params = list(self.G.parameters()) + list(self.F.parameters())
        self.d_params = list(self.D_A.parameters()) + list(self.D_B.parameters())
        adam = dict(lr=2e-4, betas=(0.5, 0.999), eps=1e-7)
        self.opt_g = torch.optim.Adam(self.g_params, **adam)
        self.opt_d = torch.optim.Adam(self.d_params, **adam)
        rng = random.Random(0)
        self.pool_A2B, self.pool_B2A = ImagePool(50, rng), ImagePool(50, rng)
        self.autocast = autocast
        if compile_nets:
            nets = (self.G, self.F, self.D_A, self.D_B)
            self.G, self.F, self.D_A, self.D_B = (torch.compile(m) for m in nets)

    def _update(self, losses, params, opt):
        """Adam when the losses and gradients are finite (as the engine's guard); one host sync."""
        checks = [torch.isfinite(t).all() for t in losses] + [
            torch.isfinite(p.grad).all() for p in params if p.grad is not None
        ]
        if bool(torch.stack(checks).all()):
            opt.step()

    def __call__(self, A, B, cA, cB):
        G, Fn, D_A, D_B = self.G, self.F, self.D_A, self.D_B
        for p in self.d_params:
            p.requires_grad_(False)
        self.opt_g.zero_grad(set_to_none=True)
        with self.autocast():
            # The six generator passes in three calls, as models/losses.cpp joins them.
            (A2B, B2B), (cA2B, cB2B) = joined(G, A, B)
            (B2A, A2A, A2B2A), (cB2A, cA2A, cA2B2A) = joined(Fn, B, A, A2B)
            B2A2B, cB2A2B = G(B2A)
            g_terms = [
                mse_to(D_B(A2B), 1.0),
                mse_to(D_A(B2A), 1.0),
                crossentropy(cA2B, cA),
                crossentropy(cB2A, cB),
                mae(A, A2B2A),
                mae(B, B2A2B),
                crossentropy(cA2B2A, cA),
                crossentropy(cB2A2B, cB),
                mae(A, A2A),
                mae(B, B2B),
                crossentropy(cA2A, cA),
                crossentropy(cB2B, cB),
            ]
            weights = [1, 1, 0.1, 0.1, 10, 10, 0.1, 0.1, 5, 5, 0.1, 0.1]
            g_total = sum(w * t for w, t in zip(weights, g_terms))
        g_total.backward()
        self._update(g_terms + [g_total], self.g_params, self.opt_g)
        for p in self.d_params:
            p.requires_grad_(True)

        self.opt_d.zero_grad(set_to_none=True)
        A2B_fake = self.pool_A2B.query(A2B.detach())
        B2A_fake = self.pool_B2A.query(B2A.detach())
        with self.autocast():
            A_real, A_fake = torch.split(D_A(torch.cat([A, B2A_fake])), [len(A), len(B2A_fake)])
            B_real, B_fake = torch.split(D_B(torch.cat([B, A2B_fake])), [len(B), len(A2B_fake)])
            d_terms = [
                mse_to(A_real, 1.0),
                mse_to(A_fake, 0.0),
                mse_to(B_real, 1.0),
                mse_to(B_fake, 0.0),
            ]
            d_total = sum(d_terms)
        d_total.backward()
        self._update(d_terms + [d_total], self.d_params, self.opt_d)
        return torch.stack([t.detach().double() for t in g_terms + [g_total] + d_terms + [d_total]]).tolist()


def batch(n, size, device, gen):
    x = (torch.rand(n, 3, size, size, generator=gen) * 2 - 1).to(device)
    labels = torch.randint(0, 2, (n,), generator=gen)
    return x, F.one_hot(labels, 2).float().to(device)


def timed(fn, reps, warmup, device):
    """Medians of wall-clock and process CPU time (ms) of fn() over reps runs after warmup runs."""
    wall, cpu = [], []
    for rep in range(warmup + reps):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if rep >= warmup:
            wall.append((time.perf_counter() - start) * 1e3)
            cpu.append((time.process_time() - start_cpu) * 1e3)
    return statistics.median(wall), statistics.median(cpu)


def measure(key, args, device, compile_nets, autocast):
    method, q = METHODS[key]
    result = {"method": method, "q": q, "label": LABELS[key], "params": param_counts(method, q)}
    gen = torch.Generator().manual_seed(1)
    result["train"] = []
    for n in args.batches:
        step = Step(method, q, device, compile_nets, autocast)
        A, cA = batch(n, args.size, device, gen)
        B, cB = batch(n, args.size, device, gen)
        # The peak memory over the timed iterations alone, as the engine reports its own.
        for _ in range(args.warmup):
            step(A, B, cA, cB)
        if device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats(device)
        ms, cpu_ms = timed(lambda: step(A, B, cA, cB), args.reps, 0, device)
        row = {"batch": n, "ms": ms, "cpu_ms": cpu_ms, "images_per_s": n * 1e3 / ms}
        if device.type == "cuda":
            row["peak_bytes"] = torch.cuda.max_memory_allocated(device)
        result["train"].append(row)
        del step
    result["inference"] = []
    torch.manual_seed(0)
    g = make_networks(method, q)[0].to(device).eval()
    if compile_nets:
        g = torch.compile(g)
    for n in args.inference_batches:
        x, _ = batch(n, args.size, device, gen)

        def infer():
            with torch.inference_mode(), autocast():
                _, probs = g(x)
                return probs.float().cpu()

        ms, cpu_ms = timed(infer, args.reps, args.warmup, device)
        result["inference"].append({"batch": n, "ms_per_sample": ms / n, "cpu_ms_per_sample": cpu_ms / n})
    return result


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--methods", default="q1,q3,q5,cnn,cnn-light", help="comma-separated: " + ",".join(METHODS)
    )
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batches", default="1,16", help="training batch sizes")
    parser.add_argument("--inference-batches", default="1,32")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--precision", default="tf32", choices=["fp32", "tf32", "bf16"], help="CUDA only")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: PyTorch's default)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--no-compile", action="store_true", help="eager mode only")
    parser.add_argument("--params-only", action="store_true", help="print every method's parameter counts")
    args = parser.parse_args()
    keys = args.methods.split(",")
    for key in keys:
        if key not in METHODS:
            parser.error(f"unknown method {key!r} (expected one of {', '.join(METHODS)})")
    if args.params_only:
        print(json.dumps({key: {"label": LABELS[key], **param_counts(*METHODS[key])} for key in keys}))
        return
    args.batches = [int(n) for n in args.batches.split(",")]
    args.inference_batches = [int(n) for n in args.inference_batches.split(",")]

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    autocast = contextlib.nullcontext
    if device.type == "cuda":
        tf32 = args.precision != "fp32"
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
        torch.backends.cudnn.benchmark = True
        if args.precision == "bf16":

            def autocast():
                return torch.autocast("cuda", dtype=torch.bfloat16)

    report = {
        "torch": torch.__version__,
        "device": device.type,
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(),
        "precision": args.precision if device.type == "cuda" else "fp32",
        "size": args.size,
        "warmup": args.warmup,
        "reps": args.reps,
        "modes": {"eager": {"results": [measure(k, args, device, False, autocast) for k in keys]}},
    }
    if args.no_compile:
        report["modes"]["compile"] = {"error": "not run (--no-compile)"}
    elif not hasattr(torch, "compile"):
        why = f"torch.compile needs PyTorch 2.0 or later; this is {torch.__version__}"
        report["modes"]["compile"] = {"error": why}
    else:
        try:
            report["modes"]["compile"] = {"results": [measure(k, args, device, True, autocast) for k in keys]}
        except Exception as e:  # a compile failure is a result to report, not a reason to lose the eager run
            report["modes"]["compile"] = {"error": f"{type(e).__name__}: {e}"}
    print(json.dumps(report))


if __name__ == "__main__":
    main()
