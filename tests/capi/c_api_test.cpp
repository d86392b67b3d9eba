// libfedvar's C interface as a C caller uses it: a width-4 ResNet18's state
// dict handed over as raw arrays, real Fashion-MNIST images as the clean
// set. Purifying changes the weights and leaves the input alone; every bad
// input is an error code and a message, with the caller's buffers untouched.
#include "fedvar/fedvar.h"

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "core/dataset.h"
#include "core/model_io.h"
#include "core/safetensors.h"
#include "core/state_dict.h"
#include "tests/support/test_util.h"

namespace fedvar {
namespace {

// A state dict in the caller's memory, described as fedvar_tensor_t rows.
struct CallerModel {
  std::vector<std::string> names;
  std::vector<torch::Tensor> tensors;  // contiguous CPU storage
  std::vector<std::vector<int64_t>> shapes;
  std::vector<fedvar_tensor_t> rows;

  explicit CallerModel(const StateDict& state, bool f64 = false) {
    for (const auto& [name, t] : state) {
      names.push_back(name);
      const bool floating = t.is_floating_point();
      tensors.push_back(t.to(floating && f64 ? torch::kFloat64 : t.scalar_type()).contiguous().clone());
      shapes.push_back(t.sizes().vec());
    }
    for (size_t i = 0; i < names.size(); ++i) {
      const auto type = tensors[i].scalar_type();
      rows.push_back({names[i].c_str(),
                      type == torch::kFloat64 ? FEDVAR_F64
                      : type == torch::kInt64 ? FEDVAR_I64
                                              : FEDVAR_F32,
                      static_cast<int32_t>(shapes[i].size()), shapes[i].data(),
                      tensors[i].data_ptr()});
    }
  }
  torch::Tensor at(const std::string& name) const {
    for (size_t i = 0; i < names.size(); ++i) {
      if (names[i] == name) return tensors[i];
    }
    return {};
  }
};

StateDict tiny_state(int64_t in_channels = 1) {
  torch::manual_seed(0);
  ResNet18 model(ResNetOptions{in_channels, 10, Stem::kCifar, 4});
  return resnet_state(model).tensors;
}

// A defense with 200 real clean images; a cheap spec.
struct Handle {
  fedvar_defense_t* d = nullptr;
  Dataset clean;
  explicit Handle(const char* spec = "fine-tuning:epochs=1") {
    EXPECT_EQ(fedvar_defense_create(spec, &d, nullptr), FEDVAR_OK);
    static const Dataset first = load_dataset(testing::kData, "test").value().slice(0, 200);
    clean = {first.images.clone(), first.labels.clone(), 10};
    EXPECT_EQ(fedvar_defense_set_clean_u8(d, clean.images.data_ptr<uint8_t>(),
                                          clean.labels.data_ptr<int64_t>(), 200, 1, 28, 28,
                                          nullptr),
              FEDVAR_OK);
  }
  ~Handle() { fedvar_defense_destroy(d); }
};

TEST(CApi, VersionAndCatalog) {
  EXPECT_STREQ(fedvar_version(), FEDVAR_VERSION);
  char* json = nullptr;
  ASSERT_EQ(fedvar_defenses_json(&json, nullptr), FEDVAR_OK);
  auto list = nlohmann::json::parse(json);
  fedvar_free(json);
  bool found = false;
  for (const auto& d : list) found |= d["name"] == "vardefense" && !d["options"].empty();
  EXPECT_TRUE(found);
}

TEST(CApi, PurifyIntoChangesTheModelAndLeavesTheInputAlone) {
  Handle h;
  const StateDict state = tiny_state();
  CallerModel in(state);
  CallerModel out(state, /*f64=*/true);  // results converted into the out dtypes
  char* report = nullptr;
  char* err = nullptr;
  ASSERT_EQ(fedvar_purify_into(h.d, in.rows.data(), out.rows.data(), in.rows.size(), &report,
                               &err),
            FEDVAR_OK)
      << err;
  EXPECT_EQ(err, nullptr);
  auto json = nlohmann::json::parse(report);
  fedvar_free(report);
  EXPECT_EQ(json["defense"], "fine-tuning");
  EXPECT_TRUE(json.contains("acc_before") && json.contains("acc_after"));
  EXPECT_TRUE(torch::equal(in.at("conv1.weight"), state.at("conv1.weight")));
  EXPECT_FALSE(torch::allclose(out.at("conv1.weight").to(torch::kFloat32),
                               state.at("conv1.weight")));
  EXPECT_EQ(out.at("conv1.weight").scalar_type(), torch::kFloat64);
  EXPECT_GT(out.at("bn1.num_batches_tracked").item<int64_t>(), 0);
}

TEST(CApi, PurifyInPlaceWithoutNumBatchesTracked) {
  Handle h;
  StateDict state = tiny_state();
  for (auto it = state.begin(); it != state.end();) {
    it = it->first.find("num_batches_tracked") != std::string::npos ? state.erase(it) : ++it;
  }
  CallerModel model(state);
  ASSERT_EQ(fedvar_purify_in_place(h.d, model.rows.data(), model.rows.size(), nullptr, nullptr),
            FEDVAR_OK);
  EXPECT_FALSE(torch::allclose(model.at("fc.weight"), state.at("fc.weight")));
}

// Calls purify in place on `model` and expects an error code whose message
// contains `words`, with the model's buffers unchanged.
void expect_refused(fedvar_defense_t* d, CallerModel& model, fedvar_code code,
                    const std::string& words) {
  std::vector<torch::Tensor> before;
  for (const auto& t : model.tensors) before.push_back(t.clone());
  char* err = nullptr;
  EXPECT_EQ(fedvar_purify_in_place(d, model.rows.data(), model.rows.size(), nullptr, &err),
            code);
  ASSERT_NE(err, nullptr);
  EXPECT_NE(std::string(err).find(words), std::string::npos) << err;
  fedvar_free(err);
  for (size_t i = 0; i < before.size(); ++i) {
    EXPECT_TRUE(torch::equal(before[i], model.tensors[i])) << model.names[i];
  }
}

TEST(CApi, BadModelsAreErrorsNamingTheTensor) {
  Handle h;
  StateDict wrong_shape = tiny_state();
  wrong_shape["fc.weight"] = torch::zeros({10, 5});
  CallerModel a(wrong_shape);
  expect_refused(h.d, a, FEDVAR_INVALID_ARGUMENT, "fc.weight");
  StateDict extra = tiny_state();
  extra["head.weight"] = torch::zeros({3});
  CallerModel b(extra);
  expect_refused(h.d, b, FEDVAR_INVALID_ARGUMENT, "head.weight");
  CallerModel c(tiny_state());
  c.rows[0].data = nullptr;
  expect_refused(h.d, c, FEDVAR_INVALID_ARGUMENT, "NULL");
  c.rows[0].data = c.tensors[0].data_ptr();
  c.rows[1].dtype = 42;
  expect_refused(h.d, c, FEDVAR_INVALID_ARGUMENT, "dtype");
  StateDict transposed = tiny_state();
  transposed["fc.weight"] = transposed["fc.weight"].t().contiguous();
  CallerModel d(transposed);
  expect_refused(h.d, d, FEDVAR_INVALID_ARGUMENT, "fc.weight has shape [32, 10]");
  CallerModel rgb(tiny_state(3));  // the clean images have one channel
  expect_refused(h.d, rgb, FEDVAR_INVALID_ARGUMENT, "channel");
}

TEST(CApi, BadCleanSetsAndSettingsAreErrors) {
  Handle h;
  char* err = nullptr;
  EXPECT_EQ(fedvar_defense_create("no-such-defense", &h.d, &err), FEDVAR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(err).find("no-such-defense"), std::string::npos) << err;
  EXPECT_EQ(fedvar_defense_create("vardefense:alpha=-3", &h.d, &err), FEDVAR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(err).find("alpha"), std::string::npos) << err;
  EXPECT_NE(h.d, nullptr);  // unchanged by the failed calls

  const double mean = 0.5, zero = 0.0;
  EXPECT_EQ(fedvar_defense_set_normalization(h.d, &mean, &zero, 1, &err),
            FEDVAR_INVALID_ARGUMENT);
  EXPECT_EQ(fedvar_defense_set_device(h.d, "tpu", &err), FEDVAR_INVALID_ARGUMENT);
  if (!torch::cuda::is_available()) {
    EXPECT_EQ(fedvar_defense_set_device(h.d, "cuda", &err), FEDVAR_UNAVAILABLE);
  }
  const float bright[4] = {0.f, 0.5f, 1.5f, 1.f};
  const int64_t one_label[1] = {0};
  EXPECT_EQ(fedvar_defense_set_clean_f32(h.d, bright, one_label, 1, 1, 2, 2, &err),
            FEDVAR_INVALID_ARGUMENT);
  EXPECT_EQ(fedvar_defense_set_clean_u8(h.d, nullptr, one_label, 1, 1, 2, 2, &err),
            FEDVAR_INVALID_ARGUMENT);
  const uint8_t pixels[4] = {0, 1, 2, 3};
  EXPECT_EQ(fedvar_defense_set_clean_u8(h.d, pixels, one_label, -1, 1, 2, 2, &err),
            FEDVAR_INVALID_ARGUMENT);
  fedvar_free(err);

  // A label the model does not have: refused when purifying.
  Handle labels;
  labels.clean.labels[0] = 10;
  ASSERT_EQ(fedvar_defense_set_clean_u8(labels.d, labels.clean.images.data_ptr<uint8_t>(),
                                        labels.clean.labels.data_ptr<int64_t>(), 200, 1, 28,
                                        28, nullptr),
            FEDVAR_OK);
  CallerModel model(tiny_state());
  expect_refused(labels.d, model, FEDVAR_INVALID_ARGUMENT, "label");

  fedvar_defense_t* empty = nullptr;
  ASSERT_EQ(fedvar_defense_create("fine-tuning", &empty, nullptr), FEDVAR_OK);
  expect_refused(empty, model, FEDVAR_INVALID_ARGUMENT, "clean set");
  fedvar_defense_destroy(empty);
  expect_refused(nullptr, model, FEDVAR_INVALID_ARGUMENT, "defense");
}

TEST(CApi, ModelFilesLoadPurifyAndSave) {
  testing::TempDir dir;
  const std::string in = dir.file("in.safetensors"), out = dir.file("out.safetensors");
  ASSERT_TRUE(write_safetensors(in, TensorFile{tiny_state(), {{"format", "pt"}}}).ok());
  fedvar_model_t* model = nullptr;
  char* err = nullptr;
  EXPECT_EQ(fedvar_model_load(dir.file("missing.safetensors").c_str(), &model, &err),
            FEDVAR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(err).find("missing.safetensors"), std::string::npos) << err;
  ASSERT_EQ(fedvar_model_load(in.c_str(), &model, &err), FEDVAR_OK) << err;
  EXPECT_EQ(fedvar_model_size(model), tiny_state().size());
  Handle h;
  ASSERT_EQ(fedvar_purify_in_place(h.d, fedvar_model_tensors(model), fedvar_model_size(model),
                                   nullptr, &err),
            FEDVAR_OK)
      << err;
  ASSERT_EQ(fedvar_model_save(model, out.c_str(), &err), FEDVAR_OK) << err;
  fedvar_model_destroy(model);
  auto saved = read_safetensors(out);
  ASSERT_TRUE(saved.ok());
  EXPECT_EQ(saved->tensors.size(), tiny_state().size());
  EXPECT_FALSE(torch::allclose(saved->tensors.at("fc.weight"), tiny_state().at("fc.weight")));
  fedvar_free(err);
}

}  // namespace
}  // namespace fedvar
