#include "engine/autograd.h"

#include <unordered_map>
#include <unordered_set>

#include "engine/device.h"
#include "engine/profile.h"

namespace r2c {

namespace {
thread_local bool g_grad_enabled = true;
}

bool grad_enabled() {
    return g_grad_enabled;
}
NoGradGuard::NoGradGuard() : prev_(g_grad_enabled) {
    g_grad_enabled = false;
}
NoGradGuard::~NoGradGuard() {
    g_grad_enabled = prev_;
}

bool needs_grad(const std::vector<Tensor>& inputs) {
    if (!g_grad_enabled) return false;
    for (const Tensor& t : inputs)
        if (t.defined() && t.requires_grad()) return true;
    return false;
}

Tensor record(Tensor out, const char* name, const std::vector<Tensor>& inputs, Node::BackwardFn fn) {
    if (!needs_grad(inputs)) return out;
    auto node = std::make_shared<Node>();
    node->name = name;
    node->backward_fn = std::move(fn);
    node->out_shape = out.shape();
    for (const Tensor& t : inputs) {
        Edge e;
        if (t.defined() && t.requires_grad()) {
            if (t.grad_fn())
                e.fn = t.grad_fn();
            else
                e.leaf = t.impl_ptr();
        }
        node->next.push_back(std::move(e));
    }
    out.impl().grad_fn = std::move(node);
    out.impl().requires_grad = true;
    return out;
}

void accumulate(Tensor& dst, const Tensor& src) {
    R2C_CHECK(dst.shape() == src.shape() && dst.dtype() == src.dtype() && dst.device() == src.device(),
              "gradient accumulation: ", dst.str(), " += ", src.str());
    const auto n = static_cast<std::size_t>(dst.numel());
    if (dst.device() == Device::CUDA) {
        cuda::axpy(dst.raw_data(), src.raw_data(), n, 1.0, dst.dtype());
    } else if (dst.dtype() == DType::F32) {
        float* d = dst.data<float>();
        const float* s = src.data<float>();
        for (std::size_t i = 0; i < n; ++i)
            d[i] += s[i];
    } else {
        double* d = dst.data<double>();
        const double* s = src.data<double>();
        for (std::size_t i = 0; i < n; ++i)
            d[i] += s[i];
    }
}

namespace {

// Whether t is the one handle on its storage: a gradient nothing else holds, which can be taken as it is or
// added into in place.
bool sole(const Tensor& t) {
    return t.impl_ptr().use_count() == 1 && t.impl().storage.use_count() == 1;
}

// Adds g into a leaf's gradient. The first one is taken as it is where nothing else holds it (a backward
// pass's own output), and copied otherwise, since it may be shared with other slots or saved tensors.
void add_into(Tensor& slot, const Tensor& g) {
    if (!slot.defined())
        slot = sole(g) ? g : g.clone();
    else
        accumulate(slot, g);
}

}  // namespace

std::vector<std::shared_ptr<TensorImpl>> reachable_leaves(const Tensor& root) {
    std::vector<std::shared_ptr<TensorImpl>> leaves;
    if (!root.defined() || !root.requires_grad()) return leaves;
    if (!root.grad_fn()) return {root.impl_ptr()};
    std::unordered_set<Node*> seen{root.grad_fn().get()};
    std::unordered_set<TensorImpl*> seen_leaves;
    std::vector<Node*> stack{root.grad_fn().get()};
    while (!stack.empty()) {
        Node* node = stack.back();
        stack.pop_back();
        for (const Edge& e : node->next) {
            if (e.fn && seen.insert(e.fn.get()).second) stack.push_back(e.fn.get());
            if (e.leaf && seen_leaves.insert(e.leaf.get()).second) leaves.push_back(e.leaf);
        }
    }
    return leaves;
}

void backward(const Tensor& root) {
    R2C_CHECK(root.defined() && root.numel() == 1, "backward: the root must hold one element, got ",
              root.str());
    R2C_CHECK(root.requires_grad(), "backward: the root ", root.str(), " does not require a gradient");
    NoGradGuard no_grad;
    const Tensor seed = Tensor::full(root.shape(), 1.0, root.dtype(), root.device());
    if (!root.grad_fn()) {  // a leaf loss: its own gradient is 1
        Tensor g = root.grad();
        add_into(g, seed);
        root.impl().grad = g.impl_ptr();
        return;
    }

    // Topological order by iterative depth-first search (post-order, then reversed).
    std::vector<Node*> order;
    std::unordered_set<Node*> seen;
    std::vector<std::pair<Node*, std::size_t>> stack{{root.grad_fn().get(), 0}};
    seen.insert(root.grad_fn().get());
    while (!stack.empty()) {
        auto& [node, i] = stack.back();
        if (i < node->next.size()) {
            Node* child = node->next[i++].fn.get();
            if (child && seen.insert(child).second) stack.emplace_back(child, 0);
        } else {
            order.push_back(node);
            stack.pop_back();
        }
    }

    std::unordered_map<Node*, Tensor> grads;
    grads[root.grad_fn().get()] = seed;
    for (auto it = order.rbegin(); it != order.rend(); ++it) {
        Node* node = *it;
        auto gi = grads.find(node);
        if (gi == grads.end()) continue;  // no gradient reached this node
        const Tensor g = std::move(gi->second);
        grads.erase(gi);
        // An error in a node's backward pass, or in passing its gradients on, names the op.
        const auto run_node = [&] {
            R2C_CHECK(node->backward_fn, "backward through '", node->name,
                      "' a second time: its saved tensors were freed by the first backward");
            R2C_CHECK(g.shape() == node->out_shape, "backward: '", node->name, "' got a gradient ", g.str(),
                      " for an output of shape ", shape_str(node->out_shape));
            std::vector<Tensor> in_grads = node->backward_fn(g);
            node->backward_fn = nullptr;  // frees the saved tensors now
            R2C_CHECK(in_grads.size() == node->next.size(), "backward: '", node->name, "' returned ",
                      in_grads.size(), " gradients for ", node->next.size(), " inputs");
            for (std::size_t k = 0; k < in_grads.size(); ++k) {
                const Edge& e = node->next[k];
                const Tensor& gk = in_grads[k];
                if (!gk.defined()) continue;
                if (e.fn) {
                    // In place only where nothing else holds the slot's tensor: one backward_fn may hand
                    // the same tensor to several inputs.
                    Tensor& slot = grads[e.fn.get()];
                    if (!slot.defined()) {
                        slot = gk;
                    } else if (sole(slot)) {
                        accumulate(slot, gk);
                    } else {
                        Tensor sum = slot.clone();
                        accumulate(sum, gk);
                        slot = sum;
                    }
                } else if (e.leaf) {
                    R2C_CHECK(gk.shape() == e.leaf->shape, "backward: '", node->name, "' gradient ", gk.str(),
                              " for a leaf of shape ", shape_str(e.leaf->shape));
                    Tensor acc = e.leaf->grad ? Tensor(e.leaf->grad) : Tensor();
                    add_into(acc, gk);
                    e.leaf->grad = acc.impl_ptr();
                }
            }
        };
        // For a profiler, the node's backward pass and the passing on of its gradients are one region.
        const profile_detail::Region region([&] { return node->name + " backward on " + g.str(); });
        try {
            run_node();
        } catch (const Error& e) {
            throw Error(detail::concat("backward of '", node->name, "' (output ", shape_str(node->out_shape),
                                       ", ", g.device() == Device::CUDA ? "cuda" : "cpu", "): ", e.what()));
        }
    }
}

}  // namespace r2c
