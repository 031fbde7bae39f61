// Safetensors files and atomic writes: bit-exact round trips, the exact bytes of a small file, rejection
// of every kind of malformed file with a message naming it, crash safety of writes, and a byte-flip loop.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <limits>

#include "engine/atomic_file.h"
#include "engine/device.h"
#include "engine/rng.h"
#include "engine/safetensors.h"
#include "tests/support.h"

using namespace r2c;
using Catch::Contains;
namespace fs = std::filesystem;

namespace {

using test::TempDir;

std::string le64(std::uint64_t n) {
    std::string out(8, '\0');
    for (int i = 0; i < 8; ++i)
        out[static_cast<std::size_t>(i)] = static_cast<char>((n >> (8 * i)) & 0xff);
    return out;
}

// A file made of the given header text and data bytes.
std::string file_bytes(const std::string& header, const std::string& data) {
    return le64(header.size()) + header + data;
}

std::string raw(const Tensor& t) {
    return std::string(static_cast<const char*>(t.raw_data()), t.nbytes());
}

// The message of the error that loading `bytes` from a file raises; empty when the load succeeds.
std::string load_error(const TempDir& dir, const std::string& bytes) {
    const std::string path = dir.file("bad.safetensors");
    write_file_atomic(path, bytes);
    try {
        load_safetensors(path);
    } catch (const Error& e) {
        const std::string msg = e.what();
        CHECK_THAT(msg, Contains(path));
        return msg;
    }
    return "";
}

// One valid F32 tensor of two elements, under any name and offsets, for building malformed headers.
const std::string kTwoFloats("\x00\x00\x80\x3f\x00\x00\x00\xc0", 8);  // 1.0f, -2.0f
std::string entry(const std::string& name, const std::string& dtype, const std::string& shape,
                  const std::string& offsets) {
    return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape +
           ",\"data_offsets\":" + offsets + "}";
}

}  // namespace

TEST_CASE("tensors and metadata survive a round trip bit for bit", "[safetensors]") {
    TempDir dir;
    Rng rng(3);
    Tensor f32 = Tensor::normal({2, 3, 4}, 0.0, 1.0, rng, DType::F32);
    Tensor f64 = Tensor::normal({5, 1}, 0.0, 1.0, rng, DType::F64);
    // Values whose bits a lossy path would change: NaN payload, -0, infinity, a subnormal.
    const float specials[4] = {std::numeric_limits<float>::quiet_NaN(), -0.0f,
                               std::numeric_limits<float>::infinity(),
                               std::numeric_limits<float>::denorm_min()};
    std::memcpy(f32.data<float>(), specials, sizeof specials);
    const Tensor one = Tensor::from_vector({42.0}, {1}, DType::F64);
    const Tensor scalar = Tensor::from_vector({-7.5}, {}, DType::F32);
    const Tensor empty = Tensor::zeros({0, 3}, DType::F32);
    const std::map<std::string, std::string> metadata{{"epoch", "12"}, {"model", "R2C-GAN (Q=3)"}};
    const NamedTensors tensors{
        {"gen.w", f32}, {"gen.b", f64}, {"one", one}, {"scalar", scalar}, {"empty", empty}};

    const std::string path = dir.file("model.safetensors");
    save_safetensors(path, tensors, metadata);
    const SafetensorsFile file = load_safetensors(path);
    CHECK(file.origin == path);
    CHECK(file.metadata == metadata);
    REQUIRE(file.tensors.size() == tensors.size());
    for (const auto& [name, t] : tensors) {
        const Tensor& back = file.at(name);
        CHECK(back.shape() == t.shape());
        CHECK(back.dtype() == t.dtype());
        CHECK(back.device() == Device::CPU);
        CHECK(raw(back) == raw(t));
    }
}

TEST_CASE("the written bytes are fixed by the content, not by the order given", "[safetensors]") {
    TempDir dir;
    Rng rng(5);
    const Tensor a = Tensor::normal({3}, 0.0, 1.0, rng, DType::F32);
    const Tensor b = Tensor::normal({2, 2}, 0.0, 1.0, rng, DType::F64);
    const Tensor c = Tensor::normal({1}, 0.0, 1.0, rng, DType::F32);
    save_safetensors(dir.file("x"), {{"a", a}, {"b", b}, {"c", c}});
    save_safetensors(dir.file("y"), {{"c", c}, {"b", b}, {"a", a}});
    const std::string x = read_file(dir.file("x"));
    CHECK(x == read_file(dir.file("y")));
    // float64 first, then by name: b at 0, a at 32, c at 44; the header is padded to 8 bytes.
    const SafetensorsFile file = parse_safetensors(x, "x");
    CHECK(raw(file.at("b")) == raw(b));
    const std::uint64_t header = x.size() - 8 - 48;
    CHECK((8 + header) % 8 == 0);
    CHECK(x.substr(8 + header, 32) == raw(b));
    CHECK(x.substr(8 + header + 32, 12) == raw(a));
    CHECK(x.substr(8 + header + 44, 4) == raw(c));
}

