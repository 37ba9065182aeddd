// parley: async_client bodies.
#ifndef PARLEY_CLIENT_IMPL_ASYNC_CLIENT_HPP
#define PARLEY_CLIENT_IMPL_ASYNC_CLIENT_HPP

#include <parley/client/impl/client_event.hpp>
#include <parley/client/detail/client_impl.hpp>
#include <parley/client/impl/async_client_ops.hpp>

#include <asio/compose.hpp>
#include <asio/dispatch.hpp>

namespace parley {

template <class Executor, class Transport>
basic_async_client<Executor, Transport>::basic_async_client(const executor_type& ex,
                                                           client_options options,
                                                           Transport transport)
    : impl_(std::make_shared<detail::client_impl<Executor, Transport>>(ex, std::move(options),
                                                                       std::move(transport))) {}

template <class Executor, class Transport>
basic_async_client<Executor, Transport>& basic_async_client<Executor, Transport>::operator=(
    basic_async_client&& other) noexcept {
    if (this != &other) {
        if (impl_)
            impl_->detach();
        impl_ = std::move(other.impl_);
    }
    return *this;
}

template <class Executor, class Transport>
basic_async_client<Executor, Transport>::~basic_async_client() {
    if (impl_)
        impl_->detach();
}

template <class Executor, class Transport>
auto basic_async_client<Executor, Transport>::get_executor() const noexcept -> executor_type {
    return impl_->executor();
}

template <class Executor, class Transport>
void basic_async_client<Executor, Transport>::on_frame(frame_handler handler) {
    impl_->set_frame_handler(std::move(handler));
}

template <class Executor, class Transport>
void basic_async_client<Executor, Transport>::on_event(event_handler handler) {
    impl_->set_event_handler(std::move(handler));
}

template <class Executor, class Transport>
template <asio::completion_token_for<connect_signature> Token>
auto basic_async_client<Executor, Transport>::async_connect(std::string_view host, std::uint16_t port,
                                                 Token&& token) {
    return asio::async_compose<Token, connect_signature>(
        detail::client_connect_op<Executor, Transport>{impl_, std::string(host), port}, token,
        impl_->executor());
}

template <class Executor, class Transport>
bool basic_async_client<Executor, Transport>::send(std::span<const std::byte> payload, std::error_code& ec) {
    return impl_->send(payload, ec);
}

template <class Executor, class Transport>
bool basic_async_client<Executor, Transport>::send(std::string_view payload, std::error_code& ec) {
    return impl_->send(std::as_bytes(std::span(payload)), ec);
}

template <class Executor, class Transport>
bool basic_async_client<Executor, Transport>::send(std::span<const std::byte> payload) {
    std::error_code ignored;
    return impl_->send(payload, ignored);
}

template <class Executor, class Transport>
bool basic_async_client<Executor, Transport>::send(std::string_view payload) {
    std::error_code ignored;
    return impl_->send(std::as_bytes(std::span(payload)), ignored);
}

template <class Executor, class Transport>
template <asio::completion_token_for<void(std::error_code)> Token>
auto basic_async_client<Executor, Transport>::async_close(Token&& token) {
    return async_close(std::chrono::milliseconds(-1), std::forward<Token>(token));
}

template <class Executor, class Transport>
template <asio::completion_token_for<void(std::error_code)> Token>
auto basic_async_client<Executor, Transport>::async_close(std::chrono::milliseconds timeout, Token&& token) {
    // A negative timeout (the overload without one) means the option's.
    return asio::async_compose<Token, void(std::error_code)>(
        detail::client_close_op<Executor, Transport>{impl_, timeout}, token, impl_->executor());
}

template <class Executor, class Transport>
void basic_async_client<Executor, Transport>::close() {
    asio::dispatch(impl_->executor(),
                   [impl = impl_] { impl->begin_close(std::chrono::milliseconds(-1)); });
}

template <class Executor, class Transport>
void basic_async_client<Executor, Transport>::abort() {
    asio::dispatch(impl_->executor(), [impl = impl_] { impl->abort(); });
}

template <class Executor, class Transport>
client_state basic_async_client<Executor, Transport>::state() const noexcept {
    return impl_->state();
}

template <class Executor, class Transport>
std::size_t basic_async_client<Executor, Transport>::queued_frames() const noexcept {
    const auto& conn = impl_->current();
    return conn ? conn->queue.size() : 0;
}

template <class Executor, class Transport>
std::size_t basic_async_client<Executor, Transport>::queued_bytes() const noexcept {
    const auto& conn = impl_->current();
    return conn ? conn->queue.bytes() : 0;
}

template <class Executor, class Transport>
std::optional<asio::ip::tcp::endpoint> basic_async_client<Executor, Transport>::remote_endpoint() const {
    const auto& conn = impl_->current();
    if (!conn)
        return std::nullopt;
    return conn->peer;
}

template <class Executor, class Transport>
std::string basic_async_client<Executor, Transport>::describe(std::error_code ec) const {
    return impl_->transport().describe(ec);
}

} // namespace parley

#endif
