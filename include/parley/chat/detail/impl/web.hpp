// parley chat: the web port. Each connection's request goes through a
// web_door (the page, an HTTP error, or the upgrade); an upgraded one
// becomes a chat connection whose session runs the WebSocket input decoder.
#ifndef PARLEY_CHAT_DETAIL_IMPL_WEB_HPP
#define PARLEY_CHAT_DETAIL_IMPL_WEB_HPP

#include <parley/chat/metrics.hpp>

namespace parley::chat::detail {

template <class Stream>
void chat_server::open_door(Stream stream, std::string peer) {
    // Ids apart from the TLS handshakes' (parley/chat/tls.hpp counts from 1).
    const std::uint64_t id = (std::uint64_t{1} << 63) | next_door_.fetch_add(1, std::memory_order_relaxed);
    std::weak_ptr<chat_server> weak = weak_from_this();
    transport::web_options web;
    web.allowed_origins = options_.web_origins;
    web.secure = options_.tls != nullptr;
    web.deflate = options_.web_deflate;
    web.metrics = [weak] {
        auto self = weak.lock();
        return self ? render_metrics(self->metrics()) : std::string();
    };
    auto door = std::make_shared<transport::web_door<Stream>>(
        std::move(stream), std::move(web), http::head_limits{}, options_.web_request_timeout,
        [weak, peer](Stream&& upgraded, std::string first_bytes, bool deflate) {
            if (auto self = weak.lock())
                self->adopt_websocket(std::move(upgraded), peer, std::move(first_bytes), deflate);
        },
        [weak](int status, std::error_code) {
            if (auto self = weak.lock())
                self->web_refused(status);
        });
    // Counted while it reads its request (at most max_clients at once),
    // and closed by stop().
    door->on_end([weak, id] {
        if (auto self = weak.lock())
            self->handshake_ended(id);
    });
    std::weak_ptr<transport::web_door<Stream>> weak_door = door;
    auto executor = door->get_executor();
    if (!handshake_started(id, [weak_door, executor] {
            asio::post(executor, [weak_door] {
                if (auto d = weak_door.lock())
                    d->cancel();
            });
        }, &security_counters::web_requests_refused))
        return; // the connection closes with the door
    asio::dispatch(executor, [door] { door->start(); });
}

template <class Stream>
void chat_server::adopt_websocket(Stream stream, std::string peer, std::string first_bytes, bool deflate) {
    auto s = enter(std::move(stream), deflate ? transport::encoding::websocket_deflate : transport::encoding::websocket,
                   std::move(peer));
    // What the client sent right behind its request: its first frames.
    s->stream().unread(std::as_bytes(std::span(first_bytes)));
    s->read_with(transport::websocket_input<chat_server>(shared_from_this(), s->id(),
                                                         options_.max_frame_bytes, deflate));
}

inline metrics_snapshot chat_server::metrics() const {
    metrics_snapshot s;
    s.hub = counters();
    s.limits = limits();
    s.security = security();
    s.cluster = cluster_counters();
    s.latency = latency();
    if (options_.history_store)
        s.history_store = options_.history_store->stats();
    std::lock_guard lock(mutex_);
    s.history_storing = core_.storing();
    for (const auto& [id, conn] : connections_)
        // Compressed or not, a web connection is a web connection.
        if (const std::size_t i = transport::is_websocket(static_cast<transport::encoding>(conn.encoding))
                                      ? 2
                                      : conn.encoding;
            i < s.connections.size())
            ++s.connections[i];
    return s;
}

inline void chat_server::web_refused(int status) {
    std::lock_guard lock(mutex_);
    if (status == 408)
        ++security_.web_request_timeouts;
    else
        ++security_.web_requests_refused;
}

} // namespace parley::chat::detail

#endif
