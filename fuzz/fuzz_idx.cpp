// Fuzzes read_idx (core/idx.h) with whole files, raw or gzip: any input is a
// tensor that matches its header or a Status, within the memory the fuzzer
// allows (-rss_limit_mb).
#include <torch/types.h>

#include <cstdint>

#include "core/idx.h"
#include "fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const fedvar::fuzz::ScratchFile input("idx");
  if (!input.write(data, size)) return 0;
  fedvar::Result<torch::Tensor> tensor = fedvar::read_idx(input.path());
  if (!tensor.ok()) return 0;
  const torch::Tensor& t = tensor.value();
  fedvar::fuzz::check(t.scalar_type() == torch::kUInt8, "an IDX tensor is not uint8");
  fedvar::fuzz::check(t.dim() >= 1 && t.dim() <= 4, "an IDX tensor has 0 or > 4 dims");
  fedvar::fuzz::check(t.is_contiguous(), "an IDX tensor is not contiguous");
  return 0;
}
