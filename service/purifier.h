// One defend request's work, apart from any socket: a model's safetensors
// bytes in, the purified model's bytes and the defense's report out, with
// the clean set, device and seed the service was started with.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "core/normalization.h"
#include "core/status.h"
#include "plugins/defense.h"

namespace fedvar::service {

struct PurifierOptions {
  // The defense spec ("name:key=value,...") of a request that names none.
  std::string defense = "vardefense";
  // The service's --normalize: "" (none, x/255), MEAN,STD per channel, or
  // "estimate" (from the clean set, once). Used for a request that gives no
  // normalization and a model whose metadata has none.
  std::string normalize;
};

// A purified model, as the service sends it back.
struct PurifyAnswer {
  std::string model;      // safetensors bytes: the input's names and metadata, plus
                          // "normalize" and "purified_by"
  nlohmann::json report;  // Defense::apply's report plus "normalization"
                          // {"source": request|model|service|none, "value"}
                          // and "clean_images"
};

class Purifier {
 public:
  // `base` holds what every request runs with (clean set, device, seed,
  // progress). A bad default spec or --normalize, or an empty clean set, is
  // kInvalidArgument.
  static Result<Purifier> create(PurifierOptions options, plugins::DefenseContext base);

  // Purifies the model in `model_bytes` with `defense` (else the default) and
  // the normalization chosen as PurifierOptions says, `normalize` first.
  // Never throws; a bad request (not safetensors, not a ResNet18 fitting the
  // clean set, an unknown defense or option, a bad normalization) is
  // kInvalidArgument, a failure while purifying another code. Const and
  // re-entrant, but meant for one request at a time (libtorch's threads).
  Result<PurifyAnswer> run(std::string_view model_bytes,
                           const std::optional<std::string>& defense,
                           const std::optional<std::string>& normalize) const;

  const plugins::DefenseContext& context() const { return base_; }

 private:
  Purifier(PurifierOptions options, plugins::DefenseContext base);

  struct Choice {
    Normalization value;
    std::string source;  // request, model, service or none
  };
  Result<Choice> choose_normalization(const std::optional<std::string>& requested,
                                      const std::map<std::string, std::string>& metadata,
                                      int64_t channels) const;
  // "estimate" or a MEAN,STD text.
  Result<Normalization> parse_normalization(const std::string& text) const;

  PurifierOptions options_;
  plugins::DefenseContext base_;
  Normalization estimated_;               // of the clean set
  std::optional<Normalization> service_;  // from options_.normalize
};

}  // namespace fedvar::service
