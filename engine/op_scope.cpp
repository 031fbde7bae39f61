#include "engine/op_scope.h"

#include "engine/profile.h"
#include "engine/tensor.h"

namespace r2c {

namespace {
thread_local const OpScope* tl_scope = nullptr;
}  // namespace

OpScope::OpScope(const char* op, const Tensor& input)
    : op_(op), input_(input), outer_(tl_scope), profiled_(profile_detail::recording()) {
    tl_scope = this;
    if (profiled_) profile_detail::enter(current_op);
}

OpScope::~OpScope() {
    if (profiled_) profile_detail::leave();
    tl_scope = outer_;
}

std::string current_op() {
    if (tl_scope == nullptr) return "";
    const Tensor& x = tl_scope->input_;
    return x.defined() ? std::string(tl_scope->op_) + " on " + x.str() : tl_scope->op_;
}

}  // namespace r2c
