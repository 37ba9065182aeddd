// libFuzzer target for parley::http::request_parser and, on what it
// accepts, parley::websocket::accept_upgrade.
//
// The input is fed whole and then in PRNG-sized chunks (each a private
// copy that dies after it is fed, so a view kept into the caller's bytes
// is a use-after-free for AddressSanitizer); both must give the same
// outcome: error, bytes taken, and the parsed head. Checked throughout:
// bytes taken <= bytes given, the head within its size and field limits,
// and every answer (101 or error) a well-formed response.
//
//   byte 0: head size limit: 255 the default (8 KiB), else 64 + 32 * byte
//   byte 1: field limit: byte % 70
//   byte 2: chunking seed
#include <parley/http/error.hpp>
#include <parley/http/request_parser.hpp>
#include <parley/http/response.hpp>
#include <parley/http/response_parser.hpp>
#include <parley/websocket/handshake.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace {

[[noreturn]] void fail(const char* what) {
    std::fprintf(stderr, "http_request_fuzz: %s\n", what);
    std::abort();
}

#define FUZZ_CHECK(cond)                                                                      \
    do {                                                                                      \
        if (!(cond))                                                                          \
            fail(#cond);                                                                      \
    } while (0)

struct outcome {
    std::error_code ec;
    std::size_t used = 0;
    bool done = false;
    std::string method, target;
    std::vector<std::string> fields; // name, value, name, value...

    bool operator==(const outcome&) const = default;
};

outcome describe(const parley::http::request_parser& p, std::error_code ec, std::size_t used) {
    outcome o;
    o.ec = ec;
    o.used = used;
    o.done = p.done();
    if (o.done) {
        o.method = p.method();
        o.target = p.target();
        for (std::size_t i = 0; i < p.field_count(); ++i) {
            o.fields.emplace_back(p.field_name(i));
            o.fields.emplace_back(p.field_value(i));
        }
    }
    return o;
}

// A response parley wrote parses, with the status it meant.
void check_response(std::string_view wire, int status) {
    parley::http::response_parser r;
    std::error_code ec;
    const std::size_t used = r.feed(wire, ec);
    FUZZ_CHECK(!ec);
    FUZZ_CHECK(r.done());
    FUZZ_CHECK(r.status() == status);
    const auto length = r.field("Content-Length");
    FUZZ_CHECK(status == 101 ? !length && used == wire.size()
                             : length && *length == std::to_string(wire.size() - used));
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 3)
        return 0;
    parley::http::head_limits limits;
    if (data[0] != 255)
        limits.max_bytes = 64 + 32 * std::size_t{data[0]};
    limits.max_fields = data[1] % 70;
    std::uint32_t state = data[2] * 2654435761u + 1;
    const std::string_view in(reinterpret_cast<const char*>(data + 3), size - 3);

    parley::http::request_parser whole(limits);
    std::error_code ec;
    const std::size_t used = whole.feed(in, ec);
    FUZZ_CHECK(used <= in.size());
    FUZZ_CHECK(whole.size() <= limits.max_bytes);
    FUZZ_CHECK(whole.field_count() <= limits.max_fields);
    FUZZ_CHECK(!(ec && whole.done()));
    if (whole.done())
        FUZZ_CHECK(in.substr(0, used).ends_with("\r\n\r\n"));
    else if (!ec)
        FUZZ_CHECK(used == in.size());
    const outcome want = describe(whole, ec, used);

    parley::http::request_parser pieces(limits);
    std::error_code pec;
    std::size_t taken = 0, fed = 0;
    while (fed < in.size() && !pec && !pieces.done()) {
        state = state * 1103515245u + 12345u;
        const std::uint32_t r = state >> 16;
        std::size_t n = r % 4 == 0 ? 1 : r % 4 == 1 ? 1 + r % 9 : r % 4 == 2 ? r % 200 : in.size();
        if (n > in.size() - fed)
            n = in.size() - fed;
        const std::string chunk(in.substr(fed, n));
        const std::size_t took = pieces.feed(chunk, pec);
        FUZZ_CHECK(took <= n);
        FUZZ_CHECK(pec || pieces.done() || took == n);
        taken += took;
        fed += n;
    }
    // The bytes taken after an error are not part of the outcome's promise
    // beyond the bound; compare them only when the head was complete.
    outcome got = describe(pieces, pec, taken);
    if (want.ec) {
        FUZZ_CHECK(got.ec == want.ec);
        got.used = want.used;
    }
    FUZZ_CHECK(got == want);

    if (ec) {
        FUZZ_CHECK(&ec.category() == &parley::http::error_category());
        check_response(parley::http::error_response(ec), parley::http::status(ec));
        return 0;
    }
    if (!whole.done())
        return 0;
    parley::websocket::server_options options;
    options.subprotocols = {"chat", "parley"};
    options.deflate.enabled = true;
    options.allowed_origins = {"http://127.0.0.1:8080"};
    const auto hs = parley::websocket::accept_upgrade(whole, options);
    check_response(hs.response, hs.error ? parley::http::status(hs.error) : 101);
    if (!hs.error) {
        // parley's client accepts what parley's server answered.
        parley::websocket::client_options co;
        co.host = "fuzz";
        co.subprotocols = {hs.subprotocol.empty() ? "chat" : hs.subprotocol};
        co.deflate.enabled = true;
        parley::websocket::client_handshake client(co, std::string(*whole.field("Sec-WebSocket-Key")));
        std::error_code cec;
        client.feed(hs.response, cec);
        FUZZ_CHECK(!cec);
        FUZZ_CHECK(client.done());
    }
    return 0;
}
