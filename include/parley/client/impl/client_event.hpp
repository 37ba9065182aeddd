// parley: client_state and client_event texts.
#ifndef PARLEY_CLIENT_IMPL_CLIENT_EVENT_HPP
#define PARLEY_CLIENT_IMPL_CLIENT_EVENT_HPP

#include <asio/error.hpp>

#include <string>
#include <string_view>

namespace parley {

inline std::string_view to_string(client_state state) noexcept {
    switch (state) {
    case client_state::idle:
        return "idle";
    case client_state::connecting:
        return "connecting";
    case client_state::connected:
        return "connected";
    case client_state::reconnecting:
        return "reconnecting";
    case client_state::closing:
        return "closing";
    case client_state::closed:
        return "closed";
    }
    return "unknown";
}

inline std::string client_event::describe() const {
    auto unsent_text = [this] {
        return unsent == 0 ? std::string()
                           : "; " + std::to_string(unsent) +
                                 (unsent == 1 ? " unsent frame dropped" : " unsent frames dropped");
    };
    switch (what) {
    case kind::connect_progress:
        return progress.describe();
    case kind::connected:
        return "connected to " + detail::endpoint_text(endpoint);
    case kind::disconnected: {
        std::string text = "connection to " + detail::endpoint_text(endpoint);
        text += error == asio::error::eof ? std::string(" closed by the peer")
                                          : " lost: " + error.message();
        text += unsent_text();
        if (reconnecting)
            text += "; reconnecting in " + std::to_string(next_delay.count()) + " ms";
        return text;
    }
    case kind::closed:
        return (error ? "closed: " + error.message() : std::string("closed")) + unsent_text();
    }
    return "client event";
}

} // namespace parley

#endif
