// parley: error codes shared by every component.
#ifndef PARLEY_ERROR_HPP
#define PARLEY_ERROR_HPP

#include <string>
#include <system_error>
#include <type_traits>

namespace parley {

/// Errors reported by parley itself. Errors from the operating system or
/// from Asio (connection refused, reset, end of file) keep their own
/// categories; these cover what parley adds on top.
enum class error {
    /// A peer announced a frame larger than the configured maximum. The
    /// connection cannot be resynchronised and should be closed.
    frame_too_large = 1,
    /// The peer closed the connection part-way through a frame.
    truncated_frame,
    /// A line exceeded the configured maximum length before its newline.
    line_too_long,
    /// The peer closed the connection part-way through a line.
    truncated_line,
    /// Text that must be UTF-8 was not.
    invalid_utf8,
    /// A blocking or async operation did not complete before its deadline.
    timed_out,
    /// A configuration value is out of range (for example a maximum payload
    /// the length field cannot express).
    invalid_argument,
    /// A send was refused because the outbound queue is full.
    queue_full,
    /// The peer or the local side shut the session down deliberately.
    shut_down,
    /// Every connection attempt failed; the last attempt's error is logged.
    connect_failed,
    /// A frame arrived but the payload is not a valid message of the
    /// protocol in use.
    malformed_message,
    /// The peer did not read fast enough: its outbound queue reached its
    /// limit and it was disconnected so that it cannot hold others back.
    slow_consumer,
    /// The session was closed locally (close() or abort()).
    session_closed,
    /// TLS: the peer's certificate was not accepted (not signed by a
    /// trusted authority, expired, or issued for another name).
    certificate_rejected,
    /// The peer did not present the access token the server requires.
    access_denied,
    /// The peer's socket accepted no data for the write timeout while data
    /// was queued for it: it stopped reading (or the path to it is dead).
    write_timeout,
};

namespace detail {

class error_category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "parley"; }

    std::string message(int ev) const override {
        switch (static_cast<error>(ev)) {
        case error::frame_too_large:
            return "frame exceeds the maximum payload size";
        case error::truncated_frame:
            return "connection closed in the middle of a frame";
        case error::line_too_long:
            return "line exceeds the maximum line length";
        case error::truncated_line:
            return "connection closed in the middle of a line";
        case error::invalid_utf8:
            return "text is not valid UTF-8";
        case error::timed_out:
            return "operation timed out";
        case error::invalid_argument:
            return "invalid argument";
        case error::queue_full:
            return "outbound queue is full";
        case error::shut_down:
            return "session was shut down";
        case error::connect_failed:
            return "could not connect";
        case error::malformed_message:
            return "malformed message";
        case error::slow_consumer:
            return "peer is not reading fast enough (outbound queue limit reached)";
        case error::session_closed:
            return "session was closed";
        case error::certificate_rejected:
            return "the peer's TLS certificate was rejected";
        case error::access_denied:
            return "access denied: wrong or missing access token";
        case error::write_timeout:
            return "peer accepted no data within the write timeout";
        }
        return "unknown parley error";
    }

    std::error_condition default_error_condition(int ev) const noexcept override {
        switch (static_cast<error>(ev)) {
        case error::timed_out:
        case error::write_timeout:
            return std::errc::timed_out;
        case error::invalid_argument:
            return std::errc::invalid_argument;
        case error::frame_too_large:
        case error::line_too_long:
            return std::errc::message_size;
        case error::invalid_utf8:
        case error::malformed_message:
            return std::errc::illegal_byte_sequence;
        case error::access_denied:
            return std::errc::permission_denied;
        default:
            return std::error_condition(ev, *this);
        }
    }
};

} // namespace detail

/// The category of every `parley::error`; its name() is "parley".
inline const std::error_category& error_category() noexcept {
    static const detail::error_category_impl instance;
    return instance;
}

inline std::error_code make_error_code(error e) noexcept {
    return {static_cast<int>(e), error_category()};
}

} // namespace parley

template <>
struct std::is_error_code_enum<parley::error> : std::true_type {};

#endif
