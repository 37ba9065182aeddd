// parley: websocket::stream's blocking functions: each runs its async_
// counterpart, then the stream's io_context on the calling thread until the
// operation completes. Included by websocket/stream.hpp.
#ifndef PARLEY_WEBSOCKET_IMPL_STREAM_BLOCKING_HPP
#define PARLEY_WEBSOCKET_IMPL_STREAM_BLOCKING_HPP

#include <parley/detail/io_executor.hpp>

#include <asio/io_context.hpp>
#include <asio/strand.hpp>

#include <stdexcept>
#include <system_error>

namespace parley::websocket {
namespace detail {

// The io_context behind an executor: an io_context's own, or a strand of
// one, bare or held by an any_io_executor; null for anything else.
template <class Executor>
asio::io_context* io_context_of(const Executor& ex) {
    using plain = asio::io_context::executor_type;
    if (const auto* p = parley::detail::held_executor<plain>(ex))
        return &p->context();
    if (const auto* s = parley::detail::held_executor<asio::strand<plain>>(ex))
        return &s->get_inner_executor().context();
    return nullptr;
}

// Starts an operation with a handler that stores its result, and runs the
// executor's io_context until the handler has run.
template <class Executor, class Start>
void run_until_done(const Executor& ex, Start start) {
    asio::io_context* ctx = io_context_of(ex);
    if (ctx == nullptr)
        throw std::logic_error("parley::websocket::stream: the blocking functions need an io_context's executor");
    bool done = false;
    start(done);
    ctx->restart();
    while (!done && ctx->run_one() != 0) {
    }
}

inline void throw_if(const std::error_code& ec, const char* what) {
    if (ec)
        throw std::system_error(ec, what);
}

} // namespace detail

template <class NextLayer>
void stream<NextLayer>::accept(const server_options& options, std::error_code& ec) {
    detail::run_until_done(get_executor(), [&](bool& done) {
        async_accept(options, [&](std::error_code e) {
            ec = e;
            done = true;
        });
    });
}

template <class NextLayer>
void stream<NextLayer>::accept(const server_options& options) {
    std::error_code ec;
    accept(options, ec);
    detail::throw_if(ec, "parley::websocket::stream::accept");
}

template <class NextLayer>
void stream<NextLayer>::handshake(client_options options, std::error_code& ec) {
    detail::run_until_done(get_executor(), [&](bool& done) {
        async_handshake(std::move(options), [&](std::error_code e) {
            ec = e;
            done = true;
        });
    });
}

template <class NextLayer>
void stream<NextLayer>::handshake(std::string_view host, std::string_view target) {
    client_options o;
    o.host = std::string(host);
    o.target = std::string(target);
    std::error_code ec;
    handshake(std::move(o), ec);
    detail::throw_if(ec, "parley::websocket::stream::handshake");
}

template <class NextLayer>
std::size_t stream<NextLayer>::read(std::string& out, std::error_code& ec) {
    std::size_t size = 0;
    detail::run_until_done(get_executor(), [&](bool& done) {
        async_read(out, [&](std::error_code e, std::size_t n) {
            ec = e;
            size = n;
            done = true;
        });
    });
    return size;
}

template <class NextLayer>
std::size_t stream<NextLayer>::read(std::string& out) {
    std::error_code ec;
    const std::size_t n = read(out, ec);
    detail::throw_if(ec, "parley::websocket::stream::read");
    return n;
}

template <class NextLayer>
std::size_t stream<NextLayer>::write(message_type type, asio::const_buffer data, std::error_code& ec) {
    std::size_t size = 0;
    detail::run_until_done(get_executor(), [&](bool& done) {
        async_write(type, data, [&](std::error_code e, std::size_t n) {
            ec = e;
            size = n;
            done = true;
        });
    });
    return size;
}

template <class NextLayer>
std::size_t stream<NextLayer>::write(message_type type, asio::const_buffer data) {
    std::error_code ec;
    const std::size_t n = write(type, data, ec);
    detail::throw_if(ec, "parley::websocket::stream::write");
    return n;
}

template <class NextLayer>
void stream<NextLayer>::close(close_code code, std::string_view reason, std::error_code& ec) {
    detail::run_until_done(get_executor(), [&](bool& done) {
        async_close(code, reason, [&](std::error_code e) {
            ec = e;
            done = true;
        });
    });
}

template <class NextLayer>
void stream<NextLayer>::close(close_code code, std::string_view reason) {
    std::error_code ec;
    close(code, reason, ec);
    detail::throw_if(ec, "parley::websocket::stream::close");
}

} // namespace parley::websocket

#endif
