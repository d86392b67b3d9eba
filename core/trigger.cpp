// Backdoor triggers: the spec's text form and its validation (see trigger.h);
// stamping is in trigger_stamp.cpp.
#include "core/trigger.h"
#include "core/trigger_detail.h"

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
namespace trigger_detail {

Status bad_value(const std::string& key, const std::string& value,
                 const std::string& why) {
  return Status::InvalidArgument(key + "=" + value + ": " + why);
}

std::string dims(int64_t rows, int64_t cols) {
  return std::to_string(rows) + "x" + std::to_string(cols);
}

}  // namespace trigger_detail

namespace {

using trigger_detail::bad_value;
using trigger_detail::dims;

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

}  // namespace

Status trigger_detail::validate(const TriggerSpec& s) { return validate_spec(s); }

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

}  // namespace fedvar
