// fedvar_model_t: a safetensors file's state dict behind the C interface.
#include <torch/torch.h>

#include <string>
#include <vector>

#include "capi/c_errors.h"
#include "capi/c_tensors.h"
#include "core/safetensors.h"
#include "fedvar/fedvar.h"

struct fedvar_model_t {
  fedvar::TensorFile file;
  std::vector<std::string> names;
  std::vector<std::vector<int64_t>> shapes;
  std::vector<fedvar_tensor_t> tensors;
};

namespace {

fedvar::Result<fedvar_model_t*> load(const char* path) {
  if (path == nullptr) return fedvar::Status::InvalidArgument("path is NULL");
  FEDVAR_ASSIGN_OR_RETURN(auto file, fedvar::read_safetensors(path));
  auto model = std::make_unique<fedvar_model_t>();
  model->file = std::move(file);
  for (auto& [name, tensor] : model->file.tensors) {
    auto type = fedvar::capi::c_dtype(tensor.scalar_type());
    if (!type.ok()) return type.status().with_context(std::string(path) + ": '" + name + "'");
    tensor = tensor.contiguous();
    model->names.push_back(name);
    model->shapes.push_back(tensor.sizes().vec());
  }
  size_t i = 0;
  for (auto& [name, tensor] : model->file.tensors) {
    const auto type = fedvar::capi::c_dtype(tensor.scalar_type()).value();
    model->tensors.push_back({model->names[i].c_str(), type,
                              static_cast<int32_t>(model->shapes[i].size()),
                              model->shapes[i].data(), tensor.data_ptr()});
    ++i;
  }
  return model.release();
}

}  // namespace

extern "C" {

fedvar_code fedvar_model_load(const char* path, fedvar_model_t** out, char** errptr) {
  return fedvar::capi::guarded("fedvar_model_load", errptr, [&] {
    FEDVAR_RETURN_IF_ERROR(fedvar::capi::need(out, "out"));
    FEDVAR_ASSIGN_OR_RETURN(*out, load(path));
    return fedvar::Status::Ok();
  });
}

fedvar_tensor_t* fedvar_model_tensors(fedvar_model_t* model) {
  return model != nullptr && !model->tensors.empty() ? model->tensors.data() : nullptr;
}

size_t fedvar_model_size(const fedvar_model_t* model) {
  return model != nullptr ? model->tensors.size() : 0;
}

fedvar_code fedvar_model_save(const fedvar_model_t* model, const char* path, char** errptr) {
  return fedvar::capi::guarded("fedvar_model_save", errptr, [&] {
    FEDVAR_RETURN_IF_ERROR(fedvar::capi::need(model, "model"));
    FEDVAR_RETURN_IF_ERROR(fedvar::capi::need(path, "path"));
    return fedvar::write_safetensors(path, model->file);
  });
}

void fedvar_model_destroy(fedvar_model_t* model) { delete model; }

}  // extern "C"
