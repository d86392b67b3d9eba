// The one place where fedvar meets the differences between the libtorch
// versions it builds with: Debian's 1.13 and a PyTorch wheel's 2.x. Code that
// touches an API which changed between them uses the names below. (The build
// side, C++20 from 2.13 on and the wheel's CUDA libraries, is in
// cmake/fedvar_torch.cmake.)
#pragma once

#include <torch/version.h>

#include <optional>

// True when the libtorch being compiled against is at least MAJOR.MINOR.
#define FEDVAR_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) ||         \
   (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

#if !FEDVAR_TORCH_AT_LEAST(2, 2)
#include <c10/util/Optional.h>
#endif

namespace fedvar {

// The optional type of libtorch's signatures and options (Tensor::sort's
// `stable`, BatchNormOptions::momentum): c10::optional, a type of its own,
// before 2.2; std::optional from 2.2 on, where c10::optional is a deprecated
// alias.
#if FEDVAR_TORCH_AT_LEAST(2, 2)
template <typename T>
using TorchOptional = std::optional<T>;
inline constexpr std::nullopt_t kTorchNullopt = std::nullopt;
#else
template <typename T>
using TorchOptional = c10::optional<T>;
inline constexpr c10::nullopt_t kTorchNullopt = c10::nullopt;
#endif

}  // namespace fedvar
