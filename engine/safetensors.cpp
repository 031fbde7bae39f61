#include "engine/safetensors.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <tuple>

#include "engine/atomic_file.h"

// Tensor bytes are copied between memory and the file unchanged.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors data is little-endian");

namespace r2c {

namespace {

using json = nlohmann::json;

constexpr const char* kMetadataKey = "__metadata__";
// A valid header is an object of objects holding at most a flat array (the shape or the offsets), so
// containers opened at depth 3 or more are malformed; rejecting them early also bounds parser memory.
constexpr int kMaxHeaderDepth = 3;
constexpr std::size_t kLengthFieldBytes = 8;

template <typename... Args>
[[noreturn]] void fail(const std::string& origin, const Args&... args) {
    throw Error(detail::concat("safetensors '", origin, "': ", args...));
}

template <typename... Args>
void check(bool ok, const std::string& origin, const Args&... args) {
    if (!ok) fail(origin, args...);
}

// Names and dtype strings come from untrusted files; keep error messages short whatever their length.
std::string quoted(const std::string& s) {
    constexpr std::size_t kMax = 64;
    return s.size() <= kMax ? "'" + s + "'" : "'" + s.substr(0, kMax) + "...'";
}

const char* dtype_code(DType t) {
    return t == DType::F32 ? "F32" : "F64";
}

// ---------------------------------------------------------------------------------------------- writing

struct Placed {
    const std::string* name;
    Tensor host;
    std::uint64_t begin = 0, end = 0;
};

// Host copies of the tensors in file order (float64 first, then by name) with their byte ranges.
std::vector<Placed> lay_out(const NamedTensors& tensors, const std::string& path) {
    std::vector<Placed> placed;
    std::set<std::string> names;
    for (const auto& [name, tensor] : tensors) {
        check(name != kMetadataKey, path, "cannot save a tensor named ", kMetadataKey);
        check(names.insert(name).second, path, "tensor name ", quoted(name), " given twice");
        check(tensor.defined(), path, "tensor ", quoted(name), " is undefined");
        placed.push_back({&name, tensor.to(Device::CPU)});
    }
    std::sort(placed.begin(), placed.end(), [](const Placed& a, const Placed& b) {
        const auto sa = dtype_size(a.host.dtype()), sb = dtype_size(b.host.dtype());
        return sa != sb ? sa > sb : *a.name < *b.name;
    });
    std::uint64_t offset = 0;
    for (Placed& p : placed) {
        p.begin = offset;
        offset += p.host.nbytes();
        p.end = offset;
    }
    return placed;
}

std::string encode_header(const std::vector<Placed>& placed,
                          const std::map<std::string, std::string>& metadata, const std::string& path) {
    json header = json::object();
    for (const Placed& p : placed) {
        header[*p.name] = {{"dtype", dtype_code(p.host.dtype())},
                           {"shape", p.host.shape()},
                           {"data_offsets", json::array({p.begin, p.end})}};
    }
    if (!metadata.empty()) header[kMetadataKey] = metadata;
    std::string text;
    try {
        text = header.dump();
    } catch (const json::exception&) {
        fail(path, "tensor names and metadata must be valid UTF-8");
    }
    // Padding keeps the data section, and with it every tensor, aligned to 8 bytes in the file.
    text.resize((text.size() + 7) / 8 * 8, ' ');
    return text;
}

std::string encode_length(std::uint64_t n) {
    std::string out(kLengthFieldBytes, '\0');
    for (std::size_t i = 0; i < kLengthFieldBytes; ++i)
        out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
    return out;
}

// ---------------------------------------------------------------------------------------------- reading

struct Entry {
    std::string name;
    DType dtype = DType::F32;
    Shape shape;
    std::uint64_t begin = 0, end = 0;
};

std::uint64_t decode_length(const std::string& bytes) {
    std::uint64_t n = 0;
    for (std::size_t i = 0; i < kLengthFieldBytes; ++i)
        n |= static_cast<std::uint64_t>(static_cast<unsigned char>(bytes[i])) << (8 * i);
    return n;
}

// Parses the header text, rejecting what nlohmann::json would accept silently: repeated keys (it keeps
// the last) and deep nesting.
json parse_header(const std::string& text, const std::string& origin) {
    std::vector<std::set<std::string>> open_objects;  // keys seen so far in each object being parsed
    const json::parser_callback_t guard = [&](int depth, json::parse_event_t event, json& parsed) {
        if (event == json::parse_event_t::object_start || event == json::parse_event_t::array_start) {
            check(depth < kMaxHeaderDepth, origin, "header nests containers ", depth + 1,
                  " deep; a safetensors header nests at most ", kMaxHeaderDepth);
            if (event == json::parse_event_t::object_start) open_objects.emplace_back();
        } else if (event == json::parse_event_t::object_end) {
            open_objects.pop_back();
        } else if (event == json::parse_event_t::key) {
            const auto& key = parsed.get_ref<const std::string&>();
            check(open_objects.back().insert(key).second, origin, "header has the key ", quoted(key),
                  " twice");
        }
        return true;
    };
    try {
        return json::parse(text, guard);
    } catch (const json::exception& e) {  // parse_error, or out_of_range for a number like 1e400
        fail(origin, "header is not valid JSON: ", e.what());
    }
}

// A JSON integer >= 0 (nlohmann keeps "-0" as a signed zero), or nothing.
std::optional<std::uint64_t> as_count(const json& j) {
    if (j.is_number_unsigned()) return j.get<std::uint64_t>();
    if (j.is_number_integer() && j.get<std::int64_t>() == 0) return 0;
    return std::nullopt;
}

DType parse_dtype(const json& j, const std::string& what, const std::string& origin) {
    check(j.is_string(), origin, what, ": dtype is not a string");
    const auto& code = j.get_ref<const std::string&>();
    if (code == "F32") return DType::F32;
    if (code == "F64") return DType::F64;
    fail(origin, what, ": unsupported dtype ", quoted(code), " (supported: F32, F64)");
}

// The shape, whose nonzero dimensions must have a product representable as int64 so that element counts
// computed in any order never overflow.
Shape parse_shape(const json& j, const std::string& what, const std::string& origin) {
    check(j.is_array(), origin, what, ": shape is not an array");
    constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
    Shape shape;
    std::int64_t nonzero_product = 1;
    for (const json& d : j) {
        const std::size_t i = shape.size();
        check(d.is_number_integer(), origin, what, ": shape element ", i, " is not an integer");
        const auto n = as_count(d);
        check(n.has_value(), origin, what, ": shape element ", i, " is negative (", d.get<std::int64_t>(),
              ")");
        check(*n <= static_cast<std::uint64_t>(kMax), origin, what, ": shape element ", i, " is too large");
        const auto dim = static_cast<std::int64_t>(*n);
        check(dim == 0 || nonzero_product <= kMax / dim, origin, what,
              ": the element count of the shape overflows");
        if (dim > 0) nonzero_product *= dim;
        shape.push_back(dim);
    }
    return shape;
}

void parse_offsets(const json& j, Entry& e, const std::string& what, const std::string& origin) {
    check(j.is_array() && j.size() == 2, origin, what, ": data_offsets is not an array of two integers");
    const auto begin = as_count(j[0]), end = as_count(j[1]);
    check(begin && end, origin, what, ": data_offsets are not non-negative integers");
    check(*begin <= *end, origin, what, ": data_offsets begin ", *begin, " is after end ", *end);
    e.begin = *begin;
    e.end = *end;
}

Entry parse_entry(const std::string& name, const json& j, std::uint64_t data_bytes,
                  const std::string& origin) {
    const std::string what = "tensor " + quoted(name);
    check(j.is_object(), origin, what, ": entry is not an object");
    for (const auto& item : j.items()) {
        const std::string& key = item.key();
        check(key == "dtype" || key == "shape" || key == "data_offsets", origin, what, ": unknown field ",
              quoted(key));
    }
    for (const char* key : {"dtype", "shape", "data_offsets"})
        check(j.contains(key), origin, what, ": missing field '", key, "'");
    Entry e;
    e.name = name;
    e.dtype = parse_dtype(j["dtype"], what, origin);
    e.shape = parse_shape(j["shape"], what, origin);
    parse_offsets(j["data_offsets"], e, what, origin);
    const std::uint64_t size = dtype_size(e.dtype), bytes = e.end - e.begin;
    const auto numel = static_cast<std::uint64_t>(shape_numel(e.shape));
    check(bytes % size == 0 && bytes / size == numel, origin, what, ": data_offsets [", e.begin, ", ", e.end,
          ") span ", bytes, " bytes but shape ", shape_str(e.shape), " of ", dtype_code(e.dtype), " needs ",
          numel, " elements of ", size, " bytes");
    check(e.end <= data_bytes, origin, what, ": data_offsets [", e.begin, ", ", e.end,
          ") extend beyond the data section of ", data_bytes, " bytes");
    return e;
}

std::map<std::string, std::string> parse_metadata(const json& j, const std::string& origin) {
    check(j.is_object(), origin, kMetadataKey, " is not an object");
    std::map<std::string, std::string> metadata;
    for (const auto& item : j.items()) {
        check(item.value().is_string(), origin, kMetadataKey, " value of ", quoted(item.key()),
              " is not a string");
        metadata[item.key()] = item.value().get<std::string>();
    }
    return metadata;
}

// The format requires the byte ranges to tile the data section exactly: in offset order each range starts
// where the previous one ended, and the last ends at the end of the section.
void check_tiling(std::vector<const Entry*> entries, std::uint64_t data_bytes, const std::string& origin) {
    std::sort(entries.begin(), entries.end(), [](const Entry* a, const Entry* b) {
        return std::tie(a->begin, a->end, a->name) < std::tie(b->begin, b->end, b->name);
    });
    std::uint64_t covered = 0;
    const Entry* previous = nullptr;
    for (const Entry* e : entries) {
        if (e->begin < covered)
            fail(origin, "tensors ", quoted(previous->name), " and ", quoted(e->name),
                 " overlap in the data section");
        check(e->begin == covered, origin, "bytes [", covered, ", ", e->begin,
              ") of the data section belong to no tensor");
        covered = e->end;
        previous = e;
    }
    check(covered == data_bytes, origin, "bytes [", covered, ", ", data_bytes,
          ") of the data section belong to no tensor");
}

Tensor read_tensor(const Entry& e, const char* data) {
    Tensor t = Tensor::empty(e.shape, e.dtype);
    if (e.end > e.begin) std::memcpy(t.raw_data(), data + e.begin, e.end - e.begin);
    return t;
}

}  // namespace

const Tensor& SafetensorsFile::at(const std::string& name) const {
    const auto it = tensors.find(name);
    check(it != tensors.end(), origin, "no tensor named ", quoted(name));
    return it->second;
}

void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata) {
    const std::vector<Placed> placed = lay_out(tensors, path);
    const std::string header = encode_header(placed, metadata, path);
    const std::string length = encode_length(header.size());
    std::vector<ByteSpan> parts{{length.data(), length.size()}, {header.data(), header.size()}};
    for (const Placed& p : placed)
        parts.push_back({p.host.raw_data(), p.host.nbytes()});
    write_file_atomic(path, parts);
}