TEST_CASE("a one-tensor file has exactly the expected bytes", "[safetensors]") {
    TempDir dir;
    const std::string path = dir.file("w.safetensors");
    save_safetensors(path, {{"w", Tensor::from_vector({1.0, -2.0}, {2}, DType::F32)}}, {{"format", "r2c"}});
    // 86 bytes of JSON padded with two spaces to 88 = 0x58; then 1.0f and -2.0f little-endian.
    const std::string expected =
        std::string("\x58\x00\x00\x00\x00\x00\x00\x00", 8) +
        R"({"__metadata__":{"format":"r2c"},"w":{"data_offsets":[0,8],"dtype":"F32","shape":[2]}}  )" +
        std::string("\x00\x00\x80\x3f\x00\x00\x00\xc0", 8);
    CHECK(read_file(path) == expected);
}

TEST_CASE("malformed files are rejected with a message naming the file and the problem", "[safetensors]") {
    TempDir dir;
    const std::string w = entry("w", "F32", "[2]", "[0,8]");
    // The well-formed reference the cases below break one way each.
    CHECK(load_error(dir, file_bytes("{" + w + "}", kTwoFloats)).empty());

    SECTION("too short for the length field") {
        CHECK_THAT(load_error(dir, ""), Contains("too short"));
        CHECK_THAT(load_error(dir, std::string("\x02\x00\x00", 3)), Contains("too short"));
    }
    SECTION("header length beyond the file or above the cap") {
        const std::string good = file_bytes("{" + w + "}", kTwoFloats);
        CHECK_THAT(load_error(dir, good.substr(0, 20)), Contains("header length") && Contains("beyond"));
        CHECK_THAT(load_error(dir, le64(1) + "{"), Contains("not valid JSON"));
        CHECK_THAT(load_error(dir, le64(std::uint64_t{1} << 40) + "{}"), Contains("above the limit"));
        CHECK_THAT(load_error(dir, le64(~std::uint64_t{0}) + "{}"), Contains("above the limit"));
    }
    SECTION("truncated data") {
        CHECK_THAT(load_error(dir, file_bytes("{" + w + "}", kTwoFloats.substr(0, 5))),
                   Contains("'w'") && Contains("beyond the data section of 5 bytes"));
    }
    SECTION("header not JSON, or not an object") {
        CHECK_THAT(load_error(dir, file_bytes("{\"w\":", kTwoFloats)), Contains("not valid JSON"));
        CHECK_THAT(load_error(dir, file_bytes("{" + w + "} x", kTwoFloats)), Contains("not valid JSON"));
        CHECK_THAT(load_error(dir, file_bytes("{\"\xff\":1}", "")), Contains("not valid JSON"));
        CHECK_THAT(load_error(dir, file_bytes("{\"w\":{\"shape\":[1e400]}}", "")),
                   Contains("not valid JSON"));
        CHECK_THAT(load_error(dir, file_bytes("[1,2]", "")), Contains("not a JSON object"));
        CHECK_THAT(load_error(dir, file_bytes("{\"w\":{\"shape\":[[[1]]]}}", "")), Contains("nests"));
    }
    SECTION("entries that are not objects, with unknown or missing fields") {
        CHECK_THAT(load_error(dir, file_bytes("{\"w\":3}", "")),
                   Contains("'w'") && Contains("not an object"));
        CHECK_THAT(load_error(dir, file_bytes("{\"w\":{\"dtype\":\"F32\",\"shape\":[0]}}", "")),
                   Contains("missing field 'data_offsets'"));
        CHECK_THAT(
            load_error(dir, file_bytes(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1}})",
                                       kTwoFloats)),
            Contains("unknown field 'x'"));
    }
    SECTION("unsupported dtypes") {
        CHECK_THAT(load_error(dir, file_bytes("{" + entry("w", "F16", "[4]", "[0,8]") + "}", kTwoFloats)),
                   Contains("unsupported dtype 'F16'"));
        CHECK_THAT(load_error(dir, file_bytes("{" + entry("w", "BF16", "[4]", "[0,8]") + "}", kTwoFloats)),
                   Contains("unsupported dtype 'BF16'"));
        CHECK_THAT(load_error(dir, file_bytes("{" + entry("w", "XYZ", "[2]", "[0,8]") + "}", kTwoFloats)),
                   Contains("unsupported dtype 'XYZ'"));
        CHECK_THAT(
            load_error(dir, file_bytes(R"({"w":{"dtype":4,"shape":[2],"data_offsets":[0,8]}})", kTwoFloats)),
            Contains("dtype is not a string"));
    }
    SECTION("bad shapes") {
        auto with_shape = [&](const std::string& shape) {
            return load_error(dir, file_bytes("{" + entry("w", "F32", shape, "[0,8]") + "}", kTwoFloats));
        };
        CHECK_THAT(with_shape("[-2]"), Contains("'w'") && Contains("negative"));
        CHECK_THAT(with_shape("[2.0]"), Contains("not an integer"));
        CHECK_THAT(with_shape("\"2\""), Contains("shape is not an array"));
        CHECK_THAT(with_shape("[9223372036854775808]"), Contains("too large"));
        CHECK_THAT(with_shape("[4294967296,4294967296]"), Contains("overflows"));
        CHECK_THAT(with_shape("[4294967296,4294967296,0]"), Contains("overflows"));
        CHECK_THAT(with_shape("[3]"), Contains("span 8 bytes but shape [3]"));
        CHECK_THAT(with_shape("[1,1]"), Contains("span 8 bytes but shape [1,1]"));
    }
    SECTION("bad data_offsets") {
        auto with_offsets = [&](const std::string& offsets) {
            return load_error(dir, file_bytes("{" + entry("w", "F32", "[2]", offsets) + "}", kTwoFloats));
        };
        CHECK_THAT(with_offsets("[8,0]"), Contains("begin 8 is after end 0"));
        CHECK_THAT(with_offsets("[0]"), Contains("not an array of two integers"));
        CHECK_THAT(with_offsets("[0,8,16]"), Contains("not an array of two integers"));
        CHECK_THAT(with_offsets("[-8,0]"), Contains("not non-negative integers"));
        CHECK_THAT(with_offsets("[0,8.5]"), Contains("not non-negative integers"));
        CHECK_THAT(with_offsets("[8,16]"), Contains("beyond the data section of 8 bytes"));
        CHECK_THAT(with_offsets("[18446744073709551608,18446744073709551615]"), Contains("span"));
    }
    SECTION("overlapping ranges") {
        const std::string header = "{" + w + "," + entry("v", "F32", "[2]", "[4,12]") + "}";
        CHECK_THAT(load_error(dir, file_bytes(header, kTwoFloats + "1234")), Contains("'w' and 'v' overlap"));
        const std::string same = "{" + w + "," + entry("v", "F32", "[2]", "[0,8]") + "}";
        CHECK_THAT(load_error(dir, file_bytes(same, kTwoFloats)), Contains("overlap"));
    }
    SECTION("data not fully covered") {
        const std::string gap = "{" + w + "," + entry("v", "F32", "[2]", "[12,20]") + "}";
        CHECK_THAT(load_error(dir, file_bytes(gap, kTwoFloats + "1234" + kTwoFloats)),
                   Contains("bytes [8, 12) of the data section belong to no tensor"));
        CHECK_THAT(load_error(dir, file_bytes("{" + w + "}", kTwoFloats + "x")),
                   Contains("bytes [8, 9) of the data section belong to no tensor"));
        const std::string late = "{" + entry("w", "F32", "[2]", "[4,12]") + "}";
        CHECK_THAT(load_error(dir, file_bytes(late, "1234" + kTwoFloats)), Contains("bytes [0, 4)"));
    }
    SECTION("duplicate keys") {
        CHECK_THAT(load_error(dir, file_bytes("{" + w + "," + w + "}", kTwoFloats)),
                   Contains("key 'w' twice"));
        CHECK_THAT(
            load_error(dir,
                       file_bytes(R"({"w":{"dtype":"F32","dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
                                  kTwoFloats)),
            Contains("key 'dtype' twice"));
        CHECK_THAT(load_error(dir, file_bytes(R"({"__metadata__":{"a":"1","a":"2"}})", "")),
                   Contains("key 'a' twice"));
    }
    SECTION("bad metadata") {
        CHECK_THAT(load_error(dir, file_bytes(R"({"__metadata__":{"a":1}})", "")),
                   Contains("__metadata__ value of 'a' is not a string"));
        CHECK_THAT(load_error(dir, file_bytes(R"({"__metadata__":["a"]})", "")),
                   Contains("__metadata__ is not an object"));
    }
}

