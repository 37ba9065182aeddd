// parley chat transports: the input decoders, as read loops over a
// parley::session. Each turns what a peer sends into text inputs handed to
// a sink in batches (everything one read brought), and reads again only
// when the sink has handled the batch and calls resume: a client cannot
// queue more work than one read's worth.
//
// The sink (the chat server) provides:
//   void on_batch(conn_id, input_batch, std::function<void()> resume);
//   void on_read_failed(conn_id, std::error_code);  // not eof: a broken connection
#ifndef PARLEY_CHAT_TRANSPORT_READERS_HPP
#define PARLEY_CHAT_TRANSPORT_READERS_HPP

#include <parley/chat/core/types.hpp>
#include <parley/error.hpp>
#include <parley/codec/line_codec.hpp>
#include <parley/hub/session.hpp>

#include <asio/buffer.hpp>
#include <asio/dispatch.hpp>
#include <asio/error.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
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
};

/// Framed input: each frame's payload is one input.
template <class Stream, class Sink>
void read_frames(std::shared_ptr<session<Stream>> s, std::shared_ptr<Sink> sink, core::conn_id id) {
    s->stream().async_read_frame([s, sink, id](std::error_code ec, frame_view frame) mutable {
        input_batch batch;
        if (!ec) {
            for (;;) {
                batch.inputs.push_back({std::string(as_string_view(frame)), std::nullopt});
                auto next = s->stream().read_buffered_frame(ec);
                if (!next)
                    break;
                frame = *next;
            }
        }
        if (ec == asio::error::operation_aborted)
            return; // the session was closed
        if (ec == error::frame_too_large) {
            // The stream cannot be resynchronised: the core says why and closes.
            batch.inputs.push_back({s->stream().describe(ec), errc::frame_too_large});
        } else if (ec == asio::error::eof) {
            batch.finished = s->is_open(); // not if a write failed first: its cause stands
        } else if (ec) {
            if (batch.inputs.empty())
                return sink->on_read_failed(id, ec);
        }
        const bool again = !ec;
        // `resume` may be called from any thread: back to the session's.
        sink->on_batch(id, std::move(batch), [s, sink, id, again, ec] {
            asio::dispatch(s->get_executor(), [s, sink, id, again, ec] {
                if (!again && ec && ec != error::frame_too_large && ec != asio::error::eof)
                    return sink->on_read_failed(id, ec);
                if (again && s->is_open())
                    read_frames(s, sink, id);
            });
        });
    });
}

/// Line input: text lines, "\n" or "\r\n"; a last line without a newline
/// before the peer's FIN counts (`printf 'alice\nhello' | nc ...`).
template <class Stream, class Sink>
class line_reader : public std::enable_shared_from_this<line_reader<Stream, Sink>> {
public:
    line_reader(std::shared_ptr<session<Stream>> s, std::shared_ptr<Sink> sink, core::conn_id id,
                std::size_t max_line)
        : session_(std::move(s)), sink_(std::move(sink)), id_(id), lines_(max_line),
          buffer_(4096) {}

    void start() {
        session_->stream().next_layer().async_read_some(
            asio::buffer(buffer_), [self = this->shared_from_this()](std::error_code ec,
                                                                     std::size_t n) {
                self->on_read(ec, n);
            });
    }

private:
    void on_read(std::error_code ec, std::size_t n) {
        input_batch batch;
        if (!ec) {
            lines_.feed(std::string_view(buffer_.data(), n));
            for (;;) {
                std::error_code lec;
                auto line = lines_.next(lec);
                if (lec) {
                    batch.inputs.push_back({"a line longer than " +
                                                std::to_string(lines_.max_line()) +
                                                " bytes was discarded",
                                            errc::line_too_long});
                    continue;
                }
                if (!line)
                    break;
                batch.inputs.push_back({std::string(*line), std::nullopt});
            }
            return sink_->on_batch(id_, std::move(batch), [self = this->shared_from_this()] {
                asio::dispatch(self->session_->get_executor(), [self] {
                    if (self->session_->is_open())
                        self->start();
                });
            });
        }
        if (ec == asio::error::operation_aborted)
            return;
        if (ec != asio::error::eof)
            return sink_->on_read_failed(id_, ec);
        if (!session_->is_open())
            return; // a write failed first: its cause stands
        if (!lines_.pending().empty()) {
            std::string last(lines_.pending());
            if (last.back() == '\r')
                last.pop_back();
            batch.inputs.push_back({std::move(last), std::nullopt});
        }
        batch.finished = true;
        sink_->on_batch(id_, std::move(batch), [] {});
    }

    std::shared_ptr<session<Stream>> session_;
    std::shared_ptr<Sink> sink_;
    core::conn_id id_;
    line_decoder lines_;
    std::vector<char> buffer_;
};

} // namespace parley::chat::transport

#endif
