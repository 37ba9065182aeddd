// parley: websocket::stream's permessage-deflate state. With zlib
// (PARLEY_HAVE_ZLIB, which the parley::deflate target and meson's
// parley_deflate_dep define) it compresses and inflates; without, the
// stream never negotiates compression and these are never called. Define
// PARLEY_HAVE_ZLIB alike in every translation unit of a program.
#ifndef PARLEY_WEBSOCKET_DETAIL_STREAM_DEFLATE_HPP
#define PARLEY_WEBSOCKET_DETAIL_STREAM_DEFLATE_HPP

#include <parley/websocket/close.hpp>
#include <parley/websocket/error.hpp>
#include <parley/websocket/frame.hpp>
#include <parley/websocket/permessage_deflate.hpp>

#if PARLEY_HAVE_ZLIB
#include <parley/websocket/deflate.hpp>
#endif

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <system_error>

namespace parley::websocket::detail {

/// Whether this build can compress (zlib).
#if PARLEY_HAVE_ZLIB
inline constexpr bool have_deflate = true;
#else
inline constexpr bool have_deflate = false;
#endif

/// One connection's compressor and inflater, and their buffers.
struct deflate_state {
#if PARLEY_HAVE_ZLIB
    deflate_state(const deflate_params& p, role side, std::uint64_t max_message_size)
        : out(side == role::server ? deflater::for_server(p) : deflater::for_client(p)),
          in(inflater(static_cast<std::size_t>(std::min<std::uint64_t>(max_message_size,
                                                                       std::numeric_limits<std::size_t>::max())),
                      side == role::server ? p.client_no_context_takeover : p.server_no_context_takeover)) {}
    deflater out;
    inflater in;
#else
    deflate_state(const deflate_params&, role, std::uint64_t) {}
#endif
    std::string compressed; // the message being written, compressed
    std::string inflated;   // the message being read, inflated

    /// Compresses a whole message into `compressed`.
    void compress(std::span<const std::byte> message) {
        compressed.clear();
#if PARLEY_HAVE_ZLIB
        out.compress({reinterpret_cast<const char*>(message.data()), message.size()}, compressed);
#else
        (void)message;
#endif
    }

    /// Inflates a whole compressed message into `inflated`. Errors:
    /// error::message_too_big past the size limit (1009),
    /// deflate_error::corrupt_data (1007).
    std::error_code inflate(std::span<const std::byte> message) {
        inflated.clear();
        std::error_code ec;
#if PARLEY_HAVE_ZLIB
        in.feed({reinterpret_cast<const char*>(message.data()), message.size()}, inflated, ec);
        if (!ec)
            in.finish(inflated, ec);
#else
        (void)message;
        ec = deflate_error::corrupt_data;
#endif
        if (ec == deflate_error::message_too_big)
            ec = error::message_too_big;
        return ec;
    }

    /// Gives back large buffers between messages.
    void trim() {
        constexpr std::size_t keep = 64 * 1024;
        if (compressed.capacity() > keep)
            std::string().swap(compressed);
        if (inflated.capacity() > keep)
            std::string().swap(inflated);
    }
};

/// The close code for an error of deflate_state::inflate().
inline close_code deflate_close_code_for(std::error_code ec) noexcept {
    return ec == error::message_too_big ? close_code::message_too_big : close_code::invalid_payload;
}

} // namespace parley::websocket::detail

#endif
