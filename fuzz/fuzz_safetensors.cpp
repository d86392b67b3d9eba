// Fuzzes parse_safetensors (core/safetensors.h) with whole file images. A file
// that parses must serialise again, and the copy must parse to the same
// tensors (names, dtypes, shapes and bytes) and metadata.
#include <torch/types.h>

#include <cstdint>
#include <cstring>
#include <string>

#include "core/safetensors.h"
#include "fuzz/fuzz_check.h"

namespace {

using fedvar::TensorFile;
using fedvar::fuzz::check;

bool same_tensor(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.scalar_type() != b.scalar_type() || a.sizes() != b.sizes()) return false;
  const torch::Tensor ca = a.contiguous();
  const torch::Tensor cb = b.contiguous();
  return ca.nbytes() == cb.nbytes() &&
         (ca.nbytes() == 0 ||
          std::memcmp(ca.data_ptr(), cb.data_ptr(), ca.nbytes()) == 0);
}

void check_round_trip(const TensorFile& file) {
  fedvar::Result<std::string> bytes = fedvar::serialize_safetensors(file);
  check(bytes.ok(), "a parsed file does not serialise: " + bytes.status().message());
  fedvar::Result<TensorFile> again = fedvar::parse_safetensors(bytes.value());
  check(again.ok(), "a serialised file does not parse: " + again.status().message());
  check(again->metadata == file.metadata, "metadata changed in a round trip");
  check(again->tensors.size() == file.tensors.size(), "tensor count changed");
  for (const auto& [name, tensor] : file.tensors) {
    const auto it = again->tensors.find(name);
    check(it != again->tensors.end() && same_tensor(it->second, tensor),
          "tensor '" + name + "' changed in a round trip");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  fedvar::Result<TensorFile> file = fedvar::parse_safetensors(bytes);
  if (file.ok()) check_round_trip(file.value());
  return 0;
}
