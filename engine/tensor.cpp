#include "engine/tensor.h"

#include <cstring>
#include <sstream>

#include "engine/autograd.h"
#include "engine/device.h"
#include "engine/op_scope.h"
#include "engine/rng.h"

namespace r2c {

std::string shape_str(const Shape& s) {
    std::ostringstream o;
    o << "[";
    for (std::size_t i = 0; i < s.size(); ++i)
        o << (i ? "," : "") << s[i];
    o << "]";
    return o.str();
}

std::int64_t shape_numel(const Shape& s) {
    std::int64_t n = 1;
    for (auto d : s)
        n *= d;
    return n;
}

Storage::Storage(std::size_t bytes, Device device) : bytes_(bytes), device_(device) {
    if (device == Device::CPU) {
        data_ = host_allocate(bytes);
    } else {
        data_ = cuda::allocator().allocate(bytes);
        if (data_ == nullptr) {
            const AllocatorStats st = cuda::allocator().stats();
            const std::string op = current_op();
            throw Error(detail::concat(op.empty() ? "" : op + ": ", "out of device memory allocating ",
                                       bytes >> 20, " MiB (", bytes, " bytes) with ", st.bytes_in_use >> 20,
                                       " MiB in use; try a smaller batch size or crop size"));
        }
    }
}

Storage::~Storage() {
    if (device_ == Device::CPU)
        host_free(data_);
    else
        cuda::allocator().release(data_);
}

TensorImpl& Tensor::impl() const {
    R2C_CHECK(impl_ != nullptr, "use of an undefined tensor");
    return *impl_;
}

std::int64_t Tensor::dim(int i) const {
    const int n = ndim();
    R2C_CHECK(i >= -n && i < n, "Tensor::dim(", i, ") on a tensor of shape ", shape_str(shape()));
    return shape()[i < 0 ? i + n : i];
}

std::string Tensor::str() const {
    if (!defined()) return "undefined";
    return detail::concat(dtype_name(dtype()), shape_str(shape()), " ", device_name(device()));
}

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
    for (auto d : shape)
        R2C_CHECK(d >= 0, "Tensor::empty: negative dimension in shape ", shape_str(shape));
    auto impl = std::make_shared<TensorImpl>();
    impl->shape = shape;
    impl->dtype = dtype;
    impl->device = device;
    impl->storage =
        std::make_shared<Storage>(static_cast<std::size_t>(shape_numel(shape)) * dtype_size(dtype), device);
    return Tensor(std::move(impl));
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
    return full(shape, 0.0, dtype, device);
}

Tensor Tensor::full(const Shape& shape, double value, DType dtype, Device device) {
    Tensor t = empty(shape, dtype, device);
    const auto n = static_cast<std::size_t>(t.numel());
    if (device == Device::CUDA) {
        cuda::fill(t.raw_data(), n, value, dtype);
    } else if (dtype == DType::F32) {
        float* p = t.data<float>();
        for (std::size_t i = 0; i < n; ++i)
            p[i] = static_cast<float>(value);
    } else {
        double* p = t.data<double>();
        for (std::size_t i = 0; i < n; ++i)
            p[i] = value;
    }
    return t;
}

Tensor Tensor::from_vector(const std::vector<double>& values, const Shape& shape, DType dtype,
                           Device device) {
    R2C_CHECK(static_cast<std::int64_t>(values.size()) == shape_numel(shape),
              "Tensor::from_vector: ", values.size(), " values for shape ", shape_str(shape));
    Tensor host = empty(shape, dtype, Device::CPU);
    if (dtype == DType::F32) {
        float* p = host.data<float>();
        for (std::size_t i = 0; i < values.size(); ++i)
            p[i] = static_cast<float>(values[i]);
    } else {
        std::memcpy(host.raw_data(), values.data(), values.size() * sizeof(double));
    }
    return device == Device::CPU ? host : host.to(device);
}

Tensor Tensor::uniform(const Shape& shape, double lo, double hi, Rng& rng, DType dtype, Device device) {
    std::vector<double> v(static_cast<std::size_t>(shape_numel(shape)));
    for (auto& x : v)
        x = rng.uniform(lo, hi);
    return from_vector(v, shape, dtype, device);
}

