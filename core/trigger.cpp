// Backdoor triggers: spec parsing, validation and stamping (see trigger.h).
#include "core/trigger.h"

#include <torch/torch.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>
#include <set>
#include <system_error>
#include <tuple>
#include <utility>

namespace fedvar {
namespace {

// The DBA grid has this many columns (Xie et al.: 4 bars in a 2 x 2 grid).
constexpr int64_t kDbaGridCols = 2;

Status bad_value(const std::string& key, const std::string& value,
                 const std::string& why) {
  return Status::InvalidArgument(key + "=" + value + ": " + why);
}

// The whole of `text` as a T: base-10 integer ("-" only if T is signed) or a
// double; no "+", no spaces, no overflow.
template <typename T>
bool parse_number(const std::string& text, T* out) {
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, *out);
  return !text.empty() && ec == std::errc() && ptr == end;
}

Status parse_int_key(const std::string& key, const std::string& value, int* out,
                     int min = std::numeric_limits<int>::min()) {
  if (!parse_number(value, out)) return bad_value(key, value, "not an integer");
  if (*out < min) return bad_value(key, value, "must be >= " + std::to_string(min));
  return Status::Ok();
}

// "RxC" -> two integers.
Status parse_dims_key(const std::string& key, const std::string& value, int* rows,
                      int* cols) {
  const size_t x = value.find('x');
  if (x == std::string::npos || !parse_number(value.substr(0, x), rows) ||
      !parse_number(value.substr(x + 1), cols)) {
    return bad_value(key, value, "expected ROWSxCOLS, e.g. 1x4");
  }
  return Status::Ok();
}

// The shortest decimal that reads back as exactly `v`.
std::string format_double(double v) {
  char buf[32];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof(buf), "%.*g", precision, v);
    double back = 0.0;
    if (parse_number(buf, &back) && back == v) break;
  }
  return buf;
}

std::string dims(int64_t rows, int64_t cols) {
  return std::to_string(rows) + "x" + std::to_string(cols);
}

Status set_patch_key(TriggerSpec& s, const std::string& key, const std::string& value) {
  if (key == "size") return parse_int_key(key, value, &s.size);
  if (key == "row") return parse_int_key(key, value, &s.row, 0);
  if (key == "col") return parse_int_key(key, value, &s.col, 0);
  if (key == "pattern") {
    if (value == "solid")
      s.pattern = PatchPattern::kSolid;
    else if (value == "checkerboard")
      s.pattern = PatchPattern::kCheckerboard;
    else
      return bad_value(key, value, "expected solid|checkerboard");
    return Status::Ok();
  }
  if (key == "position") {
    if (value == "fixed")
      s.random_position = false;
    else if (value == "random")
      s.random_position = true;
    else
      return bad_value(key, value, "expected fixed|random");
    return Status::Ok();
  }
  return bad_value(key, value,
                   "unknown key for patch (size, pattern, position, row, col)");
}

Status set_blend_key(TriggerSpec& s, const std::string& key, const std::string& value) {
  if (key == "ratio" && !parse_number(value, &s.ratio)) {
    return bad_value(key, value, "not a number");
  }
  if (key == "seed" && !parse_number(value, &s.seed)) {
    return bad_value(key, value, "not an unsigned 64-bit integer");
  }
  if (key == "ratio" || key == "seed") return Status::Ok();
  return bad_value(key, value, "unknown key for blend (ratio, seed)");
}

Status set_dba_key(TriggerSpec& s, const std::string& key, const std::string& value) {
  if (key == "pieces") return parse_int_key(key, value, &s.pieces);
  if (key == "gap") return parse_int_key(key, value, &s.gap);
  if (key == "bar") return parse_dims_key(key, value, &s.bar_rows, &s.bar_cols);
  if (key == "origin") {
    return parse_dims_key(key, value, &s.origin_row, &s.origin_col);
  }
  if (key == "piece") {
    s.piece = -1;
    if (value != "all" && (!parse_number(value, &s.piece) || s.piece < 0)) {
      return bad_value(key, value, "expected all or a piece index 0..pieces-1");
    }
    return Status::Ok();
  }
  return bad_value(key, value, "unknown key for dba (pieces, piece, bar, gap, origin)");
}

Status set_key(TriggerSpec& s, const std::string& key, const std::string& value) {
  switch (s.kind) {
    case TriggerKind::kPatch:
      return set_patch_key(s, key, value);
    case TriggerKind::kBlend:
      return set_blend_key(s, key, value);
    case TriggerKind::kDba:
      return set_dba_key(s, key, value);
  }
  return Status::Internal("unknown trigger kind");
}

