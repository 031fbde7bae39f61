// Tensors: dense, contiguous (NCHW for images), float32 or float64, on the CPU or a CUDA device.
// A Tensor is a cheap handle; copies share storage. Autograd state (requires_grad, the producing node,
// the accumulated gradient of a leaf) lives beside the storage in the TensorImpl.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/dtype.h"
#include "engine/error.h"

namespace r2c {

using Shape = std::vector<std::int64_t>;
std::string shape_str(const Shape& s);
std::int64_t shape_numel(const Shape& s);

class Rng;
struct Node;

// Owns one block of host or device memory.
class Storage {
  public:
    Storage(std::size_t bytes, Device device);
    ~Storage();
    Storage(const Storage&) = delete;
    Storage& operator=(const Storage&) = delete;
    void* data() const { return data_; }
    std::size_t bytes() const { return bytes_; }
    Device device() const { return device_; }

  private:
    void* data_ = nullptr;
    std::size_t bytes_ = 0;
    Device device_;
};

struct TensorImpl {
    std::shared_ptr<Storage> storage;
    Shape shape;
    DType dtype = DType::F32;
    Device device = Device::CPU;
    bool requires_grad = false;
    std::shared_ptr<Node> grad_fn;     // set on tensors produced by a recorded op
    std::shared_ptr<TensorImpl> grad;  // accumulated gradient (leaves only)
};

class Tensor {
  public:
    Tensor() = default;
    explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

    // Factories. Contents of empty() are unspecified.
    static Tensor empty(const Shape& shape, DType dtype = DType::F32, Device device = Device::CPU);
    static Tensor zeros(const Shape& shape, DType dtype = DType::F32, Device device = Device::CPU);
    static Tensor full(const Shape& shape, double value, DType dtype = DType::F32,
                       Device device = Device::CPU);
    static Tensor from_vector(const std::vector<double>& values, const Shape& shape, DType dtype = DType::F32,
                              Device device = Device::CPU);
    static Tensor uniform(const Shape& shape, double lo, double hi, Rng& rng, DType dtype = DType::F32,
                          Device device = Device::CPU);
    static Tensor normal(const Shape& shape, double mean, double stddev, Rng& rng, DType dtype = DType::F32,
                         Device device = Device::CPU);

    bool defined() const { return impl_ != nullptr; }
    const Shape& shape() const { return impl().shape; }
    std::int64_t dim(int i) const;
    int ndim() const { return static_cast<int>(impl().shape.size()); }
    std::int64_t numel() const { return shape_numel(impl().shape); }
    DType dtype() const { return impl().dtype; }
    Device device() const { return impl().device; }
    std::size_t nbytes() const { return static_cast<std::size_t>(numel()) * dtype_size(dtype()); }
    std::string str() const;  // e.g. "float32[2,3,8,8] cpu"

    // Element access; T must match dtype() and the tensor must be on the CPU (checked).
    template <typename T>
    T* data();
    template <typename T>
    const T* data() const;
    void* raw_data() const { return impl().storage->data(); }

    Tensor to(Device device) const;
    Tensor to(DType dtype) const;
    Tensor clone() const;
    // Same storage and shape, no autograd history: what an op saves for its backward pass.
    Tensor detach() const;
    // Same storage, another shape with the same number of elements (no autograd history).
    Tensor view(const Shape& shape) const;
    std::vector<double> to_vector() const;
    double item() const;                // the single element of a one-element tensor
    void copy_from(const Tensor& src);  // same shape and dtype; any devices
    // Copy of item i along the first dimension, keeping a leading dimension of 1 (no autograd history).
    Tensor batch_item(std::int64_t i) const;
    // Copy of items [begin, begin + count) along the first dimension (no autograd history).
    Tensor batch_range(std::int64_t begin, std::int64_t count) const;
    // Overwrites items [begin, begin + items.dim(0)) along the first dimension with `items`, whose other
    // dimensions match.
    void set_batch_range(std::int64_t begin, const Tensor& items);
    // Overwrites item i along the first dimension with `item` ([1, ...] or the item's own shape).
    void set_batch_item(std::int64_t i, const Tensor& item);

    // Autograd.
    bool requires_grad() const { return impl().requires_grad; }
    Tensor& set_requires_grad(bool on);
    bool is_leaf() const { return impl().grad_fn == nullptr; }
    const std::shared_ptr<Node>& grad_fn() const { return impl().grad_fn; }
    Tensor grad() const;    // undefined when no gradient has been accumulated
    void zero_grad();       // drops the accumulated gradient
    void backward() const;  // from a one-element loss

    TensorImpl& impl() const;
    const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
    bool same(const Tensor& o) const { return impl_ == o.impl_; }

  private:
    std::shared_ptr<TensorImpl> impl_;
};

// Concatenation along the first dimension (no autograd history); all parts share the remaining shape. On
// CUDA one kernel per 32 parts does the copies (cuda::gather).
Tensor cat_batch(const std::vector<Tensor>& parts);

}  // namespace r2c