Tensor Tensor::normal(const Shape& shape, double mean, double stddev, Rng& rng, DType dtype, Device device) {
    std::vector<double> v(static_cast<std::size_t>(shape_numel(shape)));
    for (auto& x : v)
        x = mean + stddev * rng.normal();
    return from_vector(v, shape, dtype, device);
}

template <typename T>
T* Tensor::data() {
    R2C_CHECK(dtype() == DTypeOf<T>::value, "Tensor::data: tensor is ", str(), ", asked for ",
              dtype_name(DTypeOf<T>::value));
    R2C_CHECK(device() == Device::CPU, "Tensor::data: tensor ", str(), " is not on the CPU");
    return static_cast<T*>(raw_data());
}

template <typename T>
const T* Tensor::data() const {
    return const_cast<Tensor*>(this)->data<T>();
}

template float* Tensor::data<float>();
template double* Tensor::data<double>();
template const float* Tensor::data<float>() const;
template const double* Tensor::data<double>() const;

namespace {

// Copies `bytes` from src (at src_offset) to dst (at dst_offset), across devices as needed.
void copy_bytes(const Tensor& dst, std::size_t dst_offset, const Tensor& src, std::size_t src_offset,
                std::size_t bytes) {
    char* d = static_cast<char*>(dst.raw_data()) + dst_offset;
    const char* s = static_cast<const char*>(src.raw_data()) + src_offset;
    if (dst.device() == Device::CPU && src.device() == Device::CPU)
        std::memcpy(d, s, bytes);
    else
        cuda::copy(d, s, bytes,
                   dst.device() == Device::CPU   ? cuda::CopyKind::DeviceToHost
                   : src.device() == Device::CPU ? cuda::CopyKind::HostToDevice
                                                 : cuda::CopyKind::DeviceToDevice);
}

// The bytes of one item along the first dimension of t (which has one).
std::size_t item_bytes(const Tensor& t) {
    return t.dim(0) == 0 ? 0 : t.nbytes() / static_cast<std::size_t>(t.dim(0));
}

}  // namespace

void Tensor::copy_from(const Tensor& src) {
    R2C_CHECK(shape() == src.shape() && dtype() == src.dtype(), "Tensor::copy_from: destination ", str(),
              ", source ", src.str());
    copy_bytes(*this, 0, src, 0, nbytes());
}

Tensor Tensor::batch_item(std::int64_t i) const {
    R2C_CHECK(ndim() >= 1 && i >= 0 && i < dim(0), "Tensor::batch_item(", i, ") of ", str());
    return batch_range(i, 1);
}

Tensor Tensor::batch_range(std::int64_t begin, std::int64_t count) const {
    R2C_CHECK(ndim() >= 1 && begin >= 0 && count >= 0 && count <= dim(0) - begin, "Tensor::batch_range(",
              begin, ", ", count, ") of ", str());
    Shape s = shape();
    s[0] = count;
    Tensor out = empty(s, dtype(), device());
    copy_bytes(out, 0, *this, static_cast<std::size_t>(begin) * item_bytes(*this), out.nbytes());
    return out;
}

void Tensor::set_batch_range(std::int64_t begin, const Tensor& items) {
    Shape s = items.shape();
    const bool fits = ndim() >= 1 && items.ndim() == ndim() && items.dtype() == dtype() && begin >= 0 &&
                      items.dim(0) <= dim(0) - begin;
    if (fits) s[0] = dim(0);
    R2C_CHECK(fits && s == shape(), "Tensor::set_batch_range(", begin, "): items ", items.str(),
              " do not fit ", str());
    copy_bytes(*this, static_cast<std::size_t>(begin) * item_bytes(*this), items, 0, items.nbytes());
}

void Tensor::set_batch_item(std::int64_t i, const Tensor& item) {
    R2C_CHECK(ndim() >= 1 && i >= 0 && i < dim(0), "Tensor::set_batch_item(", i, ") of ", str());
    const std::size_t bytes = item_bytes(*this);
    R2C_CHECK(item.dtype() == dtype() && item.nbytes() == bytes, "Tensor::set_batch_item: item ", item.str(),
              " does not fit one item of ", str());
    copy_bytes(*this, static_cast<std::size_t>(i) * bytes, item, 0, bytes);
}

