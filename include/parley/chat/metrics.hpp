// parley chat: the server's counters in the Prometheus text exposition
// format 0.0.4, as the web port serves them at `GET /metrics`
// (docs/PROTOCOL.md §1b). render_metrics() is a pure function of a
// snapshot, so the format is tested without a network.
// Outside the guard: server.hpp's internals include this header back (the
// web port renders metrics), and must find the counter structs defined.
#include <parley/chat/server.hpp>

#ifndef PARLEY_CHAT_METRICS_HPP
#define PARLEY_CHAT_METRICS_HPP

#include <parley/chat/backplane.hpp>
#include <parley/chat/history/store.hpp>
#include <parley/hub/hub.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace parley::chat {

/// The figures one scrape shows, read from a server at one moment.
struct metrics_snapshot {
    /// Open chat connections by transport: framed, line, web (WebSocket).
    std::array<std::size_t, 3> connections{};
    hub_counters hub{};
    chat::limit_counters limits{};
    security_counters security{};
    backplane_counters cluster{};
    /// The input-to-first-delivery latency histogram.
    delivery_latency latency{};
    /// The history store's counters (nullopt: the server has no store).
    std::optional<history::store_stats> history_store{};
    /// Whether messages still go to the store (false once it failed).
    bool history_storing = false;
};

/// The Content-Type of render_metrics()'s text.
inline constexpr std::string_view metrics_content_type = "text/plain; version=0.0.4; charset=utf-8";

namespace detail {

class metrics_writer {
public:
    explicit metrics_writer(std::string& out) : out_(out) {}

    // One metric family: its HELP and TYPE lines, then its samples, each
    // a label set ("" or `reason="x"`) and a value.
    template <class... Sample>
    void family(std::string_view name, std::string_view type, std::string_view help, Sample... samples) {
        head(name, type, help);
        (sample(name, samples.first, samples.second), ...);
    }

    // A family's HELP and TYPE lines.
    void head(std::string_view name, std::string_view type, std::string_view help) {
        out_ += "# HELP ";
        out_ += name;
        out_ += ' ';
        out_ += help;
        out_ += "\n# TYPE ";
        out_ += name;
        out_ += ' ';
        out_ += type;
        out_ += '\n';
    }

    // A histogram in seconds: `within[i]` counts the observations in
    // (bounds[i-1], bounds[i]]; `count` all of them, `sum_ns` their total.
    template <std::size_t N>
    void histogram(std::string_view name, std::string_view help, const std::array<double, N>& bounds,
                   const std::array<std::uint64_t, N>& within, std::uint64_t count,
                   std::uint64_t sum_ns) {
        head(name, "histogram", help);
        std::uint64_t cumulative = 0;
        const std::string bucket = std::string(name) + "_bucket";
        for (std::size_t i = 0; i < N; ++i) {
            cumulative += within[i];
            char le[48];
            std::snprintf(le, sizeof le, "le=\"%g\"", bounds[i]);
            sample(bucket, le, cumulative);
        }
        count = std::max(count, cumulative); // counters read one by one: never below a bucket
        sample(bucket, "le=\"+Inf\"", count);
        char sum[64];
        std::snprintf(sum, sizeof sum, "%.9f", static_cast<double>(sum_ns) / 1e9);
        out_ += name;
        out_ += "_sum ";
        out_ += sum;
        out_ += '\n';
        sample(std::string(name) + "_count", {}, count);
    }

private:
    void sample(std::string_view name, std::string_view labels, std::uint64_t value) {
        out_ += name;
        if (!labels.empty()) {
            out_ += '{';
            out_ += labels;
            out_ += '}';
        }
        out_ += ' ';
        out_ += std::to_string(value);
        out_ += '\n';
    }

