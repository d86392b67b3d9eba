// safetensors: read and write the format of huggingface/safetensors, byte for
// byte what PyTorch's writer produces: an 8-byte little-endian header length,
// a JSON header {name: {dtype, shape, data_offsets}, "__metadata__": {..}},
// then the raw little-endian tensor bytes.
#pragma once

#include <torch/types.h>

#include <map>
#include <string>
#include <vector>

#include "core/file_io.h"
#include "core/status.h"

namespace fedvar {

// Tensors by name (ordered, as the format sorts names) plus string metadata.
struct TensorFile {
  std::map<std::string, torch::Tensor> tensors;
  std::map<std::string, std::string> metadata;
};

// Reads and validates a whole regular file (else kInvalidArgument). Dtypes:
// F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL. Any structural problem is kDataLoss
// naming it (values cut short); a missing file is kNotFound. CPU tensors.
Result<TensorFile> read_safetensors(const std::string& path);

// Parses an in-memory image of a file (what read_safetensors does after I/O);
// a header nested deeper than a valid one can be is refused before parsing.
Result<TensorFile> parse_safetensors(const std::string& bytes);

// Serialises tensors (moved to CPU, made contiguous) to the format's bytes, in
// the reference writer's layout ("__metadata__" left out when empty). An
// undefined tensor, an unsupported dtype or a reserved name: kInvalidArgument.
Result<std::string> serialize_safetensors(const TensorFile& file);

// Writes atomically: a temp file in the same directory, fsync, rename.
Status write_safetensors(const std::string& path, const TensorFile& file);

}  // namespace fedvar
