// libfedvar's C interface (include/fedvar/fedvar.h): every entry point
// catches everything and turns it into a fedvar_code and a message.
#include "fedvar/fedvar.h"

#include <torch/torch.h>

#include <cmath>
#include <memory>
#include <string>

#include "capi/c_errors.h"
#include "capi/c_tensors.h"
#include "core/device.h"
#include "core/version.h"
#include "plugins/purify_state.h"
#include "plugins/registry.h"

struct fedvar_defense_t {
  std::unique_ptr<fedvar::plugins::Defense> defense;
  fedvar::plugins::DefenseContext ctx;
  bool normalization_given = false;
};

namespace fedvar::capi {
namespace {

// What both clean-set setters check first.
Status check_clean_args(const fedvar_defense_t* d, const void* images, const int64_t* labels,
                        int64_t n, int64_t c, int64_t h, int64_t w) {
  FEDVAR_RETURN_IF_ERROR(need(d, "defense"));
  FEDVAR_RETURN_IF_ERROR(need(images, "images"));
  FEDVAR_RETURN_IF_ERROR(need(labels, "labels"));
  if (n <= 0 || c <= 0 || h <= 0 || w <= 0) {
    return Status::InvalidArgument("clean set: n, c, h and w must be positive");
  }
  if (c > 64 || h > 4096 || w > 4096 || n > (int64_t{1} << 40) / (c * h * w)) {
    return Status::InvalidArgument("clean set: the shape is too large");
  }
  return Status::Ok();
}

Status set_clean(fedvar_defense_t* d, torch::Tensor images, const int64_t* labels,
                 int64_t n) {
  Dataset clean;
  clean.images = std::move(images);
  clean.labels = torch::from_blob(const_cast<int64_t*>(labels), {n}, torch::kInt64).clone();
  clean.num_classes = clean.labels.max().item<int64_t>() + 1;
  if (clean.labels.min().item<int64_t>() < 0) {
    return Status::InvalidArgument("clean set: labels must be >= 0");
  }
  d->ctx.clean = std::move(clean);
  return Status::Ok();
}

Status purify(fedvar_defense_t* d, const fedvar_tensor_t* model, fedvar_tensor_t* out,
              size_t count, char** report_json) {
  FEDVAR_RETURN_IF_ERROR(need(d, "defense"));
  if (d->ctx.clean.size() == 0) {
    return Status::FailedPrecondition("no clean set: call fedvar_defense_set_clean_* first");
  }
  FEDVAR_ASSIGN_OR_RETURN(auto state, read_tensors(model, count));
  // The purified state has the input's names and shapes (the load is
  // strict): the output is checked against it before the defense runs.
  FEDVAR_RETURN_IF_ERROR(check_writable(state, out, count));
  plugins::DefenseContext ctx = d->ctx;
  if (!d->normalization_given) ctx.normalization = Normalization::none(ctx.clean.channels());
  FEDVAR_ASSIGN_OR_RETURN(auto purified, plugins::purify_state(*d->defense, state, ctx));
  std::string text;
  if (report_json != nullptr) text = purified.report.dump();
  write_tensors(purified.state, out, count);
  if (report_json != nullptr) *report_json = copy_string(text);
  return Status::Ok();
}

}  // namespace
}  // namespace fedvar::capi

using fedvar::Status;
using namespace fedvar::capi;