    std::string& out_;
};

inline std::pair<std::string_view, std::uint64_t> one(std::uint64_t v) { return {{}, v}; }
inline std::pair<std::string_view, std::uint64_t> labeled(std::string_view l, std::uint64_t v) { return {l, v}; }

// The history store's figures (docs/HISTORY.md).
inline void render_history_metrics(metrics_writer& w, const history::store_stats& h, bool storing) {
    w.family("parley_chat_history_store_up", "gauge",
             "1 while messages are written to the history store, 0 once it failed.", one(storing ? 1 : 0));
    w.family("parley_chat_history_records_queued_total", "counter",
             "Messages the history store accepted for writing.", one(h.records_queued));
    w.family("parley_chat_history_records_stored_total", "counter",
             "Messages committed to the history store.", one(h.records_stored));
    w.family("parley_chat_history_records_refused_total", "counter",
             "Messages the history store did not accept (queue full, failed, closed).",
             one(h.records_refused));
    w.family("parley_chat_history_records_rejected_total", "counter",
             "Messages the history store dropped as not following their room's last seq.",
             one(h.records_rejected));
    w.family("parley_chat_history_records_lost_total", "counter",
             "Messages accepted by the history store, then lost to a storage failure.",
             one(h.records_lost));
    w.family("parley_chat_history_batches_total", "counter",
             "Write transactions the history store committed.", one(h.batches));
    w.family("parley_chat_history_failures_total", "counter", "History storage operations that failed.",
             one(h.failures));
    w.family("parley_chat_history_reads_total", "counter", "Range reads the history store answered.",
             one(h.reads));
    w.family("parley_chat_history_queued_records", "gauge",
             "Messages accepted by the history store and not yet committed.", one(h.queued_now));
    w.histogram("parley_chat_history_commit_duration_seconds",
                "Time to write and commit one batch of the history store.", history::commit_bucket_bounds,
                h.commits_within, h.batches, h.commit_ns_total);
}

} // namespace detail

