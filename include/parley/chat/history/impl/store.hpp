// parley: bodies of parley/chat/history/store.hpp.
#ifndef PARLEY_CHAT_HISTORY_IMPL_STORE_HPP
#define PARLEY_CHAT_HISTORY_IMPL_STORE_HPP

#include <asio/associated_executor.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/post.hpp>

#include <memory>
#include <utility>

namespace parley::chat::history {

namespace detail {

inline std::string store_category_impl::message(int ev) const {
    switch (static_cast<store_error>(ev)) {
    case store_error::queue_full:
        return "history store queue is full (storage slower than the chat): record not stored";
    case store_error::store_failed:
        return "history store has failed earlier and stores nothing more";
    case store_error::closed:
        return "history store is closed";
    case store_error::not_a_database:
        return "history file is not an SQLite database";
    case store_error::corrupt_database:
        return "history database is corrupt (integrity check failed)";
    case store_error::cannot_open:
        return "history database cannot be opened or created (missing or read-only directory, permissions)";
    case store_error::read_only:
        return "history database or its directory is read-only";
    case store_error::disk_full:
        return "disk (or the history database's size limit) is full";
    case store_error::database_locked:
        return "history database is locked by another process (another server on the same file?)";
    case store_error::incompatible_schema:
        return "history database was written by another program or version";
    case store_error::io_error:
        return "history storage failed (I/O error)";
    case store_error::seq_out_of_order:
        return "history record does not follow its room's last seq: not stored";
    }
    return "unknown history store error";
}

inline std::error_condition store_category_impl::default_error_condition(int ev) const noexcept {
    switch (static_cast<store_error>(ev)) {
    case store_error::disk_full:
        return std::errc::no_space_on_device;
    case store_error::read_only:
        return std::errc::read_only_file_system;
    case store_error::database_locked:
        return std::errc::device_or_resource_busy;
    case store_error::io_error:
        return std::errc::io_error;
    default:
        return std::error_condition(ev, *this);
    }
}

// Wraps a completion handler into a callback any thread may call once: it
// posts the handler, with the arguments, to the handler's executor and holds
// work on that executor until then.
template <class... Args, class Handler>
std::function<void(Args...)> posting_callback(Handler&& handler, const asio::any_io_executor& fallback) {
    using handler_type = std::decay_t<Handler>;
    auto ex = asio::get_associated_executor(handler, fallback);
    using work_type = decltype(asio::make_work_guard(ex));
    struct state {
        handler_type handler;
        work_type work;
    };
    auto s = std::make_shared<state>(state{std::forward<Handler>(handler), asio::make_work_guard(ex)});
    return [s](Args... args) {
        auto target = s->work.get_executor();
        asio::post(target, [s, ... args = std::move(args)]() mutable {
            handler_type h = std::move(s->handler);
            work_type w = std::move(s->work);
            std::move(h)(std::move(args)...);
        });
    };
}

} // namespace detail

template <asio::completion_token_for<void(std::error_code, std::vector<room_state>)> Token>
auto store::async_load_rooms(Token&& token) {
    return asio::async_initiate<Token, void(std::error_code, std::vector<room_state>)>(
        [this](auto handler) {
            start_load_rooms(detail::posting_callback<std::error_code, std::vector<room_state>>(
                std::move(handler), executor_));
        },
        token);
}

template <asio::completion_token_for<void(std::error_code, range)> Token>
auto store::async_read(range_query q, Token&& token) {
    return asio::async_initiate<Token, void(std::error_code, range)>(
        [this](auto handler, range_query q) {
            start_read(std::move(q),
                       detail::posting_callback<std::error_code, range>(std::move(handler), executor_));
        },
        token, std::move(q));
}

template <asio::completion_token_for<void(std::error_code)> Token>
auto store::async_flush(Token&& token) {
    return asio::async_initiate<Token, void(std::error_code)>(
        [this](auto handler) {
            start_flush(detail::posting_callback<std::error_code>(std::move(handler), executor_));
        },
        token);
}

template <asio::completion_token_for<void(std::error_code)> Token>
auto store::async_close(Token&& token) {
    return asio::async_initiate<Token, void(std::error_code)>(
        [this](auto handler) {
            start_close(detail::posting_callback<std::error_code>(std::move(handler), executor_));
        },
        token);
}

} // namespace parley::chat::history

#endif
