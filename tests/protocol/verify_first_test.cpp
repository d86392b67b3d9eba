// The server's receive verifies a message's tag before it decodes the
// tensors (issue #20): a forged update is refused as unauthenticated, not
// after its tensors were copied and checked.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <string>
#include <zmq.hpp>

#include "protocol/auth.h"
#include "protocol/channel.h"

namespace fedvar::protocol {
namespace {

const std::string kKey = "verify-first-federation-key";

TEST(VerifyFirstTest, AForgedUpdateIsRefusedBeforeItsTensorsAreDecoded) {
  zmq::context_t context;
  zmq::socket_t router(context, zmq::socket_type::router);
  router.set(zmq::sockopt::linger, 0);
  router.set(zmq::sockopt::rcvtimeo, 10000);
  router.bind("tcp://127.0.0.1:*");
  zmq::socket_t dealer(context, zmq::socket_type::dealer);
  dealer.set(zmq::sockopt::linger, 0);
  dealer.connect(router.get(zmq::sockopt::last_endpoint));
  const KeyForClient key_for = [](std::string_view id) {
    return derive_client_key(kKey, id);
  };

  // A NaN that decoding would refuse, under a key that is not client-1's:
  // the refusal must be the authentication, which comes first.
  Update forged{1, "client-1", 10, {}, std::string(kRunIdBytes, 'r')};
  forged.tensors["fc.weight"] =
      torch::full({4, 4}, std::numeric_limits<float>::quiet_NaN());
  ASSERT_TRUE(
      send_message(dealer, forged, derive_client_key(kKey, "client-2").value()).ok());
  auto received = receive_message(router, key_for, /*with_identity=*/true);
  ASSERT_TRUE(received.ok()) << received.status().message();
  EXPECT_EQ(received->client_id, "client-1");
  ASSERT_FALSE(received->message.ok());
  EXPECT_NE(received->message.status().message().find("authentication failed"),
            std::string::npos)
      << received->message.status().message();

  // Signed by client-1 itself, the same update reaches the decoder, which
  // refuses the NaN.
  ASSERT_TRUE(
      send_message(dealer, forged, derive_client_key(kKey, "client-1").value()).ok());
  received = receive_message(router, key_for, /*with_identity=*/true);
  ASSERT_TRUE(received.ok());
  ASSERT_FALSE(received->message.ok());
  EXPECT_NE(received->message.status().message().find("non-finite"), std::string::npos)
      << received->message.status().message();
}

}  // namespace
}  // namespace fedvar::protocol
