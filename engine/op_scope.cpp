#include "engine/op_scope.h"

#include "engine/tensor.h"

namespace r2c {

namespace {
thread_local const OpScope* tl_scope = nullptr;
}  // namespace

OpScope::OpScope(const char* op, const Tensor& input) : op_(op), input_(input), outer_(tl_scope) {
    tl_scope = this;
}

OpScope::~OpScope() {
    tl_scope = outer_;
}

std::string current_op() {
    if (tl_scope == nullptr) return "";
    const Tensor& x = tl_scope->input_;
    return x.defined() ? std::string(tl_scope->op_) + " on " + x.str() : tl_scope->op_;
}

}  // namespace r2c
