// encode_frames / decode_frames: the zero-copy multi-frame form.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>
#include <string_view>
#include <vector>
#include <zmq.hpp>

#include "protocol/messages.h"
#include "tests/protocol/message_fixtures.h"

namespace fedvar::protocol {
namespace {

using namespace std::string_literals;
using namespace fedvar::protocol::fixtures;

std::vector<std::string_view> views(const std::vector<zmq::message_t>& frames) {
  std::vector<std::string_view> out;
  for (const zmq::message_t& f : frames) out.push_back(f.to_string_view());
  return out;
}

TEST(FramesTest, RoundTripBitExactWithOneFramePerTensor) {
  Update update;
  update.round = 2;
  update.client_id = "carol";
  update.num_samples = 10;
  update.run_id = kRunId;
  update.tensors = sample_state();
  Result<std::vector<zmq::message_t>> frames = encode_frames(update);
  ASSERT_TRUE(frames.ok()) << frames.status().message();
  ASSERT_EQ(frames.value().size(), 1 + update.tensors.size());
  // The tensor frames alias the tensors' memory: no copy was made.
  EXPECT_EQ(frames.value()[1].data(), update.tensors.begin()->second.data_ptr());
  Result<Message> decoded = decode_frames(views(frames.value()));
  ASSERT_TRUE(decoded.ok()) << decoded.status().message();
  expect_bit_exact(std::get<Update>(decoded.value()).tensors, update.tensors);
  // Frames without tensors: just the header.
  Result<std::vector<zmq::message_t>> join =
      encode_frames(Join{"carol", 10, kRunId, kNonce});
  ASSERT_TRUE(join.ok());
  EXPECT_EQ(join.value().size(), 1u);
  ASSERT_TRUE(decode_frames(views(join.value())).ok());
}

TEST(FramesTest, OutlivesTheTensorsItWasBuiltFrom) {
  Result<std::vector<zmq::message_t>> frames = encode_frames(small_update());
  ASSERT_TRUE(frames.ok());
  Result<Message> decoded = decode_frames(views(frames.value()));
  ASSERT_TRUE(decoded.ok()) << decoded.status().message();
  EXPECT_TRUE(torch::equal(std::get<Update>(decoded.value()).tensors.at("w"),
                           small_update().tensors.at("w")));
}

TEST(FramesTest, RejectsMismatchedFrames) {
  Update two = small_update();
  two.tensors["x"] = torch::ones({3});
  Result<std::vector<zmq::message_t>> frames = encode_frames(two);
  ASSERT_TRUE(frames.ok());
  std::vector<std::string_view> v = views(frames.value());
  const auto rejected = [](const std::vector<std::string_view>& f,
                           const std::string& reason) {
    Result<Message> decoded = decode_frames(f);
    ASSERT_FALSE(decoded.ok()) << reason;
    EXPECT_NE(decoded.status().message().find(reason), std::string::npos)
        << decoded.status().message();
  };
  rejected({}, "0 frames");
  rejected({v[0], v[1]}, "data is not the index of an unused frame");
  rejected({v[0], v[1], v[2], v[2]}, "frame 3 is not used");
  rejected({v[0], v[2], v[1]}, "shape needs");
  const std::string header(v[0]);
  rejected({patched(header,
                    "\xa4"
                    "data"
                    "\x02"s,
                    "\xa4"
                    "data"
                    "\x01"s),
            v[1], v[2]},
           "data is not the index of an unused frame");
  // A single-frame decode() refuses frame indices, decode_frames refuses bins.
  rejected({encoded(two)}, "data is not the index");
  expect_rejected(header, "data is not bin");
}

}  // namespace
}  // namespace fedvar::protocol
