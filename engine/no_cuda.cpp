// The CUDA entry points of a build without CUDA: every call that needs a device says so.
#include "engine/device.h"
#include "engine/error.h"
#include "engine/graph.h"

namespace r2c::cuda {

namespace {
[[noreturn]] void unavailable(const char* what) {
    throw Error(std::string(what) +
                ": this build of r2c has no CUDA support (configure with R2C_WITH_CUDA=ON)");
}
}  // namespace

bool compiled() {
    return false;
}
bool available() {
    return false;
}
std::string describe() {
    return "not compiled in";
}
CachingAllocator& allocator() {
    unavailable("cuda::allocator");
}
void* stream() {
    unavailable("cuda::stream");
}
void copy(void*, const void*, std::size_t, CopyKind) {
    unavailable("cuda::copy");
}
void gather(void*, const std::vector<const void*>&, const std::vector<std::size_t>&) {
    unavailable("cuda::gather");
}
std::uint64_t host_waits() {
    return 0;
}
std::uint64_t kernel_launches() {
    return 0;
}
std::uint64_t memory_operations() {
    return 0;
}
void fill(void*, std::size_t, double, DType) {
    unavailable("cuda::fill");
}
Uploader::Uploader(int) : state_(nullptr) {
    unavailable("cuda::Uploader");
}
Uploader::~Uploader() = default;
void Uploader::upload(int, const std::vector<Part>&) {
    unavailable("cuda::Uploader::upload");
}
void Uploader::acquire(int) {
    unavailable("cuda::Uploader::acquire");
}
void axpy(void*, const void*, std::size_t, double, DType) {
    unavailable("cuda::axpy");
}

PinnedBuffer::PinnedBuffer(std::size_t) {
    unavailable("cuda::PinnedBuffer");
}
PinnedBuffer::~PinnedBuffer() = default;
void PinnedBuffer::upload(void*) const {
    unavailable("cuda::PinnedBuffer::upload");
}

TimingEvent::TimingEvent() {
    unavailable("cuda::TimingEvent");
}
TimingEvent::~TimingEvent() = default;
void TimingEvent::record() {
    unavailable("cuda::TimingEvent::record");
}
double TimingEvent::ms_since(const TimingEvent&) const {
    unavailable("cuda::TimingEvent::ms_since");
}

struct GraphSequence::State {};
GraphSequence::GraphSequence() {
    unavailable("cuda::GraphSequence");
}
GraphSequence::~GraphSequence() = default;
void GraphSequence::capture(const std::function<void()>&) {
    unavailable("cuda::GraphSequence::capture");
}
int GraphSequence::size() const {
    return 0;
}
void GraphSequence::replay(int) {
    unavailable("cuda::GraphSequence::replay");
}
void GraphSequence::rehearse(const std::function<void()>&) {
    unavailable("cuda::GraphSequence::rehearse");
}
std::vector<ConvChoice> conv_choices() {
    return {};  // no CUDA convolution has run
}
std::vector<CudnnSearch> cudnn_searches() {
    return {};  // no CUDA convolution has run
}
std::string cudnn_version() {
    return "";  // no cuDNN without CUDA
}

bool capturing() {
    return false;
}

}  // namespace r2c::cuda
