// parley chat transports: what the web port answers to one HTTP request,
// free of I/O. `GET /` is the chat page, `GET /ws` the WebSocket upgrade
// to the chat; `GET /metrics` the server's counters in the Prometheus
// text format, `GET /healthz` "ok"; anything else a plain HTTP error. The I/O around it is
// web_door.hpp.
#ifndef PARLEY_CHAT_TRANSPORT_WEB_ROUTES_HPP
#define PARLEY_CHAT_TRANSPORT_WEB_ROUTES_HPP

#include <parley/chat/web/page.hpp>
#include <parley/http/error.hpp>
#include <parley/http/request_parser.hpp>
#include <parley/http/response.hpp>
#include <parley/websocket/handshake.hpp>

#include <functional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace parley::chat::transport {

/// The web port's settings.
struct web_options {
    /// Origins whose pages may open the chat's WebSocket (e.g.
    /// "https://chat.example.org"). Empty: the page's own origin only
    /// (the Origin field must name the Host the request was sent to), so
    /// another site's page cannot chat in its visitor's name. Clients that
    /// are not browsers send no Origin and are let in.
    std::vector<std::string> allowed_origins;
    /// Whether the port is under TLS (the same-origin check then expects
    /// an https:// origin).
    bool secure = false;
    /// Makes the text `GET /metrics` answers (parley/chat/metrics.hpp),
    /// called at each request. Empty: /metrics is not found.
    std::function<std::string()> metrics;
    /// Accept permessage-deflate offers (needs zlib: ignored without
    /// PARLEY_HAVE_ZLIB), with server_no_context_takeover, so that one
    /// compressed broadcast serves every such recipient, and
    /// client_no_context_takeover, so that an idle connection keeps no
    /// inflater. Offers limiting the server's window are declined (that
    /// connection goes uncompressed).
    bool deflate = false;
};

/// What to do with one request.
struct web_answer {
    enum class kind {
        respond, ///< write `response`, then close the connection
        upgrade, ///< write `response` (the 101), then speak WebSocket
    } what = kind::respond;
    std::string response;
    /// Why the request was refused (empty for the page and an upgrade).
    std::error_code error;
    int status = 200;
    /// An upgrade that negotiated permessage-deflate.
    bool deflate = false;
};

/// The answer to a complete, valid request head.
inline web_answer route_web_request(const http::request_parser& request, const web_options& options) {
    web_answer answer;
    const std::string_view path = request.path();
    if (path == "/ws") {
        websocket::server_options ws;
        if (options.allowed_origins.empty()) {
            if (const auto host = request.field("Host"))
                ws.allowed_origins.push_back(std::string(options.secure ? "https://" : "http://") +
                                             std::string(*host));
        } else {
            ws.allowed_origins = options.allowed_origins;
        }
#if PARLEY_HAVE_ZLIB
        ws.deflate = {.enabled = options.deflate,
                      .server_no_context_takeover = true,
                      .client_no_context_takeover = true,
                      .allow_server_window_limit = false};
#endif
        auto hs = websocket::accept_upgrade(request, ws);
        answer.deflate = hs.deflate.has_value();
        answer.response = std::move(hs.response);
        if (hs) {
            answer.what = web_answer::kind::upgrade;
            answer.status = 101;
        } else {
            answer.error = hs.error;
            answer.status = http::status(hs.error);
        }
        return answer;
    }
    if (path == "/" || path == "/index.html") {
        // The page runs only its own inline script and style, talks only
        // to its own origin, and may not be framed by another site.
        answer.response = http::make_response(
            200, "text/html; charset=utf-8", web::chat_page,
            {{"Cache-Control", "no-cache"},
             {"X-Content-Type-Options", "nosniff"},
             {"Referrer-Policy", "no-referrer"},
             {"Content-Security-Policy",
              "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
              "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"}});
        return answer;
    }
    if (path == "/healthz") {
        answer.response = http::make_response(200, "text/plain; charset=utf-8", "ok\n",
                                              {{"Cache-Control", "no-store"}});
        return answer;
    }
    if (path == "/metrics" && options.metrics) {
        answer.response = http::make_response(200, "text/plain; version=0.0.4; charset=utf-8", options.metrics(),
                                              {{"Cache-Control", "no-store"}});
        return answer;
    }
    answer.status = 404;
    answer.response = http::make_response(404, "text/plain; charset=utf-8",
                                          "not found: the chat page is at / and its WebSocket at /ws\n");
    return answer;
}

/// The answer to a request head that could not be parsed (`ec` from
/// http::request_parser::feed, or http::error::header_too_large).
inline web_answer refuse_web_request(std::error_code ec) {
    web_answer answer;
    answer.error = ec;
    answer.status = http::status(ec);
    answer.response = http::error_response(ec);
    return answer;
}

} // namespace parley::chat::transport

#endif
