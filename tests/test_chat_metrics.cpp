// Tests for include/parley/chat/metrics.hpp: the Prometheus text the web
// port serves at /metrics. Included first: the header must stand on its own.
#include <parley/chat/metrics.hpp>

#include "support/skip.hpp"
#include "test_chat_support.hpp"

#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <unistd.h>

namespace {

namespace pc = parley::chat;

struct family {
    int help = 0;
    int type = 0;
    std::string kind;
    int samples = 0;
};

// Checks `text` line by line against the 0.0.4 format as the chat uses
// it (no timestamps, integer values); returns the families by name.
std::map<std::string, family> parse(const std::string& text) {
    static const std::regex name_re("[a-zA-Z_:][a-zA-Z0-9_:]*");
    static const std::regex sample_re(
        R"(([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="[^"\\\n]*"(,[a-zA-Z_][a-zA-Z0-9_]*="[^"\\\n]*")*\})? (0|[1-9][0-9]*|[0-9]+\.[0-9]+))");
    std::map<std::string, family> out;
    REQUIRE(!text.empty());
    CHECK(text.back() == '\n');
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        INFO("line: " << line);
        REQUIRE(!line.empty());
        std::smatch m;
        if (line.rfind("# HELP ", 0) == 0 || line.rfind("# TYPE ", 0) == 0) {
            const auto rest = line.substr(7);
            const auto sp = rest.find(' ');
            REQUIRE(sp != std::string::npos);
            const auto name = rest.substr(0, sp);
            CHECK(std::regex_match(name, name_re));
            auto& f = out[name];
            CHECK(f.samples == 0); // HELP and TYPE come before the samples
            if (line[2] == 'H') {
                ++f.help;
            } else {
                ++f.type;
                f.kind = rest.substr(sp + 1);
                CHECK((f.kind == "counter" || f.kind == "gauge" || f.kind == "histogram"));
            }
        } else {
            REQUIRE(std::regex_match(line, m, sample_re));
            std::string name = m[1].str();
            // A histogram's samples: NAME_bucket, NAME_sum, NAME_count.
            for (const std::string suffix : {"_bucket", "_sum", "_count"})
                if (out.count(name) == 0 && name.size() > suffix.size() &&
                    name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0 &&
                    out.count(name.substr(0, name.size() - suffix.size())) == 1 &&
                    out[name.substr(0, name.size() - suffix.size())].kind == "histogram")
                    name = name.substr(0, name.size() - suffix.size());
            REQUIRE(out.count(name) == 1); // declared by its HELP/TYPE
            ++out[name].samples;
        }
    }
    return out;
}

void check_families(const std::map<std::string, family>& families) {
    for (const auto& entry : families) {
        // Not a structured binding: INFO captures `name`, which clang 14
        // cannot do with a binding.
        const std::string& name = entry.first;
        const family& f = entry.second;
        INFO("metric " << name);
        CHECK(f.help == 1);
        CHECK(f.type == 1);
        CHECK(f.samples >= 1);
        const bool total = name.size() > 6 && name.compare(name.size() - 6, 6, "_total") == 0;
        CHECK(total == (f.kind == "counter"));
        if (f.kind == "histogram") // Prometheus: the unit in the name, base units
            CHECK(name.compare(name.size() - 8, 8, "_seconds") == 0);
        CHECK(name.rfind("parley_chat_", 0) == 0);
    }
}

} // namespace

