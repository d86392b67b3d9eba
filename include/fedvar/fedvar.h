/* libfedvar: fedvar's backdoor defenses for an aggregation server you
 * already run, through a stable C ABI.
 *
 * A defense ("vardefense:preset=federated", "fine-tuning", ...; the names
 * and options are those of `fedvar defenses`) purifies a ResNet18 given as
 * its state dict in torchvision's names (conv1.weight, bn1.running_mean,
 * layer1.0.conv1.weight, ..., fc.bias; any number of classes and input
 * channels; the stem and width are read from the shapes) with a small clean
 * set of images held by the caller.
 *
 *   fedvar_defense_t* d;
 *   char* err = NULL;
 *   if (fedvar_defense_create("vardefense", &d, &err) != FEDVAR_OK) ...
 *   fedvar_defense_set_clean_u8(d, images, labels, n, c, h, w, &err);
 *   char* report;
 *   fedvar_purify_in_place(d, tensors, num_tensors, &report, &err);
 *   ... use report (JSON) ...; fedvar_free(report);
 *   fedvar_defense_destroy(d);
 *
 * Errors: every call that can fail returns a fedvar_code; on failure it
 * stores a message in *errptr (allocated by the library; free it with
 * fedvar_free) and leaves the caller's buffers as they were, except where a
 * function says otherwise. errptr may be NULL when the caller does not want
 * the message; a message already in *errptr is freed first. No C++
 * exception crosses this interface.
 *
 * Ownership: strings and reports the library returns are the caller's, freed
 * with fedvar_free. The library copies what it is given (images, labels,
 * normalization, spec strings) and keeps no pointer into caller memory after
 * a call returns.
 *
 * Threads: the functions without a handle are thread-safe. A
 * fedvar_defense_t may be used from any thread but by one at a time; distinct
 * handles may purify concurrently (each then uses the library's intra-op
 * threads, see fedvar_defense_set_threads).
 */
#ifndef FEDVAR_FEDVAR_H_
#define FEDVAR_FEDVAR_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define FEDVAR_EXPORT __attribute__((visibility("default")))
#else
#define FEDVAR_EXPORT
#endif

/* Return codes. */
typedef enum {
  FEDVAR_OK = 0,
  FEDVAR_INVALID_ARGUMENT = 1, /* the caller's input: names it */
  FEDVAR_UNAVAILABLE = 2,      /* e.g. device "cuda" without a GPU */
  FEDVAR_INTERNAL = 3          /* out of memory, a library failure */
} fedvar_code;

/* Element types of a tensor; the names are safetensors'. */
typedef enum {
  FEDVAR_F32 = 0,
  FEDVAR_F64 = 1,
  FEDVAR_F16 = 2,
  FEDVAR_I64 = 3,
  FEDVAR_I32 = 4
} fedvar_dtype;

/* One tensor of a state dict, described by the caller: a dense C-order
 * (row-major, contiguous) array of shape[0] x ... x shape[ndim - 1]
 * elements of `dtype` at `data`. ndim may be 0 (a scalar, e.g.
 * num_batches_tracked). The library reads any of the dtypes above; floating
 * weights are computed in float32 and written back in the tensor's own
 * dtype. */
typedef struct {
  const char* name;
  int32_t dtype; /* a fedvar_dtype */
  int32_t ndim;
  const int64_t* shape;
  void* data;
} fedvar_tensor_t;

/* The library's version, "MAJOR.MINOR.PATCH"; a static string. */
FEDVAR_EXPORT const char* fedvar_version(void);

/* The defenses and their options as JSON: [{"name", "summary", "options":
 * [{"name", "default", "range", "help"}, ...]}, ...]. */
FEDVAR_EXPORT fedvar_code fedvar_defenses_json(char** json_out, char** errptr);

/* Frees what the library allocated for the caller (messages, reports,
 * JSON). NULL is a no-op. */
FEDVAR_EXPORT void fedvar_free(void* ptr);

/* A defense and what it needs: the clean set, the model's input
 * normalization, the device and a seed. Opaque. */
typedef struct fedvar_defense_t fedvar_defense_t;

/* Creates a defense from a spec "NAME[:key=value,...]". An unknown name or
 * option is FEDVAR_INVALID_ARGUMENT. Defaults: no clean set (set one before
 * purifying), normalization none (the model sees images / 255, as one
 * trained on torchvision's ToTensor() output), device "cpu", seed 0, the
 * intra-op threads libtorch chose. */
FEDVAR_EXPORT fedvar_code fedvar_defense_create(const char* spec, fedvar_defense_t** out,
                                                char** errptr);
/* Frees the handle. NULL is a no-op. */
FEDVAR_EXPORT void fedvar_defense_destroy(fedvar_defense_t* defense);

