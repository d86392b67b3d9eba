// Backdoor triggers: BadNets patches, blended noise (Chen et al. 2017) and
// the Distributed Backdoor Attack (Xie et al., ICLR 2020), described by one
// readable spec string, and the poisoning of a mini-batch with them.
//
// Spec syntax: KIND[:key=value[,key=value...]], lower case, no spaces; each
// key at most once, in any order; omitted keys keep TriggerSpec's defaults.
//   patch:size=5,pattern=checkerboard,position=random   (alias: badnets)
//       size 3|5|7 (any 1..H), pattern solid|checkerboard, position
//       fixed|random; fixed sits at the bottom-right corner one pixel from
//       the edges unless row=R / col=C give its top-left corner (each one
//       separately; only with position=fixed). Solid = 1.0; checkerboard =
//       1.0 where (r+c) is even, 0.0 where odd, from the patch's top-left.
//       Random = a uniform top-left per image, patch fully inside.
//   blend:ratio=0.1,seed=7
//       x' = (1-ratio)*x + ratio*noise, ratio in (0,1], noise a fixed uniform
//       [0,1] pattern of the image's shape [C,H,W]: element i (row-major) is
//       (g()>>11)*2^-53, g the i-th draw of std::mt19937_64(seed).
//   dba:pieces=4,piece=2,bar=1x4,gap=2,origin=1x1
//       the global trigger is `pieces` bars of 1 x 4 pixels (bar=RxC to
//       change) set to 1.0, laid out row-major on a grid of 2 columns, `gap`
//       pixels apart, from origin=ROWxCOL: bar i's top-left is
//       (origin_row + (i/2)*(bar_rows+gap), origin_col + (i%2)*(bar_cols+gap)).
//       piece=i (0-based) is attacker i's local trigger; no piece (or
//       piece=all) is the global trigger used at test time.
// All triggers cover every channel.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "core/status.h"

namespace fedvar {

enum class TriggerKind { kPatch, kBlend, kDba };
enum class PatchPattern { kSolid, kCheckerboard };

struct TriggerSpec {
  TriggerKind kind = TriggerKind::kPatch;
  // patch
  int size = 3;
  PatchPattern pattern = PatchPattern::kSolid;
  bool random_position = false;
  int row = -1;  // top-left corner when fixed; -1 = bottom-right corner
  int col = -1;
  // blend
  double ratio = 0.1;
  uint64_t seed = 0;
  // dba
  int pieces = 4;
  int piece = -1;  // -1 = all pieces (the global trigger)
  int bar_rows = 1;
  int bar_cols = 4;
  int gap = 2;
  int origin_row = 1;
  int origin_col = 1;

  // Canonical spec string, every key of the kind spelled out (row/col only
  // when set); parse_trigger(to_string()) gives the same spec.
  std::string to_string() const;
};

// Field-wise equality (all fields, including those another kind ignores).
bool operator==(const TriggerSpec& a, const TriggerSpec& b);
inline bool operator!=(const TriggerSpec& a, const TriggerSpec& b) { return !(a == b); }

// Parses a spec string. Unknown kinds or keys, repeated keys, malformed and
// out-of-range values are kInvalidArgument with a message naming the key and
// value. Whether the trigger fits an image is check_trigger_fits's job.
Result<TriggerSpec> parse_trigger(const std::string& spec);

// The local triggers of a DBA global trigger (piece=0..pieces-1), copies of
// `global` but for `piece`; empty if `global` is not a DBA spec.
std::vector<TriggerSpec> dba_pieces(const TriggerSpec& global);

// Checks the spec's fields (as parse_trigger does) and that the trigger fits
// images of H x W: patch size and position, the whole DBA layout (all pieces,
// even for a local trigger). kInvalidArgument otherwise.
Status check_trigger_fits(const TriggerSpec& spec, int64_t height, int64_t width);

// Stamps the trigger in place on float images [B, C, H, W] in [0, 1], CPU or
// CUDA; `rng` draws random positions (one per image, in batch order). Leaves
// the images unchanged unless 4-D floating point and check_trigger_fits is ok.
void apply_trigger(const TriggerSpec& spec, torch::Tensor& images, std::mt19937_64& rng);

// Poisons a batch in place: k = round(clamp(ratio, 0, 1) * B) distinct images
// chosen with `rng` get the trigger and the label (int64 [B]) `target`. Returns
// k; 0 and nothing changed if apply_trigger's preconditions fail or labels isn't [B].
int64_t poison_batch(const TriggerSpec& spec, torch::Tensor& images,
                     torch::Tensor& labels, int64_t target, double ratio,
                     std::mt19937_64& rng);

}  // namespace fedvar
