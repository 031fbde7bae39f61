// The CUDA side as the engine sees it: whether it exists, raw copies, and the device allocator.
// Implemented by kernels/runtime.cu in a CUDA build and by engine/no_cuda.cpp without CUDA.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/allocator.h"
#include "engine/dtype.h"

namespace r2c::cuda {

bool compiled();         // the engine was built with CUDA
bool available();        // compiled and a usable device is present
std::string describe();  // one line per device, or why there is none

CachingAllocator& allocator();  // throws when CUDA is not available

// The stream every op of the engine queues its work on (a cudaStream_t), created on first use. It is a
// blocking stream: the synchronous copies below, on the legacy default stream, wait for the work queued on
// it, so results are read in order. Unlike the legacy stream it can be captured into a graph
// (engine/graph.h). Throws when CUDA is not available.
void* stream();

// Host-to-device and device-to-host copies are synchronous (the host waits); device-to-device copies are
// queued on stream() and may be captured.
enum class CopyKind { HostToDevice, DeviceToHost, DeviceToDevice };
void copy(void* dst, const void* src, std::size_t bytes, CopyKind kind);
// Device buffers parts[i] of bytes[i] bytes, copied one after another into dst, queued on stream() as one
// kernel per 32 parts (kernels/gather.cu): what would otherwise be one device-to-device copy per part.
void gather(void* dst, const std::vector<const void*>& parts, const std::vector<std::size_t>& bytes);

// How many times this process has waited for the device's queued work: device-to-host copies and
// explicit synchronisations. A training step on CUDA waits once, for its losses and finite flags
// (models/trainer.h); its tests count the waits to keep it so.
std::uint64_t host_waits();
// How many kernels this process has launched. Steady training steps launch the same kernels every time.
std::uint64_t kernel_launches();
// How many copies and fills this process has queued on the device besides its kernels (device-to-device
// and asynchronous host-to-device copies, memsets): like a kernel, each is a node of a captured graph.
std::uint64_t memory_operations();

// The least precise arithmetic the CUDA operational convolutions may use: FP32 exact (CUDA cores, cuDNN's FMA
// math), or tensor cores with TF32 or BF16 operands and FP32 accumulation. A process-wide setting
// (engine/device.cpp), TF32 unless set. The fused kernels compute layers too narrow for tensor cores, and
// on devices older than sm_80, in FP32 whatever is set; cuDNN's passes in BF16 convolve bfloat16 copies of
// their power stacks and weights, whatever the layer's width (engine/ops/conv_cudnn.h).
enum class MathPrecision { FP32, TF32, BF16 };
void set_math_precision(MathPrecision p);
MathPrecision math_precision();
const char* math_precision_name(MathPrecision p);
// "fp32", "tf32" or "bf16"; throws r2c::Error naming the accepted values otherwise.
MathPrecision parse_math_precision(const std::string& name);

// How the CUDA operational convolutions run (engine/ops/conv_cuda.cpp): the fused kernels of
// kernels/oper_conv.h, which never form x^q in memory; cuDNN on the materialised power stack
// (engine/ops/conv_cudnn.h: one ordinary convolution over Q*Cin channels); or Auto: for each pass and shape,
// the faster of the two as timed on the device the first time that pass and shape run outside a graph capture
// (a capture meeting a new one takes the fused kernels). In a build without cuDNN, Auto runs the fused
// kernels and Cudnn is an error at the first convolution. A process-wide setting (engine/device.cpp), Auto
// unless set.
enum class ConvAlgorithm { Auto, Fused, Cudnn };
void set_conv_algorithm(ConvAlgorithm a);
ConvAlgorithm conv_algorithm();
const char* conv_algorithm_name(ConvAlgorithm a);
// "auto", "fused" or "cudnn"; throws r2c::Error naming the accepted values otherwise.
ConvAlgorithm parse_conv_algorithm(const std::string& name);
// The most device memory one cuDNN pass may take as workspace: its algorithm is searched among those that
// fit (the search borrows that much once per shape, from the driver and back, or less where that much is
// not free). Unless set, the limit scales with the pass: twice the bytes of its input and output tensors, at
// least 128 MiB and at most an eighth of the device's memory (a fixed 128 MiB kept the wide layers off
// cuDNN at batches 16 and 32 on an H200, where cuDNN with 1 GiB ran the generator body's layer 8x faster
// than the fused kernels). A setting of 0 restores the scaled limit.
void set_conv_workspace_limit(std::size_t bytes);
std::size_t conv_workspace_limit();  // the setting: 0 where the limit scales
// The limit for one pass whose input and output tensors take `tensor_bytes`, on a device of `device_bytes`.
std::size_t conv_workspace_for(std::size_t tensor_bytes, std::size_t device_bytes);
// Whether this build has the cuDNN path (a CUDA build that found cuDNN).
bool cudnn_compiled();
// The version of the cuDNN library the process loaded, e.g. "9.19.0"; empty in a build without cuDNN.
std::string cudnn_version();
// Auto's choices so far, one per pass and shape, in the order they were made, with the mean device times
// (of three runs each) they were made on. Before timing, Auto checks that cuDNN ran and agreed with the fused
// kernels (relative L2 within 2e-2, far beyond TF32's rounding); where not, the fused kernels keep the pass,
// the note says why, and a warning goes to stderr.
struct ConvChoice {
    std::string pass;   // as kernels/oper_conv.h names it, e.g. "oper_conv_forward"
    std::string shape;  // the geometry, e.g. "x[1,128,128,128] -> y[1,128,128,128], k=3, ..."
    bool cudnn = false;
    double fused_ms = 0, cudnn_ms = 0;  // 0 where not timed
    // Why cuDNN was not timed (it failed, or its outputs differed from the fused kernels'), else empty.
    std::string note;
};
std::vector<ConvChoice> conv_choices();
// cuDNN's algorithm searches so far, one per cuDNN pass and problem, in the order they were made: every
// candidate cuDNN reported and the one taken (usable_cudnn_candidate, below; engine/ops/conv_cudnn.cpp).
struct CudnnCandidate {
    std::string algo;    // cuDNN's name without its prefix, e.g. "IMPLICIT_PRECOMP_GEMM"
    std::string math;    // "default", "tensor_op", "tensor_op_allow_conversion" or "fma"
    std::string status;  // of its trial run, as cudnnGetErrorString names it
    bool ran = false;    // the status is success
    double ms = -1;      // as cuDNN timed it; -1 for a heuristic's candidate
    std::size_t workspace = 0;
};
struct CudnnSearch {
    std::string pass;        // "forward", "backward data" or "backward filter"
    std::string problem;     // e.g. "input [1,384,130,130], filter [128,384,3,3], stride 1"
    std::size_t limit = 0;   // the workspace the candidates could use (less than the limit where not free)
    bool heuristic = false;  // inside a graph capture: cuDNN's heuristic ranking, nothing timed
    std::vector<CudnnCandidate> candidates;  // in cuDNN's order: fastest first where timed
    int chosen = -1;                         // the index taken, -1 where none could be
};
std::vector<CudnnSearch> cudnn_searches();
// The index of the candidate a search takes, among those that ran within `limit` bytes of workspace without
// converting to FP16 (and with FMA math where `fma_only`): of the ones timed within 3% of the fastest, the
// one with the least workspace (the earliest of equals); of a heuristic's (untimed) candidates, the first.
// -1 if there is none.
int usable_cudnn_candidate(const std::vector<CudnnCandidate>& candidates, std::size_t limit,
                           bool fma_only = false);

// Host-to-device copies that overlap the work on stream() (where every op runs): the bytes go through
// pinned staging memory and a copy stream of the uploader's own. Each slot has its own staging buffer;
// upload() copies into a slot once the work queued so far on stream() is done (so the destination may be
// memory that work used), and acquire() orders the slot's copy before the work queued after it.
class Uploader {
  public:
    struct Part {
        void* dst;        // device memory
        const void* src;  // host memory, free to reuse when upload() returns
        std::size_t bytes;
    };
    explicit Uploader(int slots);
    ~Uploader();
    Uploader(const Uploader&) = delete;
    Uploader& operator=(const Uploader&) = delete;