TEST_CASE("long names and dtypes are shortened in error messages", "[safetensors]") {
    const std::string name(10000, 'n');
    try {
        parse_safetensors(file_bytes("{" + entry(name, "F32", "[3]", "[0,8]") + "}", kTwoFloats), "long");
        FAIL("no error");
    } catch (const Error& e) {
        CHECK(std::strlen(e.what()) < 300);
        CHECK_THAT(e.what(), Contains("nnnn...'"));
    }
}

TEST_CASE("names that cannot be saved are rejected before anything is written", "[safetensors]") {
    TempDir dir;
    const Tensor t = Tensor::zeros({1});
    const std::string path = dir.file("x.safetensors");
    CHECK_THROWS_WITH(save_safetensors(path, {{"a", t}, {"a", t}}),
                      Contains(path) && Contains("'a' given twice"));
    CHECK_THROWS_WITH(save_safetensors(path, {{"__metadata__", t}}), Contains("__metadata__"));
    CHECK_THROWS_WITH(save_safetensors(path, {{"bad\xff", t}}), Contains("valid UTF-8"));
    CHECK_THROWS_WITH(save_safetensors(path, {{"u", Tensor()}}), Contains("'u' is undefined"));
    CHECK(dir.entries() == 0);
}

TEST_CASE("an empty tensor list makes a valid file", "[safetensors]") {
    TempDir dir;
    save_safetensors(dir.file("e"), {});
    CHECK(read_file(dir.file("e")) == le64(8) + "{}      ");
    CHECK(load_safetensors(dir.file("e")).tensors.empty());
}