SafetensorsFile parse_safetensors(const std::string& bytes, const std::string& origin) {
    check(bytes.size() >= kLengthFieldBytes, origin, "file is ", bytes.size(),
          " bytes, too short for the 8-byte header length");
    const std::uint64_t header_bytes = decode_length(bytes);
    const std::uint64_t available = bytes.size() - kLengthFieldBytes;
    check(header_bytes <= kSafetensorsMaxHeaderBytes, origin, "header length ", header_bytes,
          " is above the limit of ", kSafetensorsMaxHeaderBytes, " bytes");
    check(header_bytes <= available, origin, "header length ", header_bytes, " is beyond the ", available,
          " bytes that follow the length field");
    const json header = parse_header(bytes.substr(kLengthFieldBytes, header_bytes), origin);
    check(header.is_object(), origin, "header is not a JSON object");

    const std::uint64_t data_start = kLengthFieldBytes + header_bytes;
    const std::uint64_t data_bytes = bytes.size() - data_start;
    SafetensorsFile file;
    file.origin = origin;
    std::vector<Entry> entries;
    for (const auto& item : header.items()) {
        if (item.key() == kMetadataKey)
            file.metadata = parse_metadata(item.value(), origin);
        else
            entries.push_back(parse_entry(item.key(), item.value(), data_bytes, origin));
    }
    std::vector<const Entry*> order;
    for (const Entry& e : entries)
        order.push_back(&e);
    check_tiling(order, data_bytes, origin);
    for (const Entry& e : entries)
        file.tensors.emplace(e.name, read_tensor(e, bytes.data() + data_start));
    return file;
}

SafetensorsFile load_safetensors(const std::string& path) {
    return parse_safetensors(read_file(path), path);
}

void load_tensors_into(const SafetensorsFile& file, const NamedTensors& targets) {
    for (const auto& [name, target] : targets) {
        const Tensor& found = file.at(name);
        check(found.shape() == target.shape() && found.dtype() == target.dtype(), file.origin, "tensor ",
              quoted(name), " is ", dtype_name(found.dtype()), shape_str(found.shape()), ", expected ",
              dtype_name(target.dtype()), shape_str(target.shape()));
    }
    for (const auto& [name, target] : targets) {
        Tensor destination = target;
        destination.copy_from(file.at(name));
    }
}

}  // namespace r2c
