// parley: permessage-deflate (RFC 7692) message compression with zlib.
// Needs zlib (Debian: zlib1g-dev; the CMake target parley::deflate, meson's
// parley_deflate_dep); nothing else in parley does. The negotiation that
// chooses the parameters is in permessage_deflate.hpp.
//
// A message is compressed as raw deflate ending in a sync flush, whose
// last four bytes (00 00 FF FF) are not sent; the receiver puts them back
// before inflating. With no context takeover every message is compressed
// alone, so a server compressing a broadcast once can send the same bytes
// to every recipient that negotiated permessage-deflate (parley's server
// asks for server_no_context_takeover by default).
#ifndef PARLEY_WEBSOCKET_DEFLATE_HPP
#define PARLEY_WEBSOCKET_DEFLATE_HPP

#include <parley/websocket/permessage_deflate.hpp>

#include <zlib.h>

#include <array>
#include <cstddef>
#include <cstring>
#include <limits>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

namespace parley::websocket {

/// Compresses whole messages. Not thread-safe; one per connection, or one
/// shared by a broadcaster when there is no context takeover.
class deflater {
public:
    /// `window_bits` 9..15 (the negotiated server_max_window_bits for a
    /// server, client_max_window_bits for a client); `level` zlib's 0..9.
    /// @throws std::invalid_argument for values out of range,
    /// std::bad_alloc when zlib cannot allocate.
    explicit deflater(bool no_context_takeover = true, int window_bits = 15, int level = 6, int mem_level = 8)
        : stream_(std::make_unique<z_stream>()), no_context_takeover_(no_context_takeover) {
        if (window_bits < 9 || window_bits > 15 || level < 0 || level > 9 || mem_level < 1 || mem_level > 9)
            throw std::invalid_argument("parley::websocket::deflater: window bits 9..15, level 0..9, mem level 1..9");
        if (deflateInit2(stream_.get(), level, Z_DEFLATED, -window_bits, mem_level, Z_DEFAULT_STRATEGY) != Z_OK)
            throw std::bad_alloc();
    }

    /// A server's compressor for the negotiated parameters.
    static deflater for_server(const deflate_params& p, int level = 6) {
        return deflater(p.server_no_context_takeover, p.server_max_window_bits, level);
    }

    /// A client's compressor for the negotiated parameters.
    static deflater for_client(const deflate_params& p, int level = 6) {
        return deflater(p.client_no_context_takeover, p.client_max_window_bits, level);
    }

    deflater(deflater&&) noexcept = default;
    deflater& operator=(deflater&& other) noexcept {
        if (this != &other) {
            end();
            stream_ = std::move(other.stream_);
            no_context_takeover_ = other.no_context_takeover_;
        }
        return *this;
    }
    ~deflater() { end(); }

    /// Appends the compressed form of the whole `message` to `out`, without
    /// the final 00 00 FF FF. The result may be larger than the message
    /// (random data); a sender may then send the message uncompressed.
    void compress(std::string_view message, std::string& out) {
        if (message.size() > std::numeric_limits<uInt>::max())
            throw std::length_error("parley::websocket::deflater: message too large for zlib");
        z_stream& s = *stream_;
        s.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(message.data()));
        s.avail_in = static_cast<uInt>(message.size());
        const std::size_t start = out.size();
        std::size_t chunk = message.size() / 2 + 64;
        while (true) {
            const std::size_t used = out.size();
            out.resize(used + chunk);
            s.next_out = reinterpret_cast<Bytef*>(out.data() + used);
            s.avail_out = static_cast<uInt>(chunk);
            const int rc = deflate(&s, Z_SYNC_FLUSH);
            if (rc == Z_STREAM_ERROR)
                throw std::runtime_error("parley::websocket::deflater: zlib stream error");
            out.resize(used + chunk - s.avail_out);
            if (s.avail_out != 0 && s.avail_in == 0)
                break; // all input taken and flushed
            chunk = chunk < 65536 ? chunk * 2 : chunk;
        }
        // A sync flush ends in an empty stored block: 00 00 FF FF.
        if (out.size() - start >= 4 && std::memcmp(out.data() + out.size() - 4, "\x00\x00\xff\xff", 4) == 0)
            out.resize(out.size() - 4);
        // zlib writes nothing for an empty message right after a flush;
        // RFC 7692 7.2.3.6 sends the start of an empty stored block, 00.
        if (out.size() == start)
            out.push_back('\0');
        if (no_context_takeover_)
            deflateReset(&s);
    }

    /// compress() into a new string.
    std::string compress(std::string_view message) {
        std::string out;
        compress(message, out);
        return out;
    }

private:
    void end() noexcept {
        if (stream_)
            deflateEnd(stream_.get());
    }

    // On the heap: zlib's state points back at its z_stream, which must
    // not move.
    std::unique_ptr<z_stream> stream_;
    bool no_context_takeover_;
};