    void upload(int slot, const std::vector<Part>& parts);
    void acquire(int slot);

  private:
    struct State;
    static void release(State* state);
    State* state_;
};

// Pinned (page-locked) host memory that a copy on stream() reads when it runs, not when it is queued. In a
// captured graph (engine/graph.h), each replay copies the contents the buffer has then: this is how the
// host hands a replay scalars that change from step to step.
class PinnedBuffer {
  public:
    explicit PinnedBuffer(std::size_t bytes);
    ~PinnedBuffer();
    PinnedBuffer(const PinnedBuffer&) = delete;
    PinnedBuffer& operator=(const PinnedBuffer&) = delete;

    void* data() { return data_; }
    std::size_t size() const { return bytes_; }
    // Queues the copy of the whole buffer into device memory at dst on stream().
    void upload(void* dst) const;

  private:
    void* data_ = nullptr;
    std::size_t bytes_ = 0;
};

// An event for timing the work on stream(): record() marks how far the work queued so far has got, and
// ms_since() waits for the device to reach this event (a host wait) and gives the device time between an
// earlier recorded event and this one. Not for use inside a graph capture.
class TimingEvent {
  public:
    TimingEvent();
    ~TimingEvent();
    TimingEvent(const TimingEvent&) = delete;
    TimingEvent& operator=(const TimingEvent&) = delete;

    void record();
    double ms_since(const TimingEvent& start) const;

  private:
    [[maybe_unused]] void* event_ = nullptr;  // a cudaEvent_t; unused in a build without CUDA
};

// Elementwise helpers used by the engine itself (gradient accumulation, fills).
void fill(void* dst, std::size_t n, double value, DType dtype);
void axpy(void* y, const void* x, std::size_t n, double alpha, DType dtype);  // y += alpha * x

}  // namespace r2c::cuda
