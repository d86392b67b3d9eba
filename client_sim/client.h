// A simulated federated client: a ZeroMQ DEALER that joins the server (a
// hello, then a join signing the server's challenge), trains the global model
// of each round task of that run on its own shard (SGD, the task's epochs /
// lr / batch) and sends back its weights, until told to shut down.
// A malicious client poisons its batches in the rounds its Attack names.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "client_sim/attack.h"
#include "core/dataset.h"
#include "core/normalization.h"
#include "core/status.h"

namespace fedvar::client_sim {

struct ClientOptions {
  std::string endpoint;         // the server's, e.g. tcp://127.0.0.1:5555
  std::string client_id;        // unique among the server's clients
  std::string key;              // this client's key: protocol::derive_client_key
  Normalization normalization;  // the model's input normalization
  torch::Device device = torch::kCPU;
  std::optional<Attack> attack;  // none = honest
  uint64_t seed = 0;             // mixed with each task's seed for shuffling
  double idle_timeout_s = 900;   // give up when the server says nothing this long
};

// Runs until the server's Shutdown (Ok). kUnavailable when the server stays
// silent for idle_timeout_s or stop was requested; kInvalidArgument when a
// task's model does not fit the shard (channels) or a training error occurs.
Status run_client(const ClientOptions& options, const Dataset& shard);

}  // namespace fedvar::client_sim