/// Inflates compressed messages, never producing more than a message size
/// limit: a message of a few kilobytes that would inflate to gigabytes is
/// stopped at the limit (deflate_error::message_too_big, close 1009) with
/// at most the limit appended. Not thread-safe; one per connection.
class inflater {
public:
    /// `no_context_takeover`: the peer compresses each message alone (the
    /// negotiated client_no_context_takeover for a server). The window is
    /// always 32 KiB, which reads data compressed with any smaller one.
    /// @throws std::bad_alloc when zlib cannot allocate.
    explicit inflater(std::size_t max_message_size, bool no_context_takeover = false)
        : stream_(std::make_unique<z_stream>()), max_(max_message_size), no_context_takeover_(no_context_takeover) {
        if (inflateInit2(stream_.get(), -15) != Z_OK)
            throw std::bad_alloc();
    }

    /// A server's inflater for the negotiated parameters.
    static inflater for_server(const deflate_params& p, std::size_t max_message_size) {
        return inflater(max_message_size, p.client_no_context_takeover);
    }

    /// A client's inflater for the negotiated parameters.
    static inflater for_client(const deflate_params& p, std::size_t max_message_size) {
        return inflater(max_message_size, p.server_no_context_takeover);
    }

    inflater(inflater&&) noexcept = default;
    inflater& operator=(inflater&& other) noexcept {
        if (this != &other) {
            end();
            stream_ = std::move(other.stream_);
            max_ = other.max_;
            produced_ = other.produced_;
            ended_ = other.ended_;
            no_context_takeover_ = other.no_context_takeover_;
        }
        return *this;
    }
    ~inflater() { end(); }

    std::size_t max_message_size() const noexcept { return max_; }

    /// Inflates the next compressed bytes of the current message (a
    /// frame's payload, or part of one), appending to `out`. On an error
    /// the connection is to be closed (deflate_close_code(e)); the inflater is then
    /// unusable.
    void feed(std::string_view compressed, std::string& out, std::error_code& ec) {
        ec = {};
        if (compressed.size() > std::numeric_limits<uInt>::max())
            throw std::length_error("parley::websocket::inflater: feed at most 4 GiB at a time");
        if (ended_ && !compressed.empty()) {
            ec = deflate_error::corrupt_data; // bytes after a final block
            return;
        }
        run(compressed, out, ec);
    }

    /// Ends the current message: inflates the 00 00 FF FF the sender left
    /// out, and readies for the next message.
    void finish(std::string& out, std::error_code& ec) {
        ec = {};
        if (!ended_)
            run(std::string_view("\x00\x00\xff\xff", 4), out, ec);
        if (ec)
            return;
        if (no_context_takeover_) {
            inflateReset(stream_.get());
        } else if (ended_) {
            // A final block ended the stream; start a new one, keeping the
            // window as context for the next message.
            std::array<Bytef, 32768> window{};
            uInt size = window.size();
            inflateGetDictionary(stream_.get(), window.data(), &size);
            inflateReset(stream_.get());
            inflateSetDictionary(stream_.get(), window.data(), size);
        }
        ended_ = false;
        produced_ = 0;
    }

private:
    void run(std::string_view in, std::string& out, std::error_code& ec) {
        z_stream& s = *stream_;
        s.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
        s.avail_in = static_cast<uInt>(in.size());
        while (true) {
            // Room for one byte past the limit, to see it passed without
            // ever holding more than the limit.
            const std::size_t left = max_ - produced_;
            const std::size_t room = left < chunk_size ? left + 1 : chunk_size;
            const std::size_t used = out.size();
            out.resize(used + room);
            s.next_out = reinterpret_cast<Bytef*>(out.data() + used);
            s.avail_out = static_cast<uInt>(room);
            const int rc = inflate(&s, Z_SYNC_FLUSH);
            const std::size_t got = room - s.avail_out;
            if (got > left) {
                out.resize(used + left);
                produced_ = max_;
                ec = deflate_error::message_too_big;
                return;
            }
            out.resize(used + got);
            produced_ += got;
            if (rc == Z_STREAM_END) {
                ended_ = true;
                if (s.avail_in != 0)
                    ec = deflate_error::corrupt_data;
                return;
            }
            if (rc == Z_MEM_ERROR)
                throw std::bad_alloc();
            if (rc != Z_OK && rc != Z_BUF_ERROR) {
                ec = deflate_error::corrupt_data;
                return;
            }
            if (s.avail_in == 0 && s.avail_out != 0)
                return; // all taken, nothing more to write out
            if (rc == Z_BUF_ERROR && s.avail_out != 0)
                return;
        }
    }

    void end() noexcept {
        if (stream_)
            inflateEnd(stream_.get());
    }

    static constexpr std::size_t chunk_size = 16 * 1024;

    std::unique_ptr<z_stream> stream_;
    std::size_t max_;
    std::size_t produced_ = 0;
    bool ended_ = false;
    bool no_context_takeover_;
};

} // namespace parley::websocket

#endif