Status validate_patch(const TriggerSpec& s) {
  const auto num = [](int64_t v) { return std::to_string(v); };
  if (s.size < 1) return bad_value("size", num(s.size), "must be >= 1");
  for (const auto& [key, value] : {std::pair{"row", s.row}, {"col", s.col}}) {
    if (value < -1) return bad_value(key, num(value), "must be >= 0");
    if (value >= 0 && s.random_position) {
      return bad_value(key, num(value), "needs position=fixed");
    }
  }
  return Status::Ok();
}

Status validate_dba(const TriggerSpec& s) {
  const auto num = [](int64_t v) { return std::to_string(v); };
  if (s.pieces < 1) return bad_value("pieces", num(s.pieces), "must be >= 1");
  if (s.piece < -1 || s.piece >= s.pieces) {
    return bad_value(
        "piece", num(s.piece),
        "must be all or 0.." + num(s.pieces - 1) + " (pieces=" + num(s.pieces) + ")");
  }
  if (s.bar_rows < 1 || s.bar_cols < 1) {
    return bad_value("bar", dims(s.bar_rows, s.bar_cols), "must be at least 1x1");
  }
  if (s.gap < 0) return bad_value("gap", num(s.gap), "must be >= 0");
  if (s.origin_row < 0 || s.origin_col < 0) {
    return bad_value("origin", dims(s.origin_row, s.origin_col), "must be >= 0x0");
  }
  return Status::Ok();
}

// The fields' ranges, whatever the image size.
Status validate_spec(const TriggerSpec& s) {
  switch (s.kind) {
    case TriggerKind::kPatch:
      return validate_patch(s);
    case TriggerKind::kBlend:
      if (!(s.ratio > 0.0 && s.ratio <= 1.0)) {
        return bad_value("ratio", format_double(s.ratio), "must be in (0, 1]");
      }
      return Status::Ok();
    case TriggerKind::kDba:
      return validate_dba(s);
  }
  return Status::Internal("unknown trigger kind");
}

Status parse_kind(const std::string& kind, TriggerSpec* s) {
  if (kind == "patch" || kind == "badnets")
    s->kind = TriggerKind::kPatch;
  else if (kind == "blend")
    s->kind = TriggerKind::kBlend;
  else if (kind == "dba")
    s->kind = TriggerKind::kDba;
  else
    return bad_value("kind", kind, "unknown trigger kind (patch|badnets|blend|dba)");
  return Status::Ok();
}

Status parse_into(const std::string& text, TriggerSpec* s) {
  const size_t colon = text.find(':');
  FEDVAR_RETURN_IF_ERROR(parse_kind(text.substr(0, colon), s));
  if (colon == std::string::npos) return Status::Ok();
  const std::string rest = text.substr(colon + 1);
  std::set<std::string> seen;
  size_t begin = 0;
  while (true) {
    const size_t comma = std::min(rest.find(',', begin), rest.size());
    const std::string item = rest.substr(begin, comma - begin);
    const size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Status::InvalidArgument("'" + item + "': expected key=value");
    }
    const std::string key = item.substr(0, eq);
    if (!seen.insert(key).second) {
      return bad_value(key, item.substr(eq + 1), "key given twice");
    }
    FEDVAR_RETURN_IF_ERROR(set_key(*s, key, item.substr(eq + 1)));
    if (comma == rest.size()) return Status::Ok();
    begin = comma + 1;
  }
}

// Bottom-right corner with a 1-pixel margin unless row/col are given.
std::pair<int64_t, int64_t> fixed_patch_origin(const TriggerSpec& s, int64_t height,
                                               int64_t width) {
  return {s.row >= 0 ? s.row : height - 1 - s.size,
          s.col >= 0 ? s.col : width - 1 - s.size};
}

// Top-left corner of DBA bar `i`.
std::pair<int64_t, int64_t> dba_bar_origin(const TriggerSpec& s, int64_t i) {
  const int64_t row_step = int64_t{s.bar_rows} + s.gap;
  const int64_t col_step = int64_t{s.bar_cols} + s.gap;
  return {s.origin_row + (i / kDbaGridCols) * row_step,
          s.origin_col + (i % kDbaGridCols) * col_step};
}