Tensor cat_batch(const std::vector<Tensor>& parts) {
    R2C_CHECK(!parts.empty(), "cat_batch: no tensors");
    Shape s = parts[0].shape();
    R2C_CHECK(!s.empty(), "cat_batch: tensors need a first dimension");
    std::int64_t n = 0;
    for (const Tensor& p : parts) {
        Shape rest = p.shape();
        R2C_CHECK(rest.size() == s.size() && p.dtype() == parts[0].dtype() && p.device() == parts[0].device(),
                  "cat_batch: ", p.str(), " does not match ", parts[0].str());
        rest[0] = s[0];
        R2C_CHECK(rest == s, "cat_batch: ", p.str(), " does not match ", parts[0].str());
        n += p.dim(0);
    }
    s[0] = n;
    Tensor out = Tensor::empty(s, parts[0].dtype(), parts[0].device());
    if (out.device() == Device::CUDA) {
        std::vector<const void*> data;
        std::vector<std::size_t> bytes;
        for (const Tensor& p : parts) {
            data.push_back(p.raw_data());
            bytes.push_back(p.nbytes());
        }
        cuda::gather(out.raw_data(), data, bytes);
        return out;
    }
    std::size_t offset = 0;
    for (const Tensor& p : parts) {
        copy_bytes(out, offset, p, 0, p.nbytes());
        offset += p.nbytes();
    }
    return out;
}

Tensor Tensor::to(Device dev) const {
    if (dev == device()) return *this;
    Tensor out = empty(shape(), dtype(), dev);
    out.copy_from(*this);
    return out;
}

Tensor Tensor::to(DType dt) const {
    if (dt == dtype()) return *this;
    R2C_CHECK(device() == Device::CPU, "Tensor::to(dtype): conversion runs on the CPU; tensor is ", str());
    Tensor out = empty(shape(), dt, Device::CPU);
    const auto n = static_cast<std::size_t>(numel());
    if (dt == DType::F64) {
        const float* s = data<float>();
        double* d = out.data<double>();
        for (std::size_t i = 0; i < n; ++i)
            d[i] = s[i];
    } else {
        const double* s = data<double>();
        float* d = out.data<float>();
        for (std::size_t i = 0; i < n; ++i)
            d[i] = static_cast<float>(s[i]);
    }
    return out;
}

Tensor Tensor::clone() const {
    Tensor out = empty(shape(), dtype(), device());
    out.copy_from(*this);
    return out;
}

Tensor Tensor::detach() const {
    auto impl = std::make_shared<TensorImpl>();
    impl->storage = impl_->storage;
    impl->shape = impl_->shape;
    impl->dtype = impl_->dtype;
    impl->device = impl_->device;
    return Tensor(std::move(impl));
}

Tensor Tensor::view(const Shape& s) const {
    R2C_CHECK(shape_numel(s) == numel(), "Tensor::view: cannot view ", str(), " as ", shape_str(s));
    Tensor t = detach();
    t.impl().shape = s;
    return t;
}

std::vector<double> Tensor::to_vector() const {
    const Tensor host = to(Device::CPU).to(DType::F64);
    const double* p = host.data<double>();
    return std::vector<double>(p, p + host.numel());
}

double Tensor::item() const {
    R2C_CHECK(numel() == 1, "Tensor::item: tensor ", str(), " does not hold exactly one element");
    return to_vector()[0];
}

Tensor& Tensor::set_requires_grad(bool on) {
    R2C_CHECK(is_leaf() || on, "set_requires_grad(false) on a non-leaf tensor; use detach()");
    impl().requires_grad = on;
    return *this;
}

Tensor Tensor::grad() const {
    return impl().grad ? Tensor(impl().grad) : Tensor();
}

void Tensor::zero_grad() {
    impl().grad.reset();
}

void Tensor::backward() const {
    r2c::backward(*this);
}

}  // namespace r2c