TEST_CASE("load_tensors_into checks names, shapes and dtypes before copying anything", "[safetensors]") {
    TempDir dir;
    const std::string path = dir.file("ckpt.safetensors");
    save_safetensors(path, {{"a", Tensor::full({2, 2}, 1.0, DType::F32)},
                            {"b", Tensor::full({3}, 2.0, DType::F64)},
                            {"extra", Tensor::zeros({1})}});
    const SafetensorsFile file = load_safetensors(path);

    Tensor a = Tensor::zeros({2, 2}, DType::F32), b = Tensor::zeros({3}, DType::F64);
    load_tensors_into(file, {{"a", a}, {"b", b}});
    CHECK(a.to_vector() == std::vector<double>(4, 1.0));
    CHECK(b.to_vector() == std::vector<double>(3, 2.0));

    Tensor a2 = Tensor::zeros({2, 2}, DType::F32), wrong_shape = Tensor::zeros({4}, DType::F64);
    CHECK_THROWS_WITH(
        load_tensors_into(file, {{"a", a2}, {"b", wrong_shape}}),
        Contains(path) && Contains("'b'") && Contains("float64[3]") && Contains("expected float64[4]"));
    CHECK(a2.to_vector() == std::vector<double>(4, 0.0));
    Tensor wrong_dtype = Tensor::zeros({3}, DType::F32);
    CHECK_THROWS_WITH(load_tensors_into(file, {{"b", wrong_dtype}}), Contains("expected float32[3]"));
    CHECK_THROWS_WITH(load_tensors_into(file, {{"missing", a2}}), Contains(path) && Contains("'missing'"));
}

TEST_CASE("CUDA tensors are saved from host copies", "[safetensors][cuda]") {
    if (!cuda::available()) return test::skip("no CUDA device");
    TempDir dir;
    Rng rng(9);
    const Tensor host = Tensor::normal({4, 5}, 0.0, 1.0, rng, DType::F32);
    save_safetensors(dir.file("g"), {{"g", host.to(Device::CUDA)}});
    const SafetensorsFile file = load_safetensors(dir.file("g"));
    CHECK(raw(file.at("g")) == raw(host));
    Tensor target = Tensor::zeros({4, 5}, DType::F32, Device::CUDA);
    load_tensors_into(file, {{"g", target}});
    CHECK(raw(target.to(Device::CPU)) == raw(host));
}

