// Reverse-mode automatic differentiation.
//
// Every op that receives an input requiring a gradient (while grad mode is on) records a Node on its
// output. backward(loss) orders the recorded nodes topologically (the tape), runs each node's backward
// function exactly once with the sum of the gradients that reached it, accumulates into the .grad of
// leaves (so a parameter used several times in one step gets the sum), and frees each node's saved
// tensors as soon as that node has run.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace r2c {

// Where a gradient flows: into another node, or into the .grad of a leaf tensor. Both null: nowhere.
struct Edge {
    std::shared_ptr<Node> fn;
    std::shared_ptr<TensorImpl> leaf;
};

struct Node {
    using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_out)>;

    std::string name;        // the op, for error messages
    std::vector<Edge> next;  // one per input of the op, in order
    BackwardFn backward_fn;  // returns one gradient per input (an undefined Tensor for "none")
    Shape out_shape;         // shape of the op's output, to check incoming gradients
};

// Grad mode: on by default; NoGradGuard turns it off for a scope (inference, optimiser updates, backward).
bool grad_enabled();
class NoGradGuard {
  public:
    NoGradGuard();
    ~NoGradGuard();
    NoGradGuard(const NoGradGuard&) = delete;
    NoGradGuard& operator=(const NoGradGuard&) = delete;

  private:
    bool prev_;
};

// True when an op given these inputs must record a node.
bool needs_grad(const std::vector<Tensor>& inputs);

// Records `out` as produced by op `name` from `inputs` when needs_grad(inputs); `fn` receives the gradient
// of the loss with respect to `out` and returns one gradient per input. It must capture saved tensors
// through detach() (never `out` itself). Returns `out`.
Tensor record(Tensor out, const char* name, const std::vector<Tensor>& inputs, Node::BackwardFn fn);

// Runs reverse mode from a one-element tensor (seed gradient 1).
void backward(const Tensor& root);

// The leaf tensors requiring a gradient that `root` depends on through recorded ops (e.g. the parameters
// a network's class output uses).
std::vector<std::shared_ptr<TensorImpl>> reachable_leaves(const Tensor& root);

// Adds src into dst elementwise (same shape, dtype, device); no autograd.
void accumulate(Tensor& dst, const Tensor& src);

}  // namespace r2c
