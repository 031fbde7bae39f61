// DeviceBatches (data/device_batches.h): batches reach the device intact, the copy of the next batch never
// touches the tensors of the step in flight, shapes may change between batches, and misuse is an error.
// The CUDA cases need a device (or the emulation build, whose side-stream copies stay invisible until
// ordered, so a take() that did not wait for its copy reads stale values and fails).
#include <catch2/catch.hpp>

#include "data/device_batches.h"
#include "engine/device.h"
#include "tests/support.h"

#ifdef R2C_WITH_CUDA
#include <cuda_runtime.h>
#endif

using namespace r2c;

namespace {

// Lets every copy in flight finish, so that one landing in the wrong tensors shows.
void settle(Device device) {
#ifdef R2C_WITH_CUDA
    if (device == Device::CUDA) REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
#endif
    (void)device;
}

Batch random_batch(std::int64_t n, std::int64_t size, Rng& rng, std::int64_t epoch) {
    Batch b;
    b.epoch = epoch;
    b.a = test::rand({n, 3, size, size}, rng, -1, 1, false).to(DType::F32);
    b.b = test::rand({n, 3, size, size}, rng, -1, 1, false).to(DType::F32);
    b.label_a = test::rand({n, 2}, rng, 0, 1, false).to(DType::F32);
    b.label_b = test::rand({n, 2}, rng, 0, 1, false).to(DType::F32);
    b.names_a.assign(static_cast<std::size_t>(n), "a" + std::to_string(epoch));
    return b;
}

// The device batch holds exactly the values of the CPU one.
void check_same(const Batch& on_device, const Batch& want, Device device) {
    CHECK(on_device.epoch == want.epoch);
    CHECK(on_device.names_a == want.names_a);
    const std::pair<const Tensor*, const Tensor*> pairs[] = {{&on_device.a, &want.a},
                                                             {&on_device.b, &want.b},
                                                             {&on_device.label_a, &want.label_a},
                                                             {&on_device.label_b, &want.label_b}};
    for (const auto& [got, expected] : pairs) {
        REQUIRE(got->device() == device);
        REQUIRE(got->shape() == expected->shape());
        CHECK(got->to(Device::CPU).to_vector() == expected->to_vector());
    }
}

void exercise(Device device) {
    Rng rng(5);
    DeviceBatches batches(device);
    const Batch first = random_batch(2, 8, rng, 0), second = random_batch(2, 8, rng, 1);
    batches.put(first);
    const Batch got_first = batches.take();
    check_same(got_first, first, device);
    // The next batch is put while the step on the first one would run: the first one's tensors keep
    // their values.
    batches.put(second);
    settle(device);
    check_same(got_first, first, device);
    const Batch got_second = batches.take();
    check_same(got_second, second, device);
    // A smaller last batch, then the usual shape again.
    const Batch small = random_batch(1, 8, rng, 2), third = random_batch(2, 8, rng, 3);
    batches.put(small);
    settle(device);
    check_same(got_second, second, device);
    check_same(batches.take(), small, device);
    batches.put(third);
    check_same(batches.take(), third, device);
}

}  // namespace

TEST_CASE("DeviceBatches passes CPU batches through and rejects misuse", "[device_batches]") {
    exercise(Device::CPU);
    DeviceBatches batches(Device::CPU);
    CHECK_THROWS_WITH(batches.take(), Catch::Contains("no batch was put"));
    Rng rng(6);
    batches.put(random_batch(1, 4, rng, 0));
    CHECK_THROWS_WITH(batches.put(random_batch(1, 4, rng, 1)), Catch::Contains("has not been taken"));
}

TEST_CASE("DeviceBatches moves batches to CUDA one step ahead without touching the step's tensors",
          "[device_batches][cuda]") {
    if (!cuda::available()) return test::skip("no CUDA device: " + cuda::describe());
    exercise(Device::CUDA);
    DeviceBatches batches(Device::CUDA);
    Rng rng(7);
    Batch on_device = random_batch(1, 4, rng, 0);
    on_device.a = on_device.a.to(Device::CUDA);
    CHECK_THROWS_WITH(batches.put(on_device), Catch::Contains("must be on the CPU"));
}
