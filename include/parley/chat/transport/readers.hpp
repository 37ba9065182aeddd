// parley chat transports: the input decoders, run by a parley::session's
// read loop (session::read_with). Each turns what a peer sends into text
// inputs handed to a sink in batches (everything one read brought), and
// holds the session's reading until the sink has handled the batch and
// calls resume: a client cannot queue more work than one read's worth. The
// hold is the session's own (hold_reading), so the hub's back-pressure
// pauses reach these readers too.
//
// The sink (the chat server) provides:
//   void on_batch(conn_id, input_batch, std::function<void()> resume);
// A broken connection (not a FIN) needs no call: the session closes with
// the error as its reason.
#ifndef PARLEY_CHAT_TRANSPORT_READERS_HPP
#define PARLEY_CHAT_TRANSPORT_READERS_HPP

#include <parley/chat/core/types.hpp>
#include <parley/error.hpp>
#include <parley/codec/frame_codec.hpp>
#include <parley/codec/line_codec.hpp>
#include <parley/hub/input_decoder.hpp>
#include <parley/hub/session.hpp>

#include <asio/error.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace parley::chat::transport {

/// One decoded input, or why one could not be decoded (the description).
struct decoded_input {
    std::string text;
    std::optional<errc> error; ///< line_too_long or frame_too_large
};

/// What one read brought.
struct input_batch {
    std::vector<decoded_input> inputs;
    bool finished = false; ///< the peer sends nothing more (FIN)
    /// When the read that brought these inputs completed (taken once per
    /// batch, for the server's delivery_latency; left at its default, no
    /// sample, on the error paths).
    std::chrono::steady_clock::time_point read_at{};
};

namespace detail {
// Hands `batch` to the sink; reading resumes when the sink says so, from
// any thread.
template <class Session, class Sink>
void hand_over(Session& s, Sink& sink, core::conn_id id, input_batch batch) {
    batch.read_at = std::chrono::steady_clock::now();
    sink.on_batch(id, std::move(batch), [s = s.shared_from_this()] { s->release_reading(); });
}

// At the peer's FIN: the last inputs, unless a write failed first (its
// cause stands) or the session is closing anyway.
template <class Session, class Sink>
void hand_last(Session& s, Sink& sink, core::conn_id id, input_batch batch) {
    if (!s.is_open())
        return;
    batch.finished = true;
    batch.read_at = std::chrono::steady_clock::now();
    sink.on_batch(id, std::move(batch), [] {});
}
} // namespace detail

/// Framed input: each frame's payload (the limit is the session stream's
/// max_payload()) is one input. A frame over the limit is reported as an
/// input error and ends the reading: the stream cannot be resynchronised,
/// the core says why and closes.
template <class Sink>
class frame_input {
public:
    frame_input(std::shared_ptr<Sink> sink, core::conn_id id) noexcept
        : sink_(std::move(sink)), id_(id) {}

    template <class Session>
    decode_result decode(Session& s, input_view bytes) {
        using codec_type = typename Session::stream_type::codec_type;
        const codec_type codec(s.stream().max_payload());
        input_batch batch;
        std::size_t used = 0;
        std::error_code ec;
        std::uint64_t announced = 0;
        for (;;) {
            const input_view rest = bytes.subspan(used);
            const std::size_t size = codec.frame_size(rest, ec, &announced);
            if (ec || size == 0 || rest.size() < size)
                break;
            const auto payload = rest.subspan(codec_type::header_size, size - codec_type::header_size);
            batch.inputs.push_back({std::string(as_string_view(payload)), std::nullopt});
            used += size;
        }
        if (ec) {
            batch.inputs.push_back(
                {describe_oversize_frame(announced, codec.max_payload()), errc::frame_too_large});
            sink_->on_batch(id_, std::move(batch), [] {});
            return {bytes.size(), read_action::stop};
        }
        if (batch.inputs.empty())
            return {used, read_action::more};
        detail::hand_over(s, *sink_, id_, std::move(batch));
        return {used, read_action::hold};
    }

    template <class Session>
    void finish(Session& s, input_view rest, std::error_code ec) {
        if (ec != asio::error::eof)
            return; // the session closes with `ec`
        if (!rest.empty())
            return s.abort(error::truncated_frame);
        detail::hand_last(s, *sink_, id_, {});
    }

private:
    std::shared_ptr<Sink> sink_;
    core::conn_id id_;
};

/// Line input: text lines, "\n" or "\r\n"; a last line without a newline
/// before the peer's FIN counts (`printf 'alice\nhello' | nc ...`). A line
/// over `max_line` bytes is discarded and reported as an input error.
template <class Sink>
class line_input {
public:
    line_input(std::shared_ptr<Sink> sink, core::conn_id id, std::size_t max_line)
        : sink_(std::move(sink)), id_(id), lines_(max_line) {}

    template <class Session>
    decode_result decode(Session& s, input_view bytes) {
        input_batch batch;
        lines_.feed(bytes);
        for (;;) {
            std::error_code ec;
            auto line = lines_.next(ec);
            if (ec) {
                batch.inputs.push_back({"a line longer than " + std::to_string(lines_.max_line()) +
                                            " bytes was discarded",
                                        errc::line_too_long});
                continue;
            }
            if (!line)
                break;
            batch.inputs.push_back({std::string(*line), std::nullopt});
        }
        // Every byte is taken: a partial line waits in the line decoder.
        if (batch.inputs.empty())
            return {bytes.size(), read_action::more};
        detail::hand_over(s, *sink_, id_, std::move(batch));
        return {bytes.size(), read_action::hold};
    }

    template <class Session>
    void finish(Session& s, input_view, std::error_code ec) {
        if (ec != asio::error::eof)
            return; // the session closes with `ec`
        input_batch batch;
        if (!lines_.pending().empty()) {
            std::string last(lines_.pending());
            if (last.back() == '\r')
                last.pop_back();
            batch.inputs.push_back({std::move(last), std::nullopt});
        }
        detail::hand_last(s, *sink_, id_, std::move(batch));
    }

private:
    std::shared_ptr<Sink> sink_;
    core::conn_id id_;
    line_decoder lines_;
};

} // namespace parley::chat::transport

#endif
