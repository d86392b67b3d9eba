#include "protocol/zmtp.h"

#include <algorithm>
#include <cstdint>

namespace fedvar::protocol {
namespace {

constexpr size_t kGreetingBytes = 64;
constexpr size_t kMechanismAt = 12;  // after signature (10) and version (2)
constexpr size_t kMechanismBytes = 20;
// A command is a READY with a few properties, a PING, an ERROR: small.
constexpr uint64_t kMaxCommandBytes = 4096;

constexpr uint8_t kMore = 0x01;
constexpr uint8_t kLong = 0x02;
constexpr uint8_t kCommand = 0x04;

void put_be(std::string& out, uint64_t value, int bytes) {
  for (int i = bytes - 1; i >= 0; --i)
    out += static_cast<char>((value >> (8 * i)) & 0xff);
}

// A command frame: the name with its length byte, then the properties.
std::string command_frame(std::string_view name, std::string_view body) {
  std::string payload(1, static_cast<char>(name.size()));
  payload.append(name);
  payload.append(body);
  std::string frame;
  if (payload.size() > 255) {
    frame += static_cast<char>(kCommand | kLong);
    put_be(frame, payload.size(), 8);
  } else {
    frame += static_cast<char>(kCommand);
    frame += static_cast<char>(payload.size());
  }
  return frame + payload;
}

}  // namespace

std::string zmtp_handshake(std::string_view socket_type) {
  std::string out;
  out += '\xff';
  out.append(7, '\0');
  out += '\x01';
  out += '\x7f';  // signature
  out += '\x03';  // major version
  out += '\x00';  // minor version
  out += "NULL";  // mechanism, zero-padded to 20 bytes
  out.append(kMechanismBytes - 4, '\0');
  out += '\x00';  // as-server: NULL has no server role
  out.append(kGreetingBytes - out.size(), '\0');
  std::string property(1, static_cast<char>(11));
  property += "Socket-Type";
  put_be(property, socket_type.size(), 4);
  property.append(socket_type);
  return out + command_frame("READY", property);
}

std::string zmtp_frame_header(uint64_t size, bool more) {
  std::string header;
  const uint8_t flags = more ? kMore : 0;
  if (size > 255) {
    header += static_cast<char>(flags | kLong);
    put_be(header, size, 8);
  } else {
    header += static_cast<char>(flags);
    header += static_cast<char>(size);
  }
  return header;
}

Status ZmtpReader::feed(std::string_view bytes) {
  while (!bytes.empty()) {
    if (stage_ == Stage::kBody) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(left_, bytes.size()));
      if (body_ != nullptr) body_->append(bytes.data(), n);
      bytes.remove_prefix(n);
      left_ -= n;
      if (left_ == 0) FEDVAR_RETURN_IF_ERROR(finish_frame());
      continue;
    }
    header_ += bytes.front();
    bytes.remove_prefix(1);
    if (stage_ == Stage::kGreeting) {
      if (header_.size() < kGreetingBytes) continue;
      FEDVAR_RETURN_IF_ERROR(check_greeting());
      stage_ = Stage::kFlags;
    } else if (stage_ == Stage::kFlags) {
      flags_ = static_cast<uint8_t>(header_.back());
      if ((flags_ & ~(kMore | kLong | kCommand)) != 0 ||
          ((flags_ & kCommand) && (flags_ & kMore))) {
        return Status::InvalidArgument("ZMTP: bad frame flags");
      }
      stage_ = Stage::kSize;
    } else if (header_.size() == 1 + ((flags_ & kLong) ? 8u : 1u)) {
      left_ = 0;
      for (size_t i = 1; i < header_.size(); ++i) {
        left_ = (left_ << 8) | static_cast<uint8_t>(header_[i]);
      }
      FEDVAR_RETURN_IF_ERROR(start_frame());
    }
    if (stage_ != Stage::kGreeting && stage_ != Stage::kSize) header_.clear();
  }
  return Status::Ok();
}

Status ZmtpReader::check_greeting() const {
  const auto byte = [this](size_t i) { return static_cast<uint8_t>(header_[i]); };
  if (byte(0) != 0xff || (byte(9) & 1) == 0) {
    return Status::InvalidArgument("ZMTP: not a ZMTP 2+ greeting");
  }
  if (byte(10) < 3) return Status::InvalidArgument("ZMTP: a version before 3.0");
  const std::string_view mechanism(header_.data() + kMechanismAt, kMechanismBytes);
  if (mechanism != std::string_view("NULL\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 20)) {
    return Status::InvalidArgument("ZMTP: a mechanism other than NULL");
  }
  return Status::Ok();
}

// The size is known: decides where the frame's body goes, before any of it
// is stored.
Status ZmtpReader::start_frame() {
  stage_ = Stage::kBody;
  body_ = nullptr;
  if (flags_ & kCommand) {
    if (left_ > kMaxCommandBytes)
      return Status::InvalidArgument("ZMTP: command too long");
    command_.clear();
    body_ = &command_;
  } else if (!ready_) {
    return Status::InvalidArgument("ZMTP: a data frame before READY");
  } else if (message_.refused.empty()) {
    ++message_frames_;
    if (message_frames_ > limits_.max_frames) {
      refuse("a message has at most " + std::to_string(limits_.max_frames) + " frames");
    } else if (left_ > limits_.max_bytes - message_bytes_) {
      refuse("a message has at most " + std::to_string(limits_.max_bytes) + " bytes");
    } else {
      message_bytes_ += left_;
      message_.frames.emplace_back();
      message_.frames.back().reserve(static_cast<size_t>(left_));
      body_ = &message_.frames.back();
    }
  }
  return left_ == 0 ? finish_frame() : Status::Ok();
}

Status ZmtpReader::finish_frame() {
  stage_ = Stage::kFlags;
  header_.clear();
  body_ = nullptr;
  if (flags_ & kCommand) {
    // A command is a name-size byte, the name, then data: never empty.
    if (command_.empty()) return Status::InvalidArgument("ZMTP: an empty command");
    const size_t name_size = static_cast<uint8_t>(command_[0]);
    const std::string_view name = std::string_view(command_).substr(1, name_size);
    if (name == "ERROR") return Status::InvalidArgument("ZMTP: the peer sent ERROR");
    if (!ready_ && name != "READY") {
      return Status::InvalidArgument("ZMTP: expected READY, got a command of " +
                                     std::to_string(command_.size()) + " bytes");
    }
    ready_ = true;
    return Status::Ok();
  }
  if (flags_ & kMore) return Status::Ok();
  completed_.push_back(std::move(message_));
  message_ = ZmtpMessage();
  message_bytes_ = 0;
  message_frames_ = 0;
  return Status::Ok();
}

void ZmtpReader::refuse(std::string why) {
  message_.frames.clear();
  message_.frames.shrink_to_fit();
  message_.refused = std::move(why);
}

std::optional<ZmtpMessage> ZmtpReader::pop() {
  if (completed_.empty()) return std::nullopt;
  ZmtpMessage message = std::move(completed_.front());
  completed_.pop_front();
  return message;
}

}  // namespace fedvar::protocol