Status check_patch_fits(const TriggerSpec& s, int64_t height, int64_t width) {
  const std::string image = dims(height, width);
  const std::string size = std::to_string(s.size);
  if (s.size > height || s.size > width) {
    return bad_value("size", size, "larger than the " + image + " images");
  }
  if (s.random_position) return Status::Ok();
  const auto [row, col] = fixed_patch_origin(s, height, width);
  if (row < 0 || col < 0) {
    return bad_value("size", size,
                     "leaves no 1-pixel margin in " + image + " images; give row=/col=");
  }
  if (row + s.size > height || col + s.size > width) {
    return Status::InvalidArgument(
        "patch of size=" + size + " at row=" + std::to_string(row) +
        ",col=" + std::to_string(col) + " falls outside " + image + " images");
  }
  return Status::Ok();
}

Status check_dba_fits(const TriggerSpec& s, int64_t height, int64_t width) {
  const int64_t last = s.pieces - 1;
  const int64_t bottom = dba_bar_origin(s, last).first + s.bar_rows;
  const int64_t right =
      dba_bar_origin(s, std::min<int64_t>(last, kDbaGridCols - 1)).second + s.bar_cols;
  if (bottom > height || right > width) {
    return Status::InvalidArgument("dba layout of pieces=" + std::to_string(s.pieces) +
                                   " needs " + dims(bottom, right) +
                                   " pixels, images are " + dims(height, width));
  }
  return Status::Ok();
}

// A uniform integer in [0, n), n >= 1; the same on every platform (unlike
// std::uniform_int_distribution): rejection sampling of whole 64-bit draws.
int64_t uniform_index(std::mt19937_64& rng, int64_t n) {
  const uint64_t range = static_cast<uint64_t>(n);
  const uint64_t rem = (std::numeric_limits<uint64_t>::max() % range + 1) % range;
  while (true) {
    const uint64_t x = rng();
    if (rem == 0 || x < 0 - rem) return static_cast<int64_t>(x % range);
  }
}

// The blend pattern [C, H, W] of `seed`, as documented in trigger.h.
torch::Tensor blend_noise(uint64_t seed, int64_t channels, int64_t height,
                          int64_t width) {
  std::mt19937_64 gen(seed);
  torch::Tensor noise = torch::empty({channels, height, width}, torch::kDouble);
  double* data = noise.data_ptr<double>();
  for (int64_t i = 0; i < noise.numel(); ++i) {
    data[i] = static_cast<double>(gen() >> 11) * 0x1.0p-53;
  }
  return noise;
}

// The patch [size, size]: all 1, or a checkerboard of 1 where (r + c) is even.
torch::Tensor patch_pattern(const TriggerSpec& s) {
  if (s.pattern == PatchPattern::kSolid) return torch::ones({s.size, s.size});
  torch::Tensor idx = torch::arange(s.size, torch::kLong);
  torch::Tensor sum = idx.unsqueeze(1) + idx.unsqueeze(0);
  return (sum.remainder(2) == 0).to(torch::kFloat);
}

// Stamps `pattern` with top-left (row, col) on every image of `images`.
void stamp_patch(const torch::Tensor& images, int64_t row, int64_t col,
                 const torch::Tensor& pattern) {
  images.narrow(2, row, pattern.size(0)).narrow(3, col, pattern.size(1)).copy_(pattern);
}

void apply_patch(const TriggerSpec& s, torch::Tensor& images, std::mt19937_64& rng) {
  const int64_t height = images.size(2), width = images.size(3);
  const torch::Tensor pattern = patch_pattern(s).to(images.options());
  if (!s.random_position) {
    const auto [row, col] = fixed_patch_origin(s, height, width);
    stamp_patch(images, row, col, pattern);
    return;
  }
  for (int64_t b = 0; b < images.size(0); ++b) {
    const int64_t row = uniform_index(rng, height - s.size + 1);
    const int64_t col = uniform_index(rng, width - s.size + 1);
    stamp_patch(images.narrow(0, b, 1), row, col, pattern);
  }
}

void apply_dba(const TriggerSpec& s, torch::Tensor& images) {
  const int64_t first = s.piece < 0 ? 0 : s.piece;
  const int64_t last = s.piece < 0 ? s.pieces - 1 : s.piece;
  for (int64_t i = first; i <= last; ++i) {
    const auto [row, col] = dba_bar_origin(s, i);
    images.narrow(2, row, s.bar_rows).narrow(3, col, s.bar_cols).fill_(1.0);
  }
}

bool can_stamp(const TriggerSpec& s, const torch::Tensor& images) {
  return images.defined() && images.dim() == 4 && images.is_floating_point() &&
         check_trigger_fits(s, images.size(2), images.size(3)).ok();
}

}  // namespace

