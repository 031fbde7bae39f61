// The op running on this thread, for the errors raised beneath it that cannot know which op they serve
// (a device allocation, a kernel launch). Every op of engine/ops.h opens one for its forward pass;
// backward passes are named by autograd. While an OpProfiler records (engine/profile.h), a scope is also
// one of its regions.
#pragma once

#include <string>

#include "engine/profile.h"

namespace r2c {

class Tensor;

class OpScope {
  public:
    OpScope(const char* op, const Tensor& input);
    ~OpScope();
    OpScope(const OpScope&) = delete;
    OpScope& operator=(const OpScope&) = delete;

  private:
    friend std::string current_op();
    std::string describe() const;  // "op on <input>"
    const char* op_;
    const Tensor& input_;
    const OpScope* outer_;
    profile_detail::Region region_;
};

// "instance_norm on float32[2,3,7,5] (cuda)" for the innermost open scope of this thread; "" outside.
std::string current_op();

}  // namespace r2c
