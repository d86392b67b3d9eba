/* Purifies a ResNet18 safetensors file with libfedvar, the way a C
 * aggregation server would after each round: the model's tensors are
 * handed to the defense as arrays and purified in place.
 *
 *   purify_model MODEL.safetensors IMAGES-idx3-ubyte.gz LABELS-idx1-ubyte.gz
 *                COUNT OUT.safetensors [SPEC]
 *
 * The clean set is the first COUNT images of an MNIST-style IDX pair (here
 * read with zlib; a server would have them in memory). SPEC defaults to
 * "vardefense". The defense's JSON report goes to stdout. */
#include <fedvar/fedvar.h>
#include <stdio.h>
#include <stdlib.h>
#include <zlib.h>

/* Reads an IDX file's header (magic, big-endian dims) and `bytes` of data. */
static int read_idx(const char* path, int dims, unsigned char* data, long bytes) {
  gzFile f = gzopen(path, "rb");
  unsigned char header[16];
  int ok = f != NULL && gzread(f, header, 4 + 4 * dims) == 4 + 4 * dims &&
           gzread(f, data, (unsigned)bytes) == bytes;
  if (f != NULL) gzclose(f);
  return ok;
}

static int fail(const char* what, char* err) {
  fprintf(stderr, "%s: %s\n", what, err != NULL ? err : "failed");
  fedvar_free(err);
  return 1;
}

int main(int argc, char** argv) {
  if (argc < 6) {
    fprintf(stderr, "usage: %s MODEL IMAGES LABELS COUNT OUT [SPEC]\n", argv[0]);
    return 2;
  }
  const long n = atol(argv[4]);
  if (n <= 0) return fail("COUNT", NULL);
  unsigned char* pixels = malloc((size_t)n * 28 * 28);
  unsigned char* raw_labels = malloc((size_t)n);
  int64_t* labels = malloc((size_t)n * sizeof(int64_t));
  if (!read_idx(argv[2], 3, pixels, n * 28 * 28) || !read_idx(argv[3], 1, raw_labels, n)) {
    return fail("reading the clean set", NULL);
  }
  for (long i = 0; i < n; ++i) labels[i] = raw_labels[i];

  char* err = NULL;
  fedvar_model_t* model = NULL;
  fedvar_defense_t* defense = NULL;
  char* report = NULL;
  if (fedvar_model_load(argv[1], &model, &err) != FEDVAR_OK) return fail("load", err);
  if (fedvar_defense_create(argc > 6 ? argv[6] : "vardefense", &defense, &err) != FEDVAR_OK)
    return fail("defense", err);
  if (fedvar_defense_set_clean_u8(defense, pixels, labels, n, 1, 28, 28, &err) != FEDVAR_OK)
    return fail("clean set", err);
  if (fedvar_purify_in_place(defense, fedvar_model_tensors(model), fedvar_model_size(model),
                             &report, &err) != FEDVAR_OK)
    return fail("purify", err);
  if (fedvar_model_save(model, argv[5], &err) != FEDVAR_OK) return fail("save", err);
  printf("%s\n", report);

  fedvar_free(report);
  fedvar_defense_destroy(defense);
  fedvar_model_destroy(model);
  free(pixels);
  free(raw_labels);
  free(labels);
  return 0;
}
