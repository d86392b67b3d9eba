// Between the C interface's tensor descriptions (fedvar_tensor_t) and
// torch tensors: checked reads into a state dict, writes back in the
// caller's dtypes. Internal to libfedvar.
#pragma once

#include <torch/types.h>

#include <string>

#include "core/state_dict.h"
#include "core/status.h"
#include "fedvar/fedvar.h"

namespace fedvar::capi {

// The torch dtype of a fedvar_dtype; kInvalidArgument for an unknown value.
Result<torch::ScalarType> torch_dtype(int dtype);
// The fedvar_dtype of a torch dtype; kInvalidArgument for one the C
// interface lacks.
Result<fedvar_dtype> c_dtype(torch::ScalarType type);

// The caller's tensors as a state dict: float32 and int64 ones as views of
// the caller's memory (valid during the call only), others converted to
// float32 or int64.
// A null pointer, an empty or repeated name, a negative dimension, an
// unknown dtype is kInvalidArgument naming the tensor. A BatchNorm whose
// num_batches_tracked is left out gets a zero one.
Result<StateDict> read_tensors(const fedvar_tensor_t* tensors, size_t count);

// Checks that `out` can receive `state` (every name present, equal shapes).
Status check_writable(const StateDict& state, const fedvar_tensor_t* out, size_t count);
// Writes state[name] into each out tensor, converted to its dtype. Call
// check_writable first: this cannot fail after it.
void write_tensors(const StateDict& state, fedvar_tensor_t* out, size_t count);

}  // namespace fedvar::capi
