"""PyTorch oracle for tests/test_torch_oracle.cpp.

Usage: torch_oracle.py DIR. DIR/manifest.json lists cases, each {"op", "params", "inputs": [{"name",
"shape", "grad"}], "out_shape"}; case i's inputs are DIR/<i>_<name>.f64 and the output weights R are
DIR/<i>_R.f64 (raw little-endian float64). For each case this computes, in float64, y = op(inputs) and
the gradients of sum(y * R), and writes DIR/<i>_out.f64 and DIR/<i>_grad_<name>.f64 for every input
marked "grad". The ops are written from the TensorFlow/Keras definitions in docs/r2cgan-spec.md with
stock torch functions, independently of the C++ engine.
"""

import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

KERAS_EPSILON = 1e-7


def tf_same_pads(n, k, s):
    """TensorFlow `same`: out = ceil(n/s); the odd padding pixel goes after."""
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def powers(x, q_count):
    return [x**q for q in range(1, q_count + 1)]


def bias_sum(t):
    """The Q bias vectors of an operational layer add up to one per output channel, or None."""
    return t["b"].sum(0) if "b" in t else None


def oper_conv2d(t, p):
    x, w = t["x"], t["w"]
    q_count, cout, cin, k, _ = w.shape
    s = p["stride"]
    if p["padding"] == "reflect":
        x = F.pad(x, (p["pad"],) * 4, mode="reflect")
    # sum_q conv(x^q, W_q) is one convolution of the powers stacked along channels.
    xs = torch.cat(powers(x, q_count), dim=1)
    weight = w.permute(1, 0, 2, 3, 4).reshape(cout, q_count * cin, k, k)
    if p["padding"] == "same":
        top, bottom = tf_same_pads(x.shape[2], k, s)
        left, right = tf_same_pads(x.shape[3], k, s)
    elif p["padding"] == "explicit":
        top, bottom, left, right = p["pads"]
    else:
        top = bottom = left = right = 0
    xs = F.pad(xs, (left, right, top, bottom))
    return F.conv2d(xs, weight, bias_sum(t), stride=s)


def oper_conv_transpose2d(t, p):
    x, w = t["x"], t["w"]
    k = w.shape[-1]
    s = p["stride"]
    y = sum(F.conv_transpose2d(xq, wq, stride=s) for xq, wq in zip(powers(x, w.shape[0]), w))
    if p["padding"] == "same":
        # Crop the full output to n*s: max(k-s,0)//2 before, the rest after (F.pad crops when negative
        # and appends zeros when the rest is negative, i.e. k < s).
        crops = []
        for dim in (3, 2):
            before = max(k - s, 0) // 2
            after = y.shape[dim] - before - x.shape[dim] * s
            crops += [-before, -after]
        y = F.pad(y, crops)
    b = bias_sum(t)
    return y if b is None else y + b.view(1, -1, 1, 1)


def crossentropy(p, target):
    """Keras categorical cross-entropy on probabilities, averaged over the batch."""
    clipped = torch.clamp(p, KERAS_EPSILON, 1 - KERAS_EPSILON)
    return -(target * torch.log(clipped)).sum(1).mean().reshape(1)


OPS = {
    "instance_norm": lambda t, p: F.instance_norm(t["x"], weight=t["gamma"], bias=t["beta"], eps=p["eps"]),
    "reflect_pad": lambda t, p: F.pad(t["x"], (p["pad"],) * 4, mode="reflect"),
    "global_max_pool": lambda t, p: F.adaptive_max_pool2d(t["x"], 1).flatten(1),
    "linear": lambda t, p: F.linear(t["x"], t["w"], t.get("b")),
    "softmax": lambda t, p: torch.softmax(t["x"], dim=1),
    "softmax_crossentropy": lambda t, p: crossentropy(torch.softmax(t["logits"], dim=1), t["target"]),
    "mse": lambda t, p: ((t["a"] - t["b"]) ** 2).mean().reshape(1),
    "mae": lambda t, p: (t["a"] - t["b"]).abs().mean().reshape(1),
    "oper_conv2d": oper_conv2d,
    "oper_conv_transpose2d": oper_conv_transpose2d,
}


def load(path, shape):
    return torch.from_numpy(np.fromfile(path, dtype="<f8").reshape(shape))


def save(path, tensor):
    tensor.detach().numpy().astype("<f8").tofile(path)


def run_case(directory, i, case):
    inputs = {}
    for spec in case["inputs"]:
        inputs[spec["name"]] = load(directory / f"{i}_{spec['name']}.f64", spec["shape"])
        inputs[spec["name"]].requires_grad_(spec["grad"])
    y = OPS[case["op"]](inputs, case["params"])
    if list(y.shape) != case["out_shape"]:
        raise ValueError(f"case {i} ({case['op']}): torch output {list(y.shape)}, expected {case['out_shape']}")
    weights = load(directory / f"{i}_R.f64", case["out_shape"])
    (y * weights).sum().backward()
    save(directory / f"{i}_out.f64", y)
    for spec in case["inputs"]:
        if spec["grad"]:
            save(directory / f"{i}_grad_{spec['name']}.f64", inputs[spec["name"]].grad)


def main():
    directory = Path(sys.argv[1])
    torch.set_default_dtype(torch.float64)
    manifest = json.loads((directory / "manifest.json").read_text())
    for i, case in enumerate(manifest["cases"]):
        run_case(directory, i, case)


if __name__ == "__main__":
    main()
