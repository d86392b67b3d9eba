#include "protocol/fields.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <utility>

namespace fedvar::protocol::detail {
namespace {

Status wrong_type(const std::string& what, const char* expected) {
  return Status::InvalidArgument(what + " is not " + expected);
}

}  // namespace

Result<int64_t> as_int64(const msgpack::object& object, const std::string& what) {
  if (object.type == msgpack::type::NEGATIVE_INTEGER) return object.via.i64;
  if (object.type == msgpack::type::POSITIVE_INTEGER &&
      object.via.u64 <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return static_cast<int64_t>(object.via.u64);
  }
  return wrong_type(what, "a 64-bit integer");
}

Result<uint64_t> as_uint64(const msgpack::object& object, const std::string& what) {
  if (object.type == msgpack::type::POSITIVE_INTEGER) return object.via.u64;
  return wrong_type(what, "a non-negative integer");
}

Result<double> as_double(const msgpack::object& object, const std::string& what) {
  double value = 0;
  if (object.type == msgpack::type::FLOAT32 || object.type == msgpack::type::FLOAT64) {
    value = object.via.f64;
  } else if (object.type == msgpack::type::POSITIVE_INTEGER) {
    value = static_cast<double>(object.via.u64);
  } else if (object.type == msgpack::type::NEGATIVE_INTEGER) {
    value = static_cast<double>(object.via.i64);
  } else {
    return wrong_type(what, "a number");
  }
  if (!std::isfinite(value)) return Status::InvalidArgument(what + " is not finite");
  return value;
}

Result<std::string> as_string(const msgpack::object& object, const std::string& what) {
  if (object.type != msgpack::type::STR) return wrong_type(what, "a string");
  return std::string(object.via.str.ptr, object.via.str.size);
}

Result<std::string> as_bin(const msgpack::object& object, const std::string& what,
                           size_t size) {
  if (object.type != msgpack::type::BIN) return wrong_type(what, "bin");
  if (object.via.bin.size != size) {
    return Status::InvalidArgument(what + " has " + std::to_string(object.via.bin.size) +
                                   " bytes, expected " + std::to_string(size));
  }
  return std::string(object.via.bin.ptr, object.via.bin.size);
}

Result<Fields> Fields::of(const msgpack::object& object, std::string what) {
  if (object.type != msgpack::type::MAP) return wrong_type(what, "a map");
  Fields fields;
  fields.what_ = std::move(what);
  const msgpack::object_map& map = object.via.map;
  for (uint32_t i = 0; i < map.size; ++i) {
    const msgpack::object& key = map.ptr[i].key;
    if (key.type != msgpack::type::STR) {
      return Status::InvalidArgument(fields.what_ + " has a key that is not a string");
    }
    const std::string_view name(key.via.str.ptr, key.via.str.size);
    for (const Entry& e : fields.entries_) {
      if (e.key == name) {
        return Status::InvalidArgument(fields.what_ + " repeats field '" +
                                       std::string(name) + "'");
      }
    }
    fields.entries_.push_back({name, &map.ptr[i].val, false});
  }
  return fields;
}

Result<const msgpack::object*> Fields::get(std::string_view key) {
  for (Entry& e : entries_) {
    if (e.key == key) {
      e.read = true;
      return e.value;
    }
  }
  return Status::InvalidArgument(what_ + " is missing field '" + std::string(key) + "'");
}

Status Fields::check_all_read() const {
  for (const Entry& e : entries_) {
    if (!e.read) {
      return Status::InvalidArgument(what_ + " has unexpected field '" +
                                     std::string(e.key) + "'");
    }
  }
  return Status::Ok();
}

}  // namespace fedvar::protocol::detail