extern "C" {

const char* fedvar_version(void) { return FEDVAR_VERSION; }

void fedvar_free(void* ptr) { std::free(ptr); }

fedvar_code fedvar_defenses_json(char** json_out, char** errptr) {
  return guarded("fedvar_defenses_json", errptr, [&] {
    FEDVAR_RETURN_IF_ERROR(need(json_out, "json_out"));
    nlohmann::json list = nlohmann::json::array();
    for (const auto& info : fedvar::plugins::defense_catalog()) {
      list.push_back({{"name", info.name}, {"summary", info.summary}, {"options", info.options}});
    }
    *json_out = copy_string(list.dump());
    return Status::Ok();
  });
}

fedvar_code fedvar_defense_create(const char* spec, fedvar_defense_t** out, char** errptr) {
  return guarded("fedvar_defense_create", errptr, [&] {
    FEDVAR_RETURN_IF_ERROR(need(spec, "spec"));
    FEDVAR_RETURN_IF_ERROR(need(out, "out"));
    FEDVAR_ASSIGN_OR_RETURN(auto defense, fedvar::plugins::make_defense(spec));
    auto handle = std::make_unique<fedvar_defense_t>();
    handle->defense = std::move(defense);
    *out = handle.release();
    return Status::Ok();
  });
}

void fedvar_defense_destroy(fedvar_defense_t* defense) { delete defense; }

fedvar_code fedvar_defense_set_clean_u8(fedvar_defense_t* defense, const uint8_t* images,
                                        const int64_t* labels, int64_t n, int64_t c,
                                        int64_t h, int64_t w, char** errptr) {
  return guarded("fedvar_defense_set_clean_u8", errptr, [&] {
    FEDVAR_RETURN_IF_ERROR(check_clean_args(defense, images, labels, n, c, h, w));
    auto pixels = torch::from_blob(const_cast<uint8_t*>(images), {n, c, h, w}, torch::kUInt8);
    return set_clean(defense, pixels.clone(), labels, n);
  });
}

fedvar_code fedvar_defense_set_clean_f32(fedvar_defense_t* defense, const float* images,
                                         const int64_t* labels, int64_t n, int64_t c,
                                         int64_t h, int64_t w, char** errptr) {
  return guarded("fedvar_defense_set_clean_f32", errptr, [&] {
    FEDVAR_RETURN_IF_ERROR(check_clean_args(defense, images, labels, n, c, h, w));
    auto unit = torch::from_blob(const_cast<float*>(images), {n, c, h, w}, torch::kFloat32);
    // NaN fails both comparisons.
    if (!(unit.min().item<float>() >= 0.0f) || !(unit.max().item<float>() <= 1.0f)) {
      return Status::InvalidArgument("clean set: float pixels must be in [0, 1]");
    }
    return set_clean(defense, (unit * 255).round().to(torch::kUInt8), labels, n);
  });
}

fedvar_code fedvar_defense_set_normalization(fedvar_defense_t* defense, const double* mean,
                                             const double* std, int32_t channels,
                                             char** errptr) {
  return guarded("fedvar_defense_set_normalization", errptr, [&] {
    FEDVAR_RETURN_IF_ERROR(need(defense, "defense"));
    FEDVAR_RETURN_IF_ERROR(need(mean, "mean"));
    FEDVAR_RETURN_IF_ERROR(need(std, "std"));
    if (channels <= 0 || channels > 64) {
      return Status::InvalidArgument("normalization: channels must be 1..64");
    }
    fedvar::Normalization n;
    for (int32_t i = 0; i < channels; ++i) {
      if (!std::isfinite(mean[i]) || !std::isfinite(std[i]) || !(std[i] > 0)) {
        return Status::InvalidArgument("normalization: mean must be finite and std > 0");
      }
      n.mean.push_back(mean[i]);
      n.std.push_back(std[i]);
    }
    defense->ctx.normalization = n;
    defense->normalization_given = true;
    return Status::Ok();
  });
}

fedvar_code fedvar_defense_set_device(fedvar_defense_t* defense, const char* device,
                                      char** errptr) {
  return guarded("fedvar_defense_set_device", errptr, [&] {
    FEDVAR_RETURN_IF_ERROR(need(defense, "defense"));
    FEDVAR_RETURN_IF_ERROR(need(device, "device"));
    FEDVAR_ASSIGN_OR_RETURN(defense->ctx.device, fedvar::resolve_device(device));
    return Status::Ok();
  });
}

void fedvar_defense_set_seed(fedvar_defense_t* defense, uint64_t seed) {
  if (defense != nullptr) defense->ctx.seed = seed;
}

fedvar_code fedvar_set_threads(int32_t threads, char** errptr) {
  return guarded("fedvar_set_threads", errptr, [&] {
    if (threads < 1) return Status::InvalidArgument("threads must be >= 1");
    torch::set_num_threads(threads);
    return Status::Ok();
  });
}

fedvar_code fedvar_purify_in_place(fedvar_defense_t* defense, fedvar_tensor_t* tensors,
                                   size_t count, char** report_json, char** errptr) {
  return guarded("fedvar_purify_in_place", errptr,
                 [&] { return purify(defense, tensors, tensors, count, report_json); });
}

fedvar_code fedvar_purify_into(fedvar_defense_t* defense, const fedvar_tensor_t* model,
                               fedvar_tensor_t* out, size_t count, char** report_json,
                               char** errptr) {
  return guarded("fedvar_purify_into", errptr,
                 [&] { return purify(defense, model, out, count, report_json); });
}

}  // extern "C"
