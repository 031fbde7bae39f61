"""PyTorch peer of benchmarks/bench_oper_conv_cpu.cpp: one operational layer, forward + backward, on the CPU.

The fastest stock-PyTorch form of sum_q conv(x^q, W_q) + b_q: the powers concatenated along channels and
one conv2d with Q*Cin input channels (weights kept as one [Cout, Q*Cin, k, k] leaf, the Q biases as one
[Q, Cout] leaf). Prints one JSON object: {"torch", "threads", "results": [{"q", "ms", "cpu_ms", "reps"}]},
where ms and cpu_ms are the medians over the timed repetitions of the wall-clock and process CPU time of
forward + backward (gradients for x, w and b).
"""

import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F


def layer_step(x, w, b, q_count, pad):
    powers = [x] + [x**q for q in range(2, q_count + 1)]
    y = F.conv2d(torch.cat(powers, dim=1), w, b.sum(0), padding=pad)
    y.sum().backward()


def time_layer(q_count, args):
    gen = torch.Generator().manual_seed(q_count)
    shape = (1, args.channels, args.size, args.size)
    x = (torch.rand(shape, generator=gen) * 2 - 1).requires_grad_()
    limit = (6 / (args.channels * 9 * 2)) ** 0.5  # Glorot-uniform for a 3x3 kernel, Cin = Cout
    w = ((torch.rand(args.channels, q_count * args.channels, 3, 3, generator=gen) * 2 - 1) * limit)
    w.requires_grad_()
    b = torch.zeros(q_count, args.channels, requires_grad=True)
    wall, cpu = [], []
    for rep in range(args.warmup + args.reps):
        for t in (x, w, b):
            t.grad = None
        start, start_cpu = time.perf_counter(), time.process_time()
        layer_step(x, w, b, q_count, 1)
        if rep >= args.warmup:
            wall.append((time.perf_counter() - start) * 1e3)
            cpu.append((time.process_time() - start_cpu) * 1e3)
    return {"q": q_count, "ms": statistics.median(wall), "cpu_ms": statistics.median(cpu), "reps": args.reps}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--q", default="1,3,5", help="comma-separated Q values")
    parser.add_argument("--channels", type=int, default=128)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--reps", type=int, default=7)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    results = [time_layer(int(q), args) for q in args.q.split(",")]
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "results": results}))


if __name__ == "__main__":
    main()