TEST_CASE("metrics: every line parses, each family has one HELP and TYPE, counters end in _total") {
    pc::metrics_snapshot s;
    s.connections = {3, 2, 1};
    s.hub.rooms = 4;
    s.hub.deliveries = 1234567890123;
    s.limits.slow_consumers = 7;
    s.limits.outbound_bytes = 4096;
    s.limits.resumes = 11;
    s.limits.resumes_failed = 2;
    s.limits.graces_expired = 3;
    s.security.access_denied = 5;
    s.cluster.connected = true;
    const auto text = pc::render_metrics(s);
    const auto families = parse(text);
    check_families(families);
    CHECK(families.size() >= 25);
    CHECK(text.find("parley_chat_connections{transport=\"framed\"} 3\n") != std::string::npos);
    CHECK(text.find("parley_chat_connections{transport=\"line\"} 2\n") != std::string::npos);
    CHECK(text.find("parley_chat_connections{transport=\"web\"} 1\n") != std::string::npos);
    CHECK(text.find("parley_chat_rooms 4\n") != std::string::npos);
    CHECK(text.find("parley_chat_deliveries_total 1234567890123\n") != std::string::npos);
    CHECK(text.find("parley_chat_disconnects_total{reason=\"slow_consumer\"} 7\n") != std::string::npos);
    CHECK(text.find("parley_chat_disconnects_total{reason=\"access_denied\"} 5\n") != std::string::npos);
    CHECK(text.find("parley_chat_outbound_queued_bytes 4096\n") != std::string::npos);
    CHECK(text.find("parley_chat_resumes_total{result=\"ok\"} 11\n") != std::string::npos);
    CHECK(text.find("parley_chat_resumes_total{result=\"failed\"} 2\n") != std::string::npos);
    CHECK(text.find("parley_chat_resume_graces_expired_total 3\n") != std::string::npos);
    CHECK(text.find("parley_chat_cluster_connected 1\n") != std::string::npos);
}

TEST_CASE("metrics: a zero snapshot still lists every family") {
    const auto families = parse(pc::render_metrics({}));
    check_families(families);
    CHECK(families.size() == parse(pc::render_metrics({.connections = {1, 1, 1}})).size());
}

TEST_CASE("metrics: the delivery latency histogram, rendered and scraped while a room talks") {
    pc::metrics_snapshot s;
    s.latency.within[0] = 2; // <= 25 us
    s.latency.within[5] = 1; // (0.5 ms, 1 ms]
    s.latency.count = 4;     // one above the last bound
    s.latency.sum_ns = 1'250'000'000;
    const auto text = pc::render_metrics(s);
    check_families(parse(text));
    CHECK(text.find("# TYPE parley_chat_delivery_latency_seconds histogram\n") != std::string::npos);
    CHECK(text.find("parley_chat_delivery_latency_seconds_bucket{le=\"2.5e-05\"} 2\n") != std::string::npos);
    CHECK(text.find("parley_chat_delivery_latency_seconds_bucket{le=\"0.001\"} 3\n") != std::string::npos);
    CHECK(text.find("parley_chat_delivery_latency_seconds_bucket{le=\"1\"} 3\n") != std::string::npos);
    CHECK(text.find("parley_chat_delivery_latency_seconds_bucket{le=\"+Inf\"} 4\n") != std::string::npos);
    CHECK(text.find("parley_chat_delivery_latency_seconds_sum 1.250000000\n") != std::string::npos);
    CHECK(text.find("parley_chat_delivery_latency_seconds_count 4\n") != std::string::npos);

    // A live server: each read that says a room message gives one sample.
    using namespace parley::test::chat;
    pc::server_options options;
    options.web_port = 0;
    server_fixture f(options);
    client alice(f.port()), bob(f.port());
    alice.login("alice");
    bob.login("bob");
    CHECK(f.server().delivery_latency().count == 0); // no message said yet
    for (int i = 0; i < 3; ++i) {
        alice.say("hello " + std::to_string(i));
        const std::string said = "hello " + std::to_string(i);
        bob.wait_for<pc::message_event>([&](const pc::message_event& m) { return m.text == said; });
    }
    const auto l = f.server().delivery_latency();
    CHECK(l.count == 3); // three reads (each say waited for its delivery)
    std::uint64_t in_buckets = 0;
    for (auto n : l.within)
        in_buckets += n;
    CHECK(in_buckets <= l.count);
    CHECK(l.sum_ns > 0);
    const auto response = http_get(f.server().web_port(), "/metrics");
    REQUIRE(response);
    CHECK(response->find("parley_chat_delivery_latency_seconds_count 3\n") != std::string::npos);
}

