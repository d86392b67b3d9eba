// Internal to protocol/: typed, checked reads of decoded MessagePack objects.
// Every failure is a kInvalidArgument Status naming the field.
#pragma once

#include <msgpack.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace fedvar::protocol::detail {

Result<int64_t> as_int64(const msgpack::object& object, const std::string& what);
Result<uint64_t> as_uint64(const msgpack::object& object, const std::string& what);
// Accepts MessagePack floats and integers; rejects NaN and infinities.
Result<double> as_double(const msgpack::object& object, const std::string& what);
Result<std::string> as_string(const msgpack::object& object, const std::string& what);
// A MessagePack bin of exactly `size` bytes, copied.
Result<std::string> as_bin(const msgpack::object& object, const std::string& what,
                           size_t size);

// The entries of a MessagePack map with string keys, read by name. Tracks
// which keys were read so that unexpected ones can be reported.
class Fields {
 public:
  // Fails if `object` is not a map, a key is not a string or is repeated.
  static Result<Fields> of(const msgpack::object& object, std::string what);

  // The value of `key`; a missing key is an error naming it.
  Result<const msgpack::object*> get(std::string_view key);

  // Fails naming the first key that get() was never asked for.
  Status check_all_read() const;

  const std::string& what() const { return what_; }

 private:
  struct Entry {
    std::string_view key;
    const msgpack::object* value;
    bool read;
  };
  std::string what_;
  std::vector<Entry> entries_;
};

}  // namespace fedvar::protocol::detail
