// ZmtpReader and ZmtpRouter: ZMTP 3.0 framing read by hand, bounded per
// message, and a libzmq DEALER talking to the router as to a ROUTER.
#include "protocol/zmtp.h"

#include <gtest/gtest.h>

#include <chrono>
#include <iterator>
#include <string>
#include <vector>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "protocol/zmtp_router.h"

namespace fedvar::protocol {
namespace {

// What a libzmq DEALER sends first: its greeting and READY.
std::string dealer_hello() { return zmtp_handshake("DEALER"); }

std::string message_bytes(const std::vector<std::string>& frames) {
  std::string out;
  for (size_t i = 0; i < frames.size(); ++i) {
    out += zmtp_frame_header(frames[i].size(), i + 1 < frames.size()) + frames[i];
  }
  return out;
}

TEST(ZmtpReaderTest, ReadsMessagesAfterTheHandshakeWhateverTheChunking) {
  const std::string big(300, 'b');  // a long frame (8-byte size)
  const std::string stream =
      dealer_hello() + message_bytes({"head", big, ""}) + message_bytes({"second"});
  for (size_t chunk : {size_t{1}, size_t{7}, stream.size()}) {
    SCOPED_TRACE(chunk);
    ZmtpReader reader({/*max_frames=*/3, /*max_bytes=*/1000});
    for (size_t at = 0; at < stream.size(); at += chunk) {
      ASSERT_TRUE(reader.feed(std::string_view(stream).substr(at, chunk)).ok());
    }
    EXPECT_TRUE(reader.ready());
    auto first = reader.pop();
    ASSERT_TRUE(first.has_value());
    EXPECT_EQ(first->frames, (std::vector<std::string>{"head", big, ""}));
    EXPECT_TRUE(first->refused.empty());
    auto second = reader.pop();
    ASSERT_TRUE(second.has_value());
    EXPECT_EQ(second->frames, std::vector<std::string>{"second"});
    EXPECT_FALSE(reader.pop().has_value());
  }
}

TEST(ZmtpReaderTest, RefusesAMessageOverItsLimitsAndDropsTheRest) {
  ZmtpReader reader({/*max_frames=*/3, /*max_bytes=*/100});
  ASSERT_TRUE(reader.feed(dealer_hello()).ok());
  ASSERT_TRUE(reader.feed(message_bytes({"a", "b", "c", "d"})).ok());
  ASSERT_TRUE(
      reader.feed(message_bytes({std::string(60, 'x'), std::string(60, 'y')})).ok());
  // A frame claiming 2^62 bytes is refused on its size, before any body;
  // whatever follows is that body, dropped as it comes.
  const std::string huge = "\x03" + std::string("\x40\0\0\0\0\0\0\0", 8);
  ASSERT_TRUE(reader.feed(huge).ok());
  ASSERT_TRUE(reader.feed(message_bytes({"dropped"})).ok());
  auto too_many = reader.pop();
  ASSERT_TRUE(too_many.has_value());
  EXPECT_NE(too_many->refused.find("at most 3 frames"), std::string::npos);
  EXPECT_TRUE(too_many->frames.empty());
  auto too_big = reader.pop();
  ASSERT_TRUE(too_big.has_value());
  EXPECT_NE(too_big->refused.find("at most 100 bytes"), std::string::npos);
  EXPECT_FALSE(reader.pop().has_value()) << "the 2^62-byte frame is still being dropped";
}

TEST(ZmtpReaderTest, RejectsWhatIsNotZmtp3WithNull) {
  ZmtpReader http({2, 100});
  EXPECT_FALSE(http.feed(std::string("GET / HTTP/1.1\r\n") + std::string(48, ' ')).ok());
  std::string curve = dealer_hello();
  curve.replace(12, 5, "CURVE");
  ZmtpReader secure({2, 100});
  EXPECT_FALSE(secure.feed(curve).ok());
  ZmtpReader early({2, 100});
  EXPECT_FALSE(early.feed(dealer_hello().substr(0, 64) + message_bytes({"x"})).ok());
}

// A command frame of size 0 (no name-size byte) is an error of the stream,
// before READY and after it, never an exception out of feed().
TEST(ZmtpReaderTest, AnEmptyCommandIsAnError) {
  const std::string empty_command("\x04\x00", 2);
  ZmtpReader before_ready({2, 100});
  const auto early = before_ready.feed(dealer_hello().substr(0, 64) + empty_command);
  EXPECT_FALSE(early.ok());
  EXPECT_NE(early.message().find("empty command"), std::string::npos);
  ZmtpReader after_ready({2, 100});
  ASSERT_TRUE(after_ready.feed(dealer_hello()).ok());
  EXPECT_FALSE(after_ready.feed(empty_command).ok());
}

// A DEALER's messages arrive whole and in order; an oversized one is refused
// without closing the connection; the router's sends reach the DEALER.
TEST(ZmtpRouterTest, TalksToALibzmqDealer) {
  zmq::context_t context;
  ZmtpRouter router(context);
  ASSERT_TRUE(
      router.bind("tcp://127.0.0.1:*", {{/*max_frames=*/3, /*max_bytes=*/20000}, 0})
          .ok());
  zmq::socket_t dealer(context, zmq::socket_type::dealer);
  dealer.set(zmq::sockopt::linger, 0);
  dealer.set(zmq::sockopt::rcvtimeo, 5000);
  dealer.connect(router.endpoint());
  const std::string big(15000, 'z');
  ASSERT_TRUE(dealer.send(zmq::buffer(std::string(30000, 'o')), zmq::send_flags::none));
  ASSERT_TRUE(dealer.send(zmq::buffer(std::string("hi")), zmq::send_flags::sndmore));
  ASSERT_TRUE(dealer.send(zmq::buffer(big), zmq::send_flags::none));

  std::vector<Inbound> got;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (got.size() < 2 && std::chrono::steady_clock::now() < deadline) {
    zmq::pollitem_t items[] = {{router.socket().handle(), 0, ZMQ_POLLIN, 0}};
    zmq::poll(items, 1, std::chrono::milliseconds(100));
    ASSERT_TRUE(router.read_available(64).ok());
    while (auto in = router.pop()) got.push_back(std::move(*in));
  }
  ASSERT_EQ(got.size(), 2u);
  EXPECT_NE(got[0].message.refused.find("at most 20000 bytes"), std::string::npos);
  EXPECT_FALSE(got[0].closed);
  EXPECT_EQ(got[1].message.frames, (std::vector<std::string>{"hi", big}));
  EXPECT_EQ(got[1].identity, got[0].identity);

  std::vector<zmq::message_t> reply;
  reply.emplace_back(std::string("a"));
  reply.emplace_back(big);
  reply.emplace_back(std::string(""));
  ASSERT_TRUE(router.send(got[1].identity, reply).ok());
  std::vector<zmq::message_t> received;
  ASSERT_TRUE(zmq::recv_multipart(dealer, std::back_inserter(received)));
  ASSERT_EQ(received.size(), 3u);
  EXPECT_EQ(received[0].to_string(), "a");
  EXPECT_EQ(received[1].to_string(), big);
  EXPECT_EQ(received[2].size(), 0u);
  std::vector<zmq::message_t> none;
  EXPECT_FALSE(router.send("no such peer", none).ok());
}

// A peer that closes its connection is reported once, as closed with no
// reason, after the messages it sent; a send to it then fails.
TEST(ZmtpRouterTest, ReportsAConnectionThePeerClosed) {
  zmq::context_t context;
  ZmtpRouter router(context);
  ASSERT_TRUE(router.bind("tcp://127.0.0.1:*", {{3, 20000}, 0}).ok());
  {
    zmq::socket_t dealer(context, zmq::socket_type::dealer);
    dealer.set(zmq::sockopt::linger, 5000);
    dealer.connect(router.endpoint());
    ASSERT_TRUE(dealer.send(zmq::buffer(std::string("bye")), zmq::send_flags::none));
  }  // closed once its message is out
  std::vector<Inbound> got;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (got.size() < 2 && std::chrono::steady_clock::now() < deadline) {
    zmq::pollitem_t items[] = {{router.socket().handle(), 0, ZMQ_POLLIN, 0}};
    zmq::poll(items, 1, std::chrono::milliseconds(100));
    ASSERT_TRUE(router.read_available(64).ok());
    while (auto in = router.pop()) got.push_back(std::move(*in));
  }
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].message.frames, std::vector<std::string>{"bye"});
  EXPECT_FALSE(got[0].closed);
  EXPECT_TRUE(got[1].closed);
  EXPECT_TRUE(got[1].message.refused.empty()) << got[1].message.refused;
  EXPECT_EQ(got[1].identity, got[0].identity);
  std::vector<zmq::message_t> reply;
  reply.emplace_back(std::string("late"));
  EXPECT_FALSE(router.send(got[0].identity, reply).ok());
  zmq::pollitem_t items[] = {{router.socket().handle(), 0, ZMQ_POLLIN, 0}};
  zmq::poll(items, 1, std::chrono::milliseconds(200));
  ASSERT_TRUE(router.read_available(64).ok());
  EXPECT_FALSE(router.pop().has_value()) << "a closed connection is reported once";
}

}  // namespace
}  // namespace fedvar::protocol
