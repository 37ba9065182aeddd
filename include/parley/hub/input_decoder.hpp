// parley: what a session's read loop hands its bytes to when the peer does
// not speak parley's frames: text lines, WebSocket frames, any format. The
// decoder is a state machine fed bytes; the session does the I/O.
#ifndef PARLEY_HUB_INPUT_DECODER_HPP
#define PARLEY_HUB_INPUT_DECODER_HPP

#include <concepts>
#include <cstddef>
#include <span>
#include <system_error>

namespace parley {

/// Bytes received and not yet consumed, as a session hands them to its
/// decoder: a view into the stream's read buffer, valid during the call.
/// The decoder may change them in place (a WebSocket decoder unmasks
/// there); bytes it does not consume must be left as they came.
using input_view = std::span<std::byte>;

/// What a session's read loop does after a decode() call.
enum class read_action : unsigned char {
    /// Reads on (or decodes the rest at once, see input_decoder).
    more,
    /// Holds reading until session_base::release_reading() is called once
    /// (from any thread); bytes not consumed are handed over again only
    /// after the release. The way to wait until the input was handled
    /// elsewhere.
    hold,
    /// Stops reading for good; the session stays open for writing (close
    /// it, or close(last), when done).
    stop,
};

/// A decode() call's answer: how many bytes of the input it consumed (the
/// rest is handed again, with more bytes after it, at the next call) and
/// what to do next.
struct decode_result {
    std::size_t consumed = 0;
    read_action next = read_action::more;
};

/// A decoder for session::read_with():
/// @code
/// parley::decode_result decode(Session& s, parley::input_view bytes);
/// void finish(Session& s, parley::input_view rest, std::error_code ec);
/// @endcode
/// decode() receives every byte not yet consumed. While it consumes some,
/// returns `more` and leaves some, it is called again at once with the
/// rest (so it may decode one message per call); otherwise the session
/// reads more and hands the bytes left over again, followed by the new
/// ones. A decoder that consumes nothing until a message is complete must
/// bound the message size itself: the buffer grows with what it waits for.
///
/// finish() is called once when reading ends on the peer's side, with the
/// bytes not consumed: asio::error::eof when the peer closed its side (a
/// line decoder flushes a last unterminated line here); the session then
/// stays open for writing, and the decoder or its owner closes it.
/// Any other error is a broken stream: the session closes with it as the
/// reason right after finish() returns.
///
/// Both run on the session's executor, as its read handler: they may send
/// on `s` (a reply, a pong), close it, close(last) it, or abort it. What
/// they publish to other sessions counts as this session's
/// (overflow_policy::backpressure pauses it, as for read_frames()).
template <class Decoder, class Session>
concept input_decoder = requires(Decoder& d, Session& s, input_view bytes, std::error_code ec) {
    { d.decode(s, bytes) } -> std::convertible_to<decode_result>;
    d.finish(s, bytes, ec);
};

} // namespace parley

#endif
