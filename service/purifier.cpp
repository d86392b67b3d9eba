#include "service/purifier.h"

#include <cstdint>
#include <utility>

#include "core/safetensors.h"
#include "plugins/purify_state.h"
#include "plugins/registry.h"

namespace fedvar::service {

Purifier::Purifier(PurifierOptions options, plugins::DefenseContext base)
    : options_(std::move(options)), base_(std::move(base)) {}

Result<Purifier> Purifier::create(PurifierOptions options, plugins::DefenseContext base) {
  if (base.clean.size() == 0) return Status::InvalidArgument("the clean set is empty");
  FEDVAR_ASSIGN_OR_RETURN(auto probe, plugins::make_defense(options.defense));
  (void)probe;  // the default spec is checked once, here
  Purifier purifier(std::move(options), std::move(base));
  purifier.estimated_ = Normalization::estimate(purifier.base_.clean);
  if (!purifier.options_.normalize.empty()) {
    FEDVAR_ASSIGN_OR_RETURN(Normalization n,
                            purifier.parse_normalization(purifier.options_.normalize));
    FEDVAR_RETURN_IF_ERROR(n.check_channels(purifier.base_.clean.channels()));
    purifier.service_ = std::move(n);
  }
  return purifier;
}

Result<Normalization> Purifier::parse_normalization(const std::string& text) const {
  if (text == "estimate") return estimated_;
  return Normalization::parse(text);
}

Result<Purifier::Choice> Purifier::choose_normalization(
    const std::optional<std::string>& requested,
    const std::map<std::string, std::string>& metadata, int64_t channels) const {
  Choice choice;
  if (requested) {
    auto n = parse_normalization(*requested);
    if (!n.ok()) return n.status().with_context("the request's normalize");
    choice = {std::move(n).value(), "request"};
  } else if (auto it = metadata.find("normalize");
             it != metadata.end() && Normalization::parse(it->second).ok()) {
    // As fedvar purify reads a model file: metadata it cannot parse is ignored.
    choice = {Normalization::parse(it->second).value(), "model"};
  } else if (service_) {
    choice = {*service_, "service"};
  } else {
    choice = {Normalization::none(channels), "none"};
  }
  return choice;
}

Result<PurifyAnswer> Purifier::run(std::string_view model_bytes,
                                   const std::optional<std::string>& defense_spec,
                                   const std::optional<std::string>& normalize) const {
  try {
    auto file = parse_safetensors(std::string(model_bytes));
    if (!file.ok()) {
      return Status::InvalidArgument("the model is not a safetensors file: " +
                                     file.status().message());
    }
    FEDVAR_ASSIGN_OR_RETURN(
        auto defense, plugins::make_defense(defense_spec.value_or(options_.defense)));
    FEDVAR_ASSIGN_OR_RETURN(Choice norm, choose_normalization(normalize, file->metadata,
                                                              base_.clean.channels()));
    plugins::DefenseContext ctx = base_;
    ctx.normalization = norm.value;
    FEDVAR_ASSIGN_OR_RETURN(plugins::Purified purified,
                            plugins::purify_state(*defense, file->tensors, ctx));

    TensorFile out{std::move(purified.state), file->metadata};
    out.metadata["format"] = "pt";
    out.metadata["normalize"] = norm.value.to_string();
    out.metadata["purified_by"] = defense->name();
    PurifyAnswer answer;
    FEDVAR_ASSIGN_OR_RETURN(answer.model, serialize_safetensors(out));
    answer.report = std::move(purified.report);
    answer.report["normalization"] = {{"source", norm.source},
                                      {"value", norm.value.to_string()}};
    answer.report["clean_images"] = base_.clean.size();
    return answer;
  } catch (const std::exception& e) {
    return status_from_exception("purify", e);
  }
}

}  // namespace fedvar::service