/// `s` in the Prometheus text exposition format 0.0.4: one family per
/// figure, each with its HELP and TYPE lines; counters end in `_total`,
/// sizes in `_bytes`.
inline std::string render_metrics(const metrics_snapshot& s) {
    using detail::labeled;
    using detail::one;
    std::string out;
    out.reserve(6 * 1024);
    detail::metrics_writer w(out);
    const auto& h = s.hub;
    const auto& l = s.limits;
    const auto& sec = s.security;
    const auto& c = s.cluster;

    w.family("parley_chat_connections", "gauge", "Open chat connections, by transport.",
             labeled("transport=\"framed\"", s.connections[0]), labeled("transport=\"line\"", s.connections[1]),
             labeled("transport=\"web\"", s.connections[2]));
    w.family("parley_chat_rooms", "gauge", "Rooms with at least one member.", one(h.rooms));
    w.family("parley_chat_room_members", "gauge", "Room memberships of connected clients.", one(h.members));
    w.family("parley_chat_messages_published_total", "counter", "Events published to rooms and clients.",
             one(h.published));
    w.family("parley_chat_deliveries_total", "counter", "Events queued to a recipient.", one(h.deliveries));
    w.family("parley_chat_dropped_total", "counter", "Events dropped from a full queue (drop_oldest).",
             one(h.dropped));
    w.family("parley_chat_failed_deliveries_total", "counter",
             "Recipients found closed or full when an event was queued.", one(h.failed_deliveries));
    w.family("parley_chat_publisher_pauses_total", "counter",
             "Publishers paused by a recipient's full queue (backpressure).", one(h.publisher_pauses));
    w.family("parley_chat_disconnects_total", "counter", "Clients closed by the server, by reason.",
             labeled("reason=\"slow_consumer\"", l.slow_consumers),
             labeled("reason=\"write_timeout\"", l.write_timeouts),
             labeled("reason=\"flooding\"", l.flood_disconnects),
             labeled("reason=\"idle_timeout\"", l.idle_timeouts),
             labeled("reason=\"nickname_timeout\"", l.nickname_timeouts),
             labeled("reason=\"frame_too_large\"", l.frames_too_large),
             labeled("reason=\"access_denied\"", sec.access_denied));
    w.family("parley_chat_resumes_total", "counter", "Sessions resumed with /resume, by result.",
             labeled("result=\"ok\"", l.resumes), labeled("result=\"failed\"", l.resumes_failed));
    w.family("parley_chat_resume_graces_expired_total", "counter",
             "Disconnected sessions whose grace period ended before a resume.", one(l.graces_expired));
    w.family("parley_chat_connections_refused_total", "counter", "Connections refused at accept, by reason.",
             labeled("reason=\"server_full\"", l.server_full),
             labeled("reason=\"address_full\"", l.address_full));
    w.family("parley_chat_accept_pauses_total", "counter", "Accept loop pauses after an error (EMFILE...).",
             one(l.accept_pauses));
    w.family("parley_chat_pings_sent_total", "counter", "Keepalive pings sent.", one(l.pings_sent));
    w.family("parley_chat_budget_refusals_total", "counter",
             "Events refused by the shared outbound budget.", one(l.budget_refusals));
    w.family("parley_chat_lines_too_long_total", "counter", "Line-mode inputs over max_line_bytes, discarded.",
             one(l.lines_too_long));
    w.family("parley_chat_inputs_rate_limited_total", "counter", "Inputs dropped by flood control.",
             one(l.rate_limited));
    w.family("parley_chat_outbound_queued_bytes", "gauge", "Bytes queued for writing, all clients.",
             one(l.outbound_bytes));
    w.family("parley_chat_outbound_queued_peak_bytes", "gauge", "The most bytes ever queued at once.",
             one(l.outbound_peak_bytes));
    w.family("parley_chat_tls_handshake_failures_total", "counter", "TLS handshakes that failed.",
             one(sec.tls_handshake_failures));
    w.family("parley_chat_tls_handshake_timeouts_total", "counter", "TLS handshakes not finished in time.",
             one(sec.tls_handshake_timeouts));
    w.family("parley_chat_handshakes_refused_total", "counter",
             "Connections dropped before their TLS handshake (too many at once, or stopping).",
             one(sec.tls_handshakes_refused));
    w.family("parley_chat_web_requests_refused_total", "counter", "Web port requests answered with an HTTP error.",
             one(sec.web_requests_refused));
    w.family("parley_chat_web_request_timeouts_total", "counter",
             "Web port connections that sent no whole request head in time.", one(sec.web_request_timeouts));
    w.family("parley_chat_cluster_connected", "gauge", "1 while linked to the other instances, else 0.",
             one(c.connected ? 1 : 0));
    w.family("parley_chat_cluster_outages_total", "counter", "Times the backplane link was lost.",
             one(c.outages));
    w.family("parley_chat_cluster_reconnects_total", "counter", "Times the backplane link came back.",
             one(c.reconnects));
    w.family("parley_chat_cluster_published_total", "counter", "Payloads sent to the other instances.",
             one(c.published));
    w.family("parley_chat_cluster_received_total", "counter", "Payloads received from other instances.",
             one(c.received));
    w.family("parley_chat_cluster_dropped_total", "counter", "Payloads not sent because the link was down.",
             one(c.dropped));
    w.family("parley_chat_cluster_malformed_total", "counter", "Payloads received that could not be understood.",
             one(c.malformed));
    w.family("parley_chat_cluster_nick_conflicts_total", "counter",
             "Nicknames found taken elsewhere on reconnect.", one(c.nick_conflicts));
    w.family("parley_chat_cluster_instances_lost_total", "counter",
             "Other instances found dead and cleaned up.", one(c.instances_lost));
    w.histogram("parley_chat_delivery_latency_seconds",
                "Time from an input's read to the queueing of the room message it said for its first "
                "recipient (one sample per read that publishes a message).",
                delivery_latency_bounds, s.latency.within, s.latency.count, s.latency.sum_ns);
    if (s.history_store)
        detail::render_history_metrics(w, *s.history_store, s.history_storing);
    return out;
}

} // namespace parley::chat

#endif
