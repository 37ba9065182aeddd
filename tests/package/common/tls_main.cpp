// The TLS consumer of the find_package packaging test: built only when
// OpenSSL is there, against parley::tls (CMake) or parley-tls (pkg-config).
// Proves OpenSSL's include path and libraries reach a consumer with parley's.
#include <parley/net/tls.hpp>

#include <cstdio>

int main() {
    // A client context with the system's trust store and verification on.
    auto ctx = parley::tls::client_context();
    asio::io_context io;
    parley::tls::stream stream(io, ctx);
    std::error_code ec;
    parley::tls::set_peer_name(stream, "example.org", ec);
    if (ec) {
        std::fprintf(stderr, "set_peer_name failed: %s\n", ec.message().c_str());
        return 1;
    }
    std::puts("parley tls consumer: ok");
    return 0;
}
