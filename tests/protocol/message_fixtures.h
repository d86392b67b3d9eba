// Messages and checks shared by the protocol tests.
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstring>
#include <string>

#include "protocol/messages.h"

namespace fedvar::protocol::fixtures {

// A run id and a nonce of the sizes decode() wants.
inline const std::string kRunId(kRunIdBytes, 'r');
inline const std::string kNonce(kNonceBytes, 'n');

// A small state dict with a 0-dim I64 buffer, as ResNet's BatchNorm has.
inline TensorMap sample_state() {
  torch::manual_seed(0);
  TensorMap state;
  state["conv1.weight"] = torch::randn({4, 3, 3, 3});
  state["bn1.num_batches_tracked"] = torch::tensor(int64_t{7});
  state["bn1.running_mean"] = torch::randn({4});
  state["fc.bias"] = torch::randn({10}).to(torch::kFloat64);
  state["empty"] = torch::zeros({0, 3});
  return state;
}

inline void expect_bit_exact(const TensorMap& actual, const TensorMap& expected) {
  ASSERT_EQ(actual.size(), expected.size());
  for (const auto& [name, want] : expected) {
    SCOPED_TRACE(name);
    const auto it = actual.find(name);
    ASSERT_NE(it, actual.end());
    const torch::Tensor got = it->second;
    ASSERT_EQ(got.scalar_type(), want.scalar_type());
    ASSERT_EQ(got.sizes(), want.sizes());
    const torch::Tensor w = want.contiguous();
    ASSERT_TRUE(got.is_contiguous());
    if (w.nbytes() > 0) {
      EXPECT_EQ(std::memcmp(got.data_ptr(), w.data_ptr(), w.nbytes()), 0);
    }
  }
}

inline Message round_trip(const Message& message) {
  Result<std::string> bytes = encode(message);
  EXPECT_TRUE(bytes.ok()) << bytes.status().message();
  if (!bytes.ok()) return Shutdown{};
  Result<Message> decoded = decode(bytes.value());
  EXPECT_TRUE(decoded.ok()) << decoded.status().message();
  if (!decoded.ok()) return Shutdown{};
  EXPECT_EQ(kind_of(decoded.value()), kind_of(message));
  return decoded.value();
}

inline std::string encoded(const Message& message) {
  Result<std::string> bytes = encode(message);
  EXPECT_TRUE(bytes.ok()) << bytes.status().message();
  return bytes.ok() ? bytes.value() : std::string();
}

// `bytes` with the one occurrence of `from` replaced by `to`.
inline std::string patched(std::string bytes, const std::string& from,
                           const std::string& to) {
  const size_t at = bytes.find(from);
  EXPECT_NE(at, std::string::npos) << "pattern not in the encoding";
  if (at == std::string::npos) return bytes;
  EXPECT_EQ(bytes.find(from, at + 1), std::string::npos) << "pattern not unique";
  return bytes.replace(at, from.size(), to);
}

inline void expect_rejected(const std::string& bytes, const std::string& reason) {
  Result<Message> decoded = decode(bytes);
  ASSERT_FALSE(decoded.ok()) << "accepted; expected: " << reason;
  EXPECT_EQ(decoded.status().code(), Code::kInvalidArgument);
  EXPECT_NE(decoded.status().message().find(reason), std::string::npos)
      << decoded.status().message() << " does not contain " << reason;
}

inline Update small_update() {
  Update update;
  update.round = 3;
  update.client_id = "alice";
  update.num_samples = 5;
  update.tensors["w"] = torch::arange(6, torch::kFloat32).reshape({2, 3});
  update.run_id = kRunId;
  return update;
}

}  // namespace fedvar::protocol::fixtures
