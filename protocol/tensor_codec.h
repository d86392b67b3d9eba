// Internal to protocol/: named tensors to and from MessagePack. A tensor is a
// map {"name": str, "dtype": str, "shape": [uint...], "data": bin}, the data
// its raw little-endian bytes in row-major order; a state dict is an array of
// them in name order.
#pragma once

#include <msgpack.hpp>

#include <string_view>
#include <vector>

#include "core/status.h"
#include "protocol/messages.h"

namespace fedvar::protocol::detail {

using Packer = msgpack::packer<msgpack::sbuffer>;

// Appends `tensors` as one array. Fails (packing nothing) on an undefined
// tensor, an unsupported dtype or a tensor over kMaxTensorBytes. With
// `out_of_band`, "data" is instead the index (1, 2, ...) of a later frame and
// the CPU contiguous tensor is appended to `out_of_band`.
Status pack_tensors(const TensorMap& tensors, Packer& packer,
                    std::vector<torch::Tensor>* out_of_band = nullptr);

// Reads an array written by pack_tensors into CPU tensors (copies). Rejects
// repeated or empty names, unknown dtypes, shape/byte-count mismatches and
// non-finite floating-point values. With `frames`, "data" must be the index of
// a frame in it (not 0, each used once; `used` counts them).
Result<TensorMap> unpack_tensors(const msgpack::object& object, const std::string& what,
                                 const std::vector<std::string_view>* frames = nullptr,
                                 std::vector<bool>* used = nullptr);

}  // namespace fedvar::protocol::detail