/* The clean set: n images of c x h x w pixels, uint8 in C order
 * (N x C x H x W; one channel: N x 1 x H x W), and n int64 labels (each a
 * class of the model, checked when purifying). Copied; replaces any earlier
 * clean set. */
FEDVAR_EXPORT fedvar_code fedvar_defense_set_clean_u8(fedvar_defense_t* defense,
                                                      const uint8_t* images,
                                                      const int64_t* labels, int64_t n,
                                                      int64_t c, int64_t h, int64_t w,
                                                      char** errptr);
/* As above with float32 pixels in [0, 1] (the output of ToTensor()); they
 * are stored as round(x * 255) (values outside [0, 1] are
 * FEDVAR_INVALID_ARGUMENT). */
FEDVAR_EXPORT fedvar_code fedvar_defense_set_clean_f32(fedvar_defense_t* defense,
                                                       const float* images,
                                                       const int64_t* labels, int64_t n,
                                                       int64_t c, int64_t h, int64_t w,
                                                       char** errptr);

/* The model's input normalization: x' = (x / 255 - mean[i]) / std[i] on
 * channel i; `channels` values each (std > 0). */
FEDVAR_EXPORT fedvar_code fedvar_defense_set_normalization(fedvar_defense_t* defense,
                                                           const double* mean,
                                                           const double* std,
                                                           int32_t channels,
                                                           char** errptr);

/* "cpu", "cuda", "cuda:N" or "auto" (CUDA when present). "cuda" without a
 * GPU is FEDVAR_UNAVAILABLE. */
FEDVAR_EXPORT fedvar_code fedvar_defense_set_device(fedvar_defense_t* defense,
                                                    const char* device, char** errptr);

/* The seed of the clean set's holdout split and of shuffling: equal seeds
 * and inputs give equal results on the CPU. */
FEDVAR_EXPORT void fedvar_defense_set_seed(fedvar_defense_t* defense, uint64_t seed);

/* libtorch's intra-op threads for this process (a process-wide setting);
 * threads >= 1. */
FEDVAR_EXPORT fedvar_code fedvar_set_threads(int32_t threads, char** errptr);

/* Purifies the model `tensors` describes, writing the result into the same
 * buffers. *report_json (may be NULL if unwanted) receives the defense's
 * JSON report: {"defense", "acc_before", "acc_after" (clean ACC in percent
 * on the held-out share of the clean set), "options", "seconds": {...,
 * "total"}, ...}. Without a clean set: FEDVAR_INVALID_ARGUMENT. The tensors must be exactly the state dict
 * of a torchvision-named ResNet18 (a missing, unexpected or mis-shaped name is
 * FEDVAR_INVALID_ARGUMENT naming it); num_batches_tracked may be left out.
 * On an error during the defense itself the buffers are unchanged. */
FEDVAR_EXPORT fedvar_code fedvar_purify_in_place(fedvar_defense_t* defense,
                                                 fedvar_tensor_t* tensors, size_t count,
                                                 char** report_json, char** errptr);

/* As fedvar_purify_in_place, reading `model` and writing into `out`, which
 * must hold, in the same order, tensors of the same names and shapes (the
 * dtypes may differ: the result is converted into each out tensor's).
 * `model` is not modified. */
FEDVAR_EXPORT fedvar_code fedvar_purify_into(fedvar_defense_t* defense,
                                             const fedvar_tensor_t* model,
                                             fedvar_tensor_t* out, size_t count,
                                             char** report_json, char** errptr);

/* A state dict read from a safetensors file (as PyTorch's
 * safetensors.torch.save_file writes), owned by the library: what a C server
 * that keeps its models in files hands to fedvar_purify_in_place. Opaque. */
typedef struct fedvar_model_t fedvar_model_t;

/* Reads `path`. A missing file is FEDVAR_INVALID_ARGUMENT, as is a corrupt
 * one (the message says which). */
FEDVAR_EXPORT fedvar_code fedvar_model_load(const char* path, fedvar_model_t** out,
                                            char** errptr);
/* The model's tensors: an array of fedvar_model_size(model) entries whose
 * names, shapes and data stay valid, and writable, until the model is
 * destroyed. */
FEDVAR_EXPORT fedvar_tensor_t* fedvar_model_tensors(fedvar_model_t* model);
FEDVAR_EXPORT size_t fedvar_model_size(const fedvar_model_t* model);
/* Writes the model (its tensors' current contents) to `path` atomically: a
 * temporary file renamed into place. */
FEDVAR_EXPORT fedvar_code fedvar_model_save(const fedvar_model_t* model, const char* path,
                                            char** errptr);
/* Frees the model. NULL is a no-op. */
FEDVAR_EXPORT void fedvar_model_destroy(fedvar_model_t* model);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* FEDVAR_FEDVAR_H_ */
