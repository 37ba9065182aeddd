// Tests for include/parley/http/error.hpp. Included first: the header must
// stand on its own.
#include <parley/http/error.hpp>

#include <doctest/doctest.h>

#include <ostream> // doctest prints std::error_code through it
#include <set>
#include <string>
#include <system_error>

TEST_CASE("http error: the category, messages and statuses") {
    using parley::http::error;
    CHECK(std::string(parley::http::error_category().name()) == "parley.http");
    const std::error_code ec = error::header_too_large;
    CHECK(&ec.category() == &parley::http::error_category());
    // Every value has a message of its own, and a known status or 0.
    std::set<std::string> messages;
    for (int v = 1; v <= static_cast<int>(error::response_too_large); ++v) {
        const std::string m = parley::http::error_category().message(v);
        CHECK(m != "unknown parley.http error");
        messages.insert(m);
        const int s = parley::http::status(static_cast<error>(v));
        CHECK((s == 0 || s == 400 || s == 403 || s == 405 || s == 426 || s == 431 || s == 505));
        if (s != 0)
            CHECK(parley::http::reason_phrase(s) != "Unknown");
    }
    CHECK(messages.size() == static_cast<std::size_t>(error::response_too_large));
    CHECK(parley::http::error_category().message(0) == "unknown parley.http error");
    CHECK(parley::http::status(error::method_not_allowed) == 405);
    CHECK(parley::http::status(error::unsupported_websocket_version) == 426);
    CHECK(parley::http::status(error::origin_not_allowed) == 403);
    CHECK(parley::http::status(error::too_many_fields) == 431);
    CHECK(parley::http::status(error::version_not_supported) == 505);
    CHECK(parley::http::status(error::bad_accept) == 0);
    // An error of another category is an internal error.
    CHECK(parley::http::status(std::make_error_code(std::errc::io_error)) == 500);
}