TEST_CASE("atomic writes fail cleanly and leave the previous file untouched", "[atomic_file]") {
    TempDir dir;
    const std::string path = dir.file("keep.bin");
    write_file_atomic(path, "previous");

    SECTION("missing directory") {
        const std::string missing = dir.file("no/such/dir/x.bin");
        CHECK_THROWS_WITH(write_file_atomic(missing, "new"),
                          Contains(missing) && Contains("No such file or directory"));
    }
    SECTION("parent is a regular file") {
        CHECK_THROWS_WITH(write_file_atomic(path + "/x.bin", "new"),
                          Contains(path + "/x.bin") && Contains("Not a directory"));
    }
    SECTION("destination is a directory: the rename fails after the data was written") {
        fs::create_directory(dir.file("sub"));
        CHECK_THROWS_WITH(write_file_atomic(dir.file("sub"), "new"), Contains(dir.file("sub")));
        CHECK(fs::is_directory(dir.file("sub")));
        CHECK(dir.entries() == 2);
    }
    SECTION("a write fails midway (file size limit standing in for a full disk)") {
        // Root ignores permissions, but not RLIMIT_FSIZE: past it write() fails with EFBIG.
        struct rlimit saved {};
        REQUIRE(::getrlimit(RLIMIT_FSIZE, &saved) == 0);
        const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
        struct rlimit small = saved;
        small.rlim_cur = 4096;
        REQUIRE(::setrlimit(RLIMIT_FSIZE, &small) == 0);
        std::string error;
        try {
            save_safetensors(path, {{"big", Tensor::zeros({1 << 16})}});
        } catch (const Error& e) {
            error = e.what();
        }
        ::setrlimit(RLIMIT_FSIZE, &saved);
        std::signal(SIGXFSZ, old_handler);
        CHECK_THAT(error, Contains(path) && Contains("File too large"));
    }
    CHECK(read_file(path) == "previous");
    CHECK(dir.entries() == (fs::exists(dir.file("sub")) ? 2u : 1u));
}

TEST_CASE("temporaries of writes whose process has ended are removed, others kept", "[atomic_file]") {
    const pid_t child = ::fork();
    if (child == 0) ::_exit(0);
    REQUIRE(child > 0);
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);  // from here on no process has the pid `child`
    const test::TempDir dir;
    const std::string dead = dir.file("ckpt.safetensors.tmp." + std::to_string(child) + ".0");
    const std::string live = dir.file("ckpt.safetensors.tmp." + std::to_string(::getpid()) + ".3");
    const std::vector<std::string> kept = {live, dir.file("ckpt.safetensors"), dir.file("notes.tmp.x.1"),
                                           dir.file("other.tmp.")};
    for (const std::string& f : kept)
        write_file_atomic(f, "x");
    write_file_atomic(dead, "partial");
    CHECK(remove_stale_temporaries(dir.str()) == 1);
    CHECK_FALSE(std::filesystem::exists(dead));
    for (const std::string& f : kept)
        CHECK(std::filesystem::exists(f));
    CHECK(remove_stale_temporaries(dir.file("missing")) == 0);
}

TEST_CASE("read_file names the path and the reason", "[atomic_file]") {
    TempDir dir;
    CHECK_THROWS_WITH(read_file(dir.file("absent")),
                      Contains(dir.file("absent")) && Contains("No such file"));
    CHECK_THROWS_WITH(load_safetensors(dir.file("absent")), Contains(dir.file("absent")));
    write_file_atomic(dir.file("big"), std::string(200000, 'z'));
    CHECK(read_file(dir.file("big")) == std::string(200000, 'z'));
}

TEST_CASE("corrupted files load or throw r2c::Error, never anything worse", "[safetensors][fuzz]") {
    Rng rng(11);
    const std::string valid = [&] {
        TempDir dir;
        save_safetensors(dir.file("v"),
                         {{"a", Tensor::normal({2, 3}, 0.0, 1.0, rng, DType::F32)},
                          {"b", Tensor::normal({2}, 0.0, 1.0, rng, DType::F64)},
                          {"z", Tensor::zeros({0, 4})}},
                         {{"k", "v"}});
        return read_file(dir.file("v"));
    }();
    std::size_t loaded = 0, rejected = 0;
    auto attempt = [&](const std::string& bytes) {
        try {
            parse_safetensors(bytes, "fuzz");
            ++loaded;
        } catch (const Error&) {
            ++rejected;
        }
    };
    for (std::size_t i = 0; i < valid.size(); ++i) {
        for (unsigned mask : {0x01u, 0x20u, 0x80u, 0xffu}) {
            std::string bytes = valid;
            bytes[i] = static_cast<char>(static_cast<unsigned char>(bytes[i]) ^ mask);
            attempt(bytes);
        }
        attempt(valid.substr(0, i));
    }
    for (int trial = 0; trial < 2000; ++trial) {
        std::string bytes = valid;
        const int flips = 1 + static_cast<int>(rng.below(4));
        for (int f = 0; f < flips; ++f)
            bytes[rng.below(bytes.size())] = static_cast<char>(rng.below(256));
        attempt(bytes);
    }
    CHECK(loaded > 0);  // flips in the data section still load
    CHECK(rejected > 0);
    CHECK(loaded + rejected == valid.size() * 5 + 2000);
}
