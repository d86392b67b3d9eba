#include "protocol/messages.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <limits>
#include <random>
#include <string>

#include "tests/protocol/message_fixtures.h"

namespace fedvar::protocol {
namespace {

using namespace std::string_literals;
using namespace fedvar::protocol::fixtures;

TEST(MessagesTest, JoinRoundTrips) {
  const Message m = round_trip(Join{"client-1", 1234, kRunId, kNonce});
  const Join& join = std::get<Join>(m);
  EXPECT_EQ(join.client_id, "client-1");
  EXPECT_EQ(join.num_samples, 1234);
  EXPECT_EQ(join.run_id, kRunId);
  EXPECT_EQ(join.nonce, kNonce);
}

TEST(MessagesTest, HelloAndChallengeRoundTrip) {
  EXPECT_TRUE(std::holds_alternative<Hello>(round_trip(Hello{})));
  const Message m = round_trip(Challenge{kRunId, kNonce});
  EXPECT_EQ(std::get<Challenge>(m).run_id, kRunId);
  EXPECT_EQ(std::get<Challenge>(m).nonce, kNonce);
  EXPECT_TRUE(is_unsigned_kind(MessageKind::kHello));
  EXPECT_TRUE(is_unsigned_kind(MessageKind::kChallenge));
  EXPECT_TRUE(is_unsigned_kind(MessageKind::kReject));
  for (MessageKind signed_kind : {MessageKind::kJoin, MessageKind::kRoundTask,
                                  MessageKind::kUpdate, MessageKind::kShutdown}) {
    EXPECT_FALSE(is_unsigned_kind(signed_kind)) << kind_name(signed_kind);
  }
}

TEST(MessagesTest, RoundTaskRoundTripsBitExact) {
  RoundTask task;
  task.round = 17;
  task.run_id = kRunId;
  task.tensors = sample_state();
  task.config = {/*epochs=*/2,
                 /*lr=*/0.05,
                 /*batch_size=*/32,
                 /*seed=*/std::numeric_limits<uint64_t>::max(),
                 /*momentum=*/0.9,
                 /*weight_decay=*/5e-4};
  const Message m = round_trip(task);
  const RoundTask& got = std::get<RoundTask>(m);
  EXPECT_EQ(got.round, 17);
  EXPECT_EQ(got.run_id, kRunId);
  EXPECT_EQ(got.config.epochs, 2);
  EXPECT_EQ(got.config.lr, 0.05);
  EXPECT_EQ(got.config.batch_size, 32);
  EXPECT_EQ(got.config.seed, std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(got.config.momentum, 0.9);
  EXPECT_EQ(got.config.weight_decay, 5e-4);
  expect_bit_exact(got.tensors, task.tensors);
  EXPECT_EQ(got.tensors.at("bn1.num_batches_tracked").dim(), 0);
}

TEST(MessagesTest, UpdateRoundTripsBitExact) {
  Update update;
  update.round = 0;
  update.client_id = "bob";
  update.num_samples = 60000;
  update.run_id = kRunId;
  update.tensors = sample_state();
  // A non-contiguous view is sent as its values.
  update.tensors["t"] = torch::randn({3, 5}).t();
  const Message m = round_trip(update);
  const Update& got = std::get<Update>(m);
  EXPECT_EQ(got.round, 0);
  EXPECT_EQ(got.client_id, "bob");
  EXPECT_EQ(got.num_samples, 60000);
  EXPECT_EQ(got.run_id, kRunId);
  expect_bit_exact(got.tensors, update.tensors);
}

TEST(MessagesTest, EveryDtypeRoundTrips) {
  Update update = small_update();
  for (torch::ScalarType type : {torch::kBool, torch::kUInt8, torch::kInt8, torch::kInt16,
                                 torch::kInt32, torch::kInt64, torch::kFloat16,
                                 torch::kBFloat16, torch::kFloat32, torch::kFloat64}) {
    update.tensors[c10::toString(type)] = torch::arange(4).reshape({2, 2}).to(type);
  }
  expect_bit_exact(std::get<Update>(round_trip(update)).tensors, update.tensors);
}

TEST(MessagesTest, RejectAndShutdownRoundTrip) {
  EXPECT_EQ(std::get<Reject>(round_trip(Reject{"round 3 is over"})).reason,
            "round 3 is over");
  EXPECT_EQ(std::get<Shutdown>(round_trip(Shutdown{kRunId})).run_id, kRunId);
}

TEST(MessagesTest, EncodeRejectsUndefinedAndUnsupportedTensors) {
  Update update = small_update();
  update.tensors["x"] = torch::Tensor();
  EXPECT_FALSE(encode(update).ok());
  update.tensors["x"] = torch::zeros({2}, torch::kComplexFloat);
  EXPECT_FALSE(encode(update).ok());
}

TEST(MessagesTest, RejectsBadFieldValues) {
  expect_rejected(encoded(Join{"", 5, kRunId, kNonce}), "client_id is empty");
  expect_rejected(
      encoded(Join{std::string(kMaxClientIdBytes + 1, 'a'), 5, kRunId, kNonce}),
      "client_id is longer");
  expect_rejected(encoded(Join{"alice", -1, kRunId, kNonce}),
                  "num_samples must be positive");
  Update update = small_update();
  update.num_samples = -5;
  expect_rejected(encoded(update), "num_samples must be positive");
  update = small_update();
  update.round = -1;
  expect_rejected(encoded(update), "round is negative");
  update = small_update();
  update.client_id.clear();
  expect_rejected(encoded(update), "client_id is empty");
  // Run ids and nonces have exactly their size.
  update = small_update();
  update.run_id.clear();
  expect_rejected(encoded(update), "run_id has 0 bytes, expected 16");
  expect_rejected(encoded(Join{"alice", 5, kRunId + "x", kNonce}),
                  "run_id has 17 bytes, expected 16");
  expect_rejected(encoded(Join{"alice", 5, kRunId, "short"}),
                  "nonce has 5 bytes, expected 16");
  expect_rejected(encoded(Challenge{kRunId, ""}), "nonce has 0 bytes");
  expect_rejected(encoded(Shutdown{}), "run_id has 0 bytes");
}

TEST(MessagesTest, RejectsBadTrainingConfig) {
  const auto rejected = [](TrainingConfig config, const std::string& reason) {
    RoundTask task;
    task.run_id = kRunId;
    task.config = config;
    expect_rejected(encoded(task), reason);
  };
  TrainingConfig c;
  c.epochs = 0;
  rejected(c, "epochs must be positive");
  c = {};
  c.lr = -0.1;
  rejected(c, "lr must be positive");
  c = {};
  c.lr = std::numeric_limits<double>::quiet_NaN();
  rejected(c, "lr is not finite");
  c = {};
  c.batch_size = 0;
  rejected(c, "batch_size must be positive");
  c = {};
  c.momentum = 1.0;
  rejected(c, "momentum must be in [0, 1)");
  c = {};
  c.weight_decay = -1;
  rejected(c, "weight_decay is negative");
}

TEST(MessagesTest, RejectsNonFiniteTensorValues) {
  Update update = small_update();
  update.tensors["w"][0][1] = std::numeric_limits<float>::quiet_NaN();
  expect_rejected(encoded(update), "non-finite");
  update = small_update();
  update.tensors["w"][1][2] = -std::numeric_limits<float>::infinity();
  expect_rejected(encoded(update), "non-finite");
}

TEST(MessagesTest, RejectsWrongVersionAndUnknownKind) {
  const std::string bytes = encoded(Join{"alice", 5, kRunId, kNonce});
  expect_rejected(patched(bytes,
                          "\xa7"
                          "version"
                          "\x03"s,
                          "\xa7"
                          "version"
                          "\x02"s),
                  "protocol version 2, expected 3");
  expect_rejected(patched(bytes,
                          "\xa4"
                          "kind"
                          "\x01"s,
                          "\xa4"
                          "kind"
                          "\x08"s),
                  "unknown message kind 8");
  expect_rejected(patched(bytes,
                          "\xa4"
                          "kind"
                          "\x01"s,
                          "\xa4"
                          "kind"
                          "\x09"s),
                  "unknown message kind 9");
  expect_rejected(patched(bytes,
                          "\xa4"
                          "kind"
                          "\x01"s,
                          "\xa4"
                          "kind"
                          "\x00"s),
                  "unknown message kind 0");
}

TEST(MessagesTest, RejectsMissingMistypedAndUnexpectedFields) {
  const std::string join = encoded(Join{"alice", 5, kRunId, kNonce});
  expect_rejected(patched(join,
                          "\xa9"
                          "client_id"s,
                          "\xa9"
                          "client_iX"s),
                  "missing field 'client_id'");
  expect_rejected(patched(join,
                          "\xab"
                          "num_samples"
                          "\x05"s,
                          "\xab"
                          "num_samples"
                          "\xc0"s),
                  "num_samples is not a 64-bit integer");
  expect_rejected(patched(join,
                          "\xa5"
                          "alice"s,
                          "\x07"s),
                  "client_id is not a string");
  // A Hello map grown by one unknown entry.
  std::string hello = encoded(Hello{});
  ASSERT_EQ(hello[0], '\x82');
  hello[0] = '\x83';
  expect_rejected(hello +
                      "\xa5"
                      "extra"
                      "\x01"s,
                  "unexpected field 'extra'");
  expect_rejected(encoded(Hello{}) + "\x00"s, "trailing bytes");
  expect_rejected(patched(join,
                          "\xa5"
                          "nonce"
                          "\xc4"s,
                          "\xa5"
                          "nonce"
                          "\xd9"s),
                  "nonce is not bin");
}

TEST(MessagesTest, RejectsBadTensors) {
  const std::string bytes = encoded(small_update());
  expect_rejected(patched(bytes,
                          "\xa3"
                          "F32"s,
                          "\xa3"
                          "F99"s),
                  "unknown dtype 'F99'");
  expect_rejected(patched(bytes,
                          "\xa5"
                          "shape"
                          "\x92\x02\x03"s,
                          "\xa5"
                          "shape"
                          "\x92\x02\x04"s),
                  "shape needs 32 bytes but data has 24");
  expect_rejected(patched(bytes,
                          "\xa5"
                          "shape"
                          "\x92\x02\x03"s,
                          "\xa5"
                          "shape"
                          "\x92\xff\x03"s),
                  "negative dim");
  expect_rejected(patched(bytes,
                          "\xa4"
                          "data"
                          "\xc4"s,
                          "\xa4"
                          "data"
                          "\xd9"s),
                  "data is not bin");
  Update two = small_update();
  two.tensors["x"] = two.tensors["w"].clone();
  expect_rejected(patched(encoded(two),
                          "\xa4"
                          "name"
                          "\xa1"
                          "x"s,
                          "\xa4"
                          "name"
                          "\xa1"
                          "w"s),
                  "repeats tensor 'w'");
}

TEST(MessagesTest, TruncatedOrCorruptBytesNeverCrash) {
  Update update = small_update();
  update.tensors["bn.num_batches_tracked"] = torch::tensor(int64_t{3});
  const std::string bytes = encoded(update);
  for (size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_FALSE(decode(bytes.substr(0, n)).ok()) << "truncated to " << n;
  }
  std::mt19937 rng(1234);
  std::uniform_int_distribution<size_t> position(0, bytes.size() - 1);
  std::uniform_int_distribution<int> byte(0, 255);
  for (int trial = 0; trial < 3000; ++trial) {
    std::string corrupt = bytes;
    const int flips = 1 + trial % 4;
    for (int i = 0; i < flips; ++i) {
      corrupt[position(rng)] = static_cast<char>(byte(rng));
    }
    Result<Message> decoded = decode(corrupt);
    if (!decoded.ok()) {
      EXPECT_EQ(decoded.status().code(), Code::kInvalidArgument);
    }
  }
  for (int trial = 0; trial < 1000; ++trial) {
    std::string garbage(static_cast<size_t>(byte(rng)), '\0');
    for (char& c : garbage) c = static_cast<char>(byte(rng));
    if (!garbage.empty()) garbage[0] = static_cast<char>(0x80 | (trial % 16));
    (void)decode(garbage).ok();
  }
}

TEST(ValidateAgainstTest, AcceptsMatchingAndNamesEachDifference) {
  const TensorMap global = sample_state();
  TensorMap update = sample_state();
  EXPECT_TRUE(validate_against(update, global).ok());

  const auto rejected = [&](const TensorMap& u, const std::string& reason) {
    const Status st = validate_against(u, global);
    ASSERT_FALSE(st.ok()) << reason;
    EXPECT_NE(st.message().find(reason), std::string::npos) << st.message();
  };
  TensorMap missing = global;
  missing.erase("fc.bias");
  rejected(missing, "missing tensor 'fc.bias'");
  TensorMap extra = global;
  extra["fc.extra"] = torch::zeros({1});
  rejected(extra, "unexpected tensor 'fc.extra'");
  TensorMap shape = global;
  shape["conv1.weight"] = torch::zeros({4, 3, 3, 2});
  rejected(shape, "tensor 'conv1.weight' has shape");
  TensorMap dtype = global;
  dtype["bn1.num_batches_tracked"] = torch::tensor(7.0f);
  rejected(dtype, "tensor 'bn1.num_batches_tracked' has dtype");
}

}  // namespace
}  // namespace fedvar::protocol