std::string TriggerSpec::to_string() const {
  switch (kind) {
    case TriggerKind::kPatch: {
      std::string out = "patch:size=" + std::to_string(size) + ",pattern=" +
                        (pattern == PatchPattern::kSolid ? "solid" : "checkerboard") +
                        ",position=" + (random_position ? "random" : "fixed");
      if (!random_position && row >= 0) out += ",row=" + std::to_string(row);
      if (!random_position && col >= 0) out += ",col=" + std::to_string(col);
      return out;
    }
    case TriggerKind::kBlend:
      return "blend:ratio=" + format_double(ratio) + ",seed=" + std::to_string(seed);
    case TriggerKind::kDba:
      return "dba:pieces=" + std::to_string(pieces) +
             ",piece=" + (piece < 0 ? std::string("all") : std::to_string(piece)) +
             ",bar=" + dims(bar_rows, bar_cols) + ",gap=" + std::to_string(gap) +
             ",origin=" + dims(origin_row, origin_col);
  }
  return "unknown";
}

bool operator==(const TriggerSpec& a, const TriggerSpec& b) {
  const auto fields = [](const TriggerSpec& s) {
    return std::tie(s.kind, s.size, s.pattern, s.random_position, s.row, s.col, s.ratio,
                    s.seed, s.pieces, s.piece, s.bar_rows, s.bar_cols, s.gap,
                    s.origin_row, s.origin_col);
  };
  return fields(a) == fields(b);
}

Result<TriggerSpec> parse_trigger(const std::string& spec) {
  TriggerSpec s;
  Status st = parse_into(spec, &s);
  if (st.ok()) st = validate_spec(s);
  if (!st.ok()) return st.with_context("trigger spec '" + spec + "'");
  return s;
}

std::vector<TriggerSpec> dba_pieces(const TriggerSpec& global) {
  std::vector<TriggerSpec> out;
  if (global.kind != TriggerKind::kDba) return out;
  for (int i = 0; i < global.pieces; ++i) {
    out.push_back(global);
    out.back().piece = i;
  }
  return out;
}

Status check_trigger_fits(const TriggerSpec& spec, int64_t height, int64_t width) {
  FEDVAR_RETURN_IF_ERROR(validate_spec(spec));
  if (height < 1 || width < 1) {
    return Status::InvalidArgument("empty images " + dims(height, width));
  }
  switch (spec.kind) {
    case TriggerKind::kPatch:
      return check_patch_fits(spec, height, width);
    case TriggerKind::kBlend:
      return Status::Ok();
    case TriggerKind::kDba:
      return check_dba_fits(spec, height, width);
  }
  return Status::Internal("unknown trigger kind");
}

void apply_trigger(const TriggerSpec& spec, torch::Tensor& images, std::mt19937_64& rng) {
  if (!can_stamp(spec, images)) return;
  torch::NoGradGuard no_grad;
  switch (spec.kind) {
    case TriggerKind::kPatch:
      apply_patch(spec, images, rng);
      break;
    case TriggerKind::kBlend: {
      torch::Tensor noise =
          blend_noise(spec.seed, images.size(1), images.size(2), images.size(3));
      images.mul_(1.0 - spec.ratio).add_(noise.to(images.options()), spec.ratio);
      break;
    }
    case TriggerKind::kDba:
      apply_dba(spec, images);
      break;
  }
}

int64_t poison_batch(const TriggerSpec& spec, torch::Tensor& images,
                     torch::Tensor& labels, int64_t target, double ratio,
                     std::mt19937_64& rng) {
  if (!can_stamp(spec, images) || !labels.defined() || labels.dim() != 1 ||
      labels.size(0) != images.size(0)) {
    return 0;
  }
  const int64_t batch = images.size(0);
  const double share = ratio > 0.0 ? std::min(ratio, 1.0) : 0.0;  // NaN -> 0
  const int64_t k = std::llround(share * static_cast<double>(batch));
  if (k == 0) return 0;
  // Partial Fisher-Yates: the first k of a uniform shuffle of 0..B-1.
  std::vector<int64_t> order(batch);
  std::iota(order.begin(), order.end(), int64_t{0});
  for (int64_t i = 0; i < k; ++i) {
    std::swap(order[i], order[i + uniform_index(rng, batch - i)]);
  }
  order.resize(k);
  torch::NoGradGuard no_grad;
  torch::Tensor chosen = torch::tensor(order, torch::kLong);
  torch::Tensor image_idx = chosen.to(images.device());
  torch::Tensor stamped = images.index_select(0, image_idx);
  apply_trigger(spec, stamped, rng);
  images.index_copy_(0, image_idx, stamped);
  labels.index_fill_(0, chosen.to(labels.device()), target);
  return k;
}

}  // namespace fedvar
