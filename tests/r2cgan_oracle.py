"""The PyTorch peer of the benchmarks against the engine, for tests/test_torch_oracle.cpp: one iteration of
benchmarks/r2cgan_torch.py's Step, in float64 on the CPU, from the engine's weights and batch.

Usage: r2cgan_oracle.py DIR. DIR/manifest.json is {"method", "q", "networks": {"G" | "F" | "D_A" | "D_B":
[{"name", "shape"}]}, "inputs": [{"name": "A" | "B" | "cA" | "cB", "shape"}]}; each tensor is the file
DIR/<network>.<name>.f64 or DIR/<input>.f64, raw little-endian float64 in the engine's layout. The script
loads them into the peer's networks, runs Step once and writes DIR/losses.f64 (the twelve terms of L_G,
L_G, the four terms of L_D, L_D, in Step's order) and, for every parameter, DIR/grad.<network>.<name>.f64:
its gradient (of L_G for G and F, of L_D for D_A and D_B) in the engine's layout. It exits with an error
naming the parameter when the engine's and the peer's parameters do not correspond one to one, with the
same number of elements.
"""

import contextlib
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import r2cgan_torch as peer  # noqa: E402

# The engine's name of a peer layer (models/generators.cpp, models/discriminators.cpp), by the layer's path
# in the peer's OpGenerator or ConvCompGenerator.
LAYERS = {
    "enc": "enc.conv",
    "enc_norm": "enc.norm",
    "res_conv1": "res.conv1",
    "res_norm1": "res.norm1",
    "res_conv2": "res.conv2",
    "res_norm2": "res.norm2",
    "block.conv1": "res.conv1",
    "block.norm1": "res.norm1",
    "block.conv2": "res.conv2",
    "block.norm2": "res.norm2",
    "head.dense": "head.dense",
    "dec": "dec.convt",
}
PARAMS = {"weight": "w", "bias": "b", "gamma": "gamma", "beta": "beta"}


def engine_layer(net, path):
    parts = path.split(".")
    if isinstance(net, peer.Discriminator):  # convs.i, norms.i
        return f"{'conv' if parts[0] == 'convs' else 'norm'}{int(parts[1]) + 1}"
    if isinstance(net, peer.ConvGenerator):
        if parts[0] == "enc":  # conv, norm, conv, norm, conv, norm
            i = int(parts[1])
            return f"enc.{'conv' if i % 2 == 0 else 'norm'}{i // 2}"
        if parts[0] == "blocks":
            return f"res{parts[1]}.{parts[2]}"
        if parts[0] == "dec":  # transposed conv, norm, transposed conv, norm
            i = int(parts[1])
            return f"dec.{'convt' if i % 2 == 0 else 'norm'}{i // 2 + 1}"
        if path == "out":
            return "dec.conv"
    if path in LAYERS:
        return LAYERS[path]
    sys.exit(f"r2cgan_oracle.py: no engine layer for the peer's {type(net).__name__}.{path}")


def layouts(layer, pname, shape):
    """(engine -> peer, peer -> engine) of one parameter. The engine's operational weights are
    [Q, Cout, Cin, k, k] (transposed: [Q, Cin, Cout, k, k]); the peer's one [Cout, Q*Cin, k, k] (transposed:
    [Q*Cin, Cout, k, k]) with the powers' channels in order of q. Everything else has one layout."""
    if isinstance(layer, peer.Oper2d) and pname == "weight":
        q, cout, cin, k = layer.q, shape[0], shape[1] // layer.q, shape[2]
        return (
            lambda e: e.permute(1, 0, 2, 3, 4).reshape(shape),
            lambda p: p.reshape(cout, q, cin, k, k).permute(1, 0, 2, 3, 4),
        )
    return (lambda e: e.reshape(shape), lambda p: p)


def read(path, shape):
    return torch.from_numpy(np.fromfile(path, dtype="<f8").reshape(shape))


def write(path, t):
    t.detach().contiguous().numpy().astype("<f8").tofile(path)


def main():
    folder = Path(sys.argv[1])
    manifest = json.loads((folder / "manifest.json").read_text())
    step = peer.Step(manifest["method"], manifest["q"], torch.device("cpu"), False, contextlib.nullcontext)
    # The updates are not compared (PyTorch's Adam adds epsilon after the bias correction, Keras's before),
    # and neither sub-step reads the other's: their work is left out.
    step.opt_g.step = step.opt_d.step = lambda: None
    nets = {"G": step.G, "F": step.F, "D_A": step.D_A, "D_B": step.D_B}
    back = {}  # (network, engine name) -> (peer parameter, peer -> engine)
    for key, net in nets.items():
        engine = {p["name"]: p["shape"] for p in manifest["networks"][key]}
        for path, layer in net.named_modules():
            for pname, param in layer.named_parameters(recurse=False):
                name = f"{engine_layer(net, path)}.{PARAMS[pname]}"
                if name not in engine:
                    sys.exit(f"r2cgan_oracle.py: no {key}.{name} in the engine (the peer's {path}.{pname})")
                shape = engine.pop(name)
                if int(np.prod(shape)) != param.numel():
                    theirs = list(param.shape)
                    sys.exit(f"r2cgan_oracle.py: {key}.{name} is {shape} in the engine, {theirs} in the peer")
                to_peer, to_engine = layouts(layer, pname, param.shape)
                with torch.no_grad():
                    param.data = to_peer(read(folder / f"{key}.{name}.f64", shape)).contiguous()
                back[(key, name)] = (param, to_engine)
        if engine:
            sys.exit(f"r2cgan_oracle.py: the peer's {key} has no {', '.join(sorted(engine))}")
    inputs = {i["name"]: read(folder / f"{i['name']}.f64", i["shape"]) for i in manifest["inputs"]}
    losses = step(inputs["A"], inputs["B"], inputs["cA"], inputs["cB"])
    write(folder / "losses.f64", torch.tensor(losses, dtype=torch.float64))
    for (key, name), (param, to_engine) in back.items():
        if param.grad is None:
            sys.exit(f"r2cgan_oracle.py: the peer's step left {key}.{name} without a gradient")
        write(folder / f"grad.{key}.{name}.f64", to_engine(param.grad))


if __name__ == "__main__":
    main()
