// The server's answer to each thing a peer does: a hello, a join, an update,
// a message refused, a connection closed (server.cpp runs the rounds).
#include <utility>

#include "aggregator/server.h"
#include "core/log.h"
#include "core/stopwatch.h"
#include "protocol/auth.h"
#include "protocol/channel.h"

namespace fedvar::aggregator {
namespace {

// Rejections listed per round in the metrics; the rest are counted.
constexpr size_t kMaxListedRejections = 100;

}  // namespace

void Server::handle_message(const protocol::Inbound& inbound, RoundState* round_state) {
  const std::string& identity = inbound.identity;
  const std::string& refused = inbound.message.refused;
  if (inbound.closed) {  // no answer is possible
    if (!refused.empty() && reject_budget_.take(identity, Clock::now())) {
      spdlog::warn("server: {}", refused);
    }
    return handle_closed(identity, round_state);
  }
  if (!refused.empty()) return refuse(identity, refused, refused, round_state);
  const protocol::KeyForClient key_for = [this](std::string_view client_id) {
    return protocol::derive_client_key(options_.key, client_id);
  };
  const std::vector<std::string_view> frames(inbound.message.frames.begin(),
                                             inbound.message.frames.end());
  protocol::Received received = protocol::open_message(frames, key_for);
  if (!received.message.ok()) {
    const std::string& why = received.message.status().message();
    return refuse(identity, why, why, round_state);
  }
  protocol::Message& message = received.message.value();
  if (std::holds_alternative<protocol::Hello>(message)) {
    handle_hello(identity);
  } else if (const auto* join = std::get_if<protocol::Join>(&message)) {
    handle_join(identity, *join, round_state);
  } else if (const auto* update = std::get_if<protocol::Update>(&message)) {
    handle_update(identity, *update, round_state);
  } else {
    const std::string why = "a client may send only hello, join and update messages";
    refuse(identity, why, why, round_state);
  }
}

void Server::handle_hello(const std::string& identity) {
  if (!challenge_budget_.take(identity, Clock::now())) {
    ++unanswered_;
    return;
  }
  auto challenge = handshake_->challenge(identity);
  auto encoded = challenge.ok() ? protocol::encode_message(*challenge)
                                : Result<protocol::EncodedMessage>(challenge.status());
  const Status sent = encoded.ok() ? send(identity, *encoded, "") : encoded.status();
  if (!sent.ok()) spdlog::warn("server: could not send a challenge: {}", sent.message());
}

void Server::handle_join(const std::string& identity, const protocol::Join& join,
                         RoundState* round_state) {
  std::string why;
  const auto bound = client_on_.find(identity);
  if (const Status admitted = handshake_->admit(identity, join); !admitted.ok()) {
    why = admitted.message();
  } else if (join.num_samples > options_.max_samples) {
    why = "join claims " + std::to_string(join.num_samples) +
          " samples, more than the server's --max-samples " +
          std::to_string(options_.max_samples);
  } else if (bound != client_on_.end() && bound->second != join.client_id) {
    why = "this connection has joined as '" + bound->second + "'";
  }
  if (!why.empty()) {
    return refuse(identity, why, join.client_id + ": " + why, round_state);
  }
  auto key = protocol::derive_client_key(options_.key, join.client_id);
  if (!key.ok()) {
    spdlog::warn("server: {}", key.status().message());
    return;
  }
  auto& client = clients_[join.client_id];
  if (!client) client = std::make_unique<Client>();
  if (client->identity != identity) client_on_.erase(client->identity);  // it moved
  client->identity = identity;
  client->key = std::move(*key);
  client->num_samples = join.num_samples;
  client_on_[identity] = join.client_id;
  spdlog::info("server: client {} joined with {} samples ({} joined)", join.client_id,
               join.num_samples, clients_.size());
}

void Server::handle_update(const std::string& identity, const protocol::Update& update,
                           RoundState* round_state) {
  std::string reason;
  const auto it = clients_.find(update.client_id);
  if (it == clients_.end() || it->second->identity != identity) {
    reason = "client '" + update.client_id + "' has not joined on this connection";
  } else if (update.run_id != handshake_->run_id()) {
    reason = "update is for another run of the server";
  } else if (round_state == nullptr || update.round != round_state->round()) {
    reason = "update for round " + std::to_string(update.round) + ", but " +
             (round_state ? "round " + std::to_string(round_state->round()) + " is open"
                          : std::string("no round is open"));
  } else if (round_state->pending.count(update.client_id) == 0) {
    reason = "client was not selected for this round or already answered";
  } else if (update.num_samples > it->second->num_samples) {  // <= --max-samples
    reason = "update claims " + std::to_string(update.num_samples) +
             " samples, more than the " + std::to_string(it->second->num_samples) +
             " it joined with";
  } else if (Status stats = check_batchnorm_statistics(update.tensors); !stats.ok()) {
    reason = stats.message();
  } else {
    const auto start = Clock::now();
    const Status added = round_state->aggregation->add(
        {update.client_id, update.tensors, update.num_samples, 1.0});
    round_state->accumulate_s += seconds_since(start);
    if (added.ok()) {
      round_state->pending.erase(update.client_id);
      round_state->outcome->received.push_back(update.client_id);
      spdlog::info("round {}: update from {} ({} left)", round_state->round(),
                   update.client_id, round_state->pending.size());
      return;
    }
    reason = added.message();
  }
  refuse(identity, reason, update.client_id + ": " + reason, round_state);
}

void Server::handle_closed(const std::string& identity, RoundState* round_state) {
  handshake_->forget(identity);
  const auto bound = client_on_.find(identity);
  if (bound == client_on_.end()) return;
  const std::string id = bound->second;
  drop_client(id);
  spdlog::info("server: client {}'s connection closed, dropped ({} joined)", id,
               clients_.size());
  if (round_state != nullptr && round_state->pending.erase(id) > 0) {
    spdlog::warn("round {}: client {} is gone, dropped", round_state->round(), id);
    round_state->outcome->missing.push_back(id);
  }
}

void Server::drop_client(const std::string& id) {
  const auto it = clients_.find(id);
  if (it == clients_.end()) return;
  client_on_.erase(it->second->identity);
  clients_.erase(it);
}

void Server::refuse(const std::string& identity, const std::string& reason,
                    const std::string& rejection, RoundState* round_state) {
  if (round_state != nullptr) {
    ++round_state->outcome->rejected;
    auto& listed = round_state->outcome->rejections;
    if (listed.size() < kMaxListedRejections) {
      listed.push_back(rejection);
    } else {
      ++round_state->unlisted;
    }
  }
  if (!reject_budget_.take(identity, Clock::now())) {
    ++unanswered_;  // a peer refused this often gets no more answers for now
    return;
  }
  spdlog::warn("server: rejected a message: {}", reason);
  // Unsigned: a refused message has not shown whose it is, so no key of a
  // client it names may sign the answer.
  auto encoded = protocol::encode_message(protocol::Reject{reason});
  const Status sent = encoded.ok() ? send(identity, *encoded, "") : encoded.status();
  if (!sent.ok()) spdlog::warn("server: could not send the reject: {}", sent.message());
}

Status Server::send(const std::string& identity, protocol::EncodedMessage& message,
                    const std::string& key) {
  const Status sent = protocol::send_encoded(*router_, identity, message, key);
  if (!sent.ok()) ++dropped_sends_;
  return sent;
}

}  // namespace fedvar::aggregator
