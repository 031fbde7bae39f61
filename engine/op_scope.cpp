#include "engine/op_scope.h"

#include "engine/tensor.h"

namespace r2c {

namespace {
thread_local const OpScope* tl_scope = nullptr;
}  // namespace

OpScope::OpScope(const char* op, const Tensor& input)
    : op_(op), input_(input), outer_(tl_scope), region_([this] { return describe(); }) {
    tl_scope = this;
}

OpScope::~OpScope() {
    tl_scope = outer_;
}

std::string OpScope::describe() const {
    return input_.defined() ? std::string(op_) + " on " + input_.str() : op_;
}

std::string current_op() {
    return tl_scope == nullptr ? "" : tl_scope->describe();
}

}  // namespace r2c