TEST_CASE("promtool: check metrics accepts a scrape of a live server") {
    if (std::system("command -v promtool >/dev/null 2>&1") != 0) {
        parley::test::skip("promtool not installed (Debian package prometheus)");
        return;
    }
    using namespace parley::test::chat;
    pc::server_options options;
    options.web_port = 0;
    server_fixture f(options);
    client alice(f.port());
    alice.login("alice");
    alice.say("hello");
    const auto response = http_get(f.server().web_port(), "/metrics");
    REQUIRE(response);
    const auto body_at = response->find("\r\n\r\n");
    REQUIRE(body_at != std::string::npos);
    CHECK(response->find("parley_chat_delivery_latency_seconds_bucket{le=\"+Inf\"}") != std::string::npos);
    char path[] = "/tmp/parley_metrics_XXXXXX";
    const int fd = ::mkstemp(path);
    REQUIRE(fd >= 0);
    ::close(fd);
    std::ofstream(path, std::ios::binary) << response->substr(body_at + 4);
    const int rc = std::system(("promtool check metrics < " + std::string(path) + " 2>&1").c_str());
    std::remove(path);
    CHECK(rc == 0);
}

namespace {
pc::metrics_snapshot with_history_store() {
    pc::metrics_snapshot s;
    parley::chat::history::store_stats h;
    h.records_queued = 1000;
    h.records_stored = 990;
    h.records_refused = 4;
    h.records_lost = 10;
    h.batches = 7;
    h.failures = 1;
    h.commits_within[1] = 3; // (0.0005, 0.001]
    h.commits_within[4] = 2; // (0.005, 0.01]
    h.commit_ns_total = 25'500'000;
    s.history_store = h;
    s.history_storing = false;
    return s;
}
} // namespace

TEST_CASE("metrics: the history store's counters and its commit-time histogram in seconds") {
    CHECK(pc::render_metrics({}).find("parley_chat_history") == std::string::npos); // no store
    const auto text = pc::render_metrics(with_history_store());
    CHECK(text.find("parley_chat_history_store_up 0\n") != std::string::npos);
    CHECK(text.find("parley_chat_history_records_stored_total 990\n") != std::string::npos);
    CHECK(text.find("parley_chat_history_records_lost_total 10\n") != std::string::npos);
    CHECK(text.find("parley_chat_history_batches_total 7\n") != std::string::npos);
    CHECK(text.find("parley_chat_history_failures_total 1\n") != std::string::npos);
    CHECK(text.find("# TYPE parley_chat_history_commit_duration_seconds histogram\n") !=
          std::string::npos);
    // Cumulative buckets; the two batches above the last bound only in +Inf.
    CHECK(text.find("parley_chat_history_commit_duration_seconds_bucket{le=\"0.0005\"} 0\n") !=
          std::string::npos);
    CHECK(text.find("parley_chat_history_commit_duration_seconds_bucket{le=\"0.001\"} 3\n") !=
          std::string::npos);
    CHECK(text.find("parley_chat_history_commit_duration_seconds_bucket{le=\"0.01\"} 5\n") !=
          std::string::npos);
    CHECK(text.find("parley_chat_history_commit_duration_seconds_bucket{le=\"2.5\"} 5\n") !=
          std::string::npos);
    CHECK(text.find("parley_chat_history_commit_duration_seconds_bucket{le=\"+Inf\"} 7\n") !=
          std::string::npos);
    CHECK(text.find("parley_chat_history_commit_duration_seconds_sum 0.025500000\n") !=
          std::string::npos);
    CHECK(text.find("parley_chat_history_commit_duration_seconds_count 7\n") != std::string::npos);
    // Buckets read after the batch counter never exceed the count.
    auto odd = with_history_store();
    odd.history_store->batches = 4;
    CHECK(pc::render_metrics(odd).find("parley_chat_history_commit_duration_seconds_count 5\n") !=
          std::string::npos);
}

TEST_CASE("promtool: check metrics accepts the history store's figures") {
    if (std::system("command -v promtool >/dev/null 2>&1") != 0) {
        parley::test::skip("promtool not installed (Debian package prometheus)");
        return;
    }
    char path[] = "/tmp/parley_metrics_XXXXXX";
    const int fd = ::mkstemp(path);
    REQUIRE(fd >= 0);
    ::close(fd);
    std::ofstream(path, std::ios::binary) << pc::render_metrics(with_history_store());
    const int rc = std::system(("promtool check metrics < " + std::string(path) + " 2>&1").c_str());
    std::remove(path);
    CHECK(rc == 0);
}
