// parley: the composed operations of async_client's async_connect() and
// async_close().
#ifndef PARLEY_CLIENT_IMPL_ASYNC_CLIENT_OPS_HPP
#define PARLEY_CLIENT_IMPL_ASYNC_CLIENT_OPS_HPP

#include <parley/client/detail/client_impl.hpp>

#include <asio/bind_cancellation_slot.hpp>
#include <asio/dispatch.hpp>
#include <asio/post.hpp>

namespace parley::detail {

template <class Executor, class Transport>
struct client_connect_op {
    using port_type = std::uint16_t;
    std::shared_ptr<client_impl<Executor, Transport>> impl;
    std::string host;
    std::uint16_t port;
    std::error_code early_error{};
    enum class phase : unsigned char { start, on_executor, posted } at = phase::start;

    template <class Self>
    void operator()(Self& self) {
        if (at == phase::start) {
            // The client's state is only touched on its executor, whichever
            // thread starts the operation (use_future, for one).
            at = phase::on_executor;
            auto ex = impl->executor();
            return asio::dispatch(ex, std::move(self));
        }
        if (at == phase::posted)
            return self.complete(early_error, asio::ip::tcp::endpoint());
        early_error = impl->begin_connect(host, port);
        if (early_error) {
            at = phase::posted;
            return asio::post(std::move(self));
        }
        // The inner connect listens to the client's own signal, so that
        // close() and abort() can stop it too; the caller's cancellation
        // is forwarded to that signal.
        auto slot = self.get_cancellation_state().slot();
        if (slot.is_connected())
            slot.assign([impl = impl.get()](asio::cancellation_type type) {
                impl->cancel_connect(type);
            });
        // Everything the call needs is taken out before `self` (and this
        // object with it) is moved into the handler.
        auto& client = *impl;
        const std::string where = std::move(host);
        client_connect_op::port_type at = port;
        parley::async_connect(client.connecting_socket(), where, at,
                              client.connect_options_for_events(),
                              asio::bind_cancellation_slot(client.connect_slot(), std::move(self)));
    }

    // The TCP connect finished: secure the connection (TLS) next.
    template <class Self>
    void operator()(Self& self, std::error_code ec, asio::ip::tcp::endpoint peer) {
        auto& client = *impl;
        client.connected(ec, peer, std::move(self));
    }

    // Secured (or failed).
    template <class Self>
    void operator()(Self& self, std::error_code ec) {
        ec = impl->connect_finished(ec);
        const auto peer = impl->current() ? impl->current()->peer : asio::ip::tcp::endpoint();
        self.complete(ec, ec ? asio::ip::tcp::endpoint() : peer);
    }
};

template <class Executor, class Transport>
struct client_close_op {
    std::shared_ptr<client_impl<Executor, Transport>> impl;
    std::chrono::milliseconds timeout;
    enum class phase : unsigned char { start, on_executor, posted, waiting } at = phase::start;

    template <class Self>
    void operator()(Self& self) {
        if (at == phase::start) {
            at = phase::on_executor;
            auto ex = impl->executor();
            return asio::dispatch(ex, std::move(self));
        }
        if (at == phase::posted)
            return self.complete(std::error_code());
        if (impl->begin_close(timeout)) {
            at = phase::posted; // nothing to wait for: success
            return asio::post(std::move(self));
        }
        at = phase::waiting;
        impl->done_timer().async_wait(std::move(self));
    }

    // The close finished (the timer was cancelled to say so), or the
    // caller cancelled the wait: then the connection is aborted.
    template <class Self>
    void operator()(Self& self, std::error_code) {
        if (impl->state() != client_state::closed)
            impl->abort();
        self.complete(impl->close_result());
    }
};

} // namespace parley::detail

#endif
