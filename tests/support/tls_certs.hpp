// Test support: throwaway TLS certificates, made at test time with the
// openssl tool in a temporary directory that is removed afterwards.
#ifndef PARLEY_TESTS_SUPPORT_TLS_CERTS_HPP
#define PARLEY_TESTS_SUPPORT_TLS_CERTS_HPP

#include "skip.hpp"

#include <cstdlib>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>

#include <unistd.h>

namespace parley::test {

/// Whether the openssl command-line tool can be run.
inline bool have_openssl_tool() {
    static const bool found = std::system("openssl version >/dev/null 2>&1") == 0;
    return found;
}

/// For a test that needs the tool: true when it is missing, after saying
/// the test is skipped. `if (no_openssl_tool()) return;`
inline bool no_openssl_tool() {
    if (have_openssl_tool())
        return false;
    skip("the openssl tool is not installed (Debian: apt-get install openssl)");
    return true;
}

/// A temporary directory holding two self-signed certificates, each with
/// its key: "server" for localhost and 127.0.0.1 (the server's identity,
/// and its own trust anchor), and "other", a stranger's, to trust instead
/// when a test wants the server's certificate refused.
class tls_certs {
public:
    tls_certs() {
        char pattern[] = "/tmp/parley-tls-XXXXXX";
        if (::mkdtemp(pattern) == nullptr)
            throw std::runtime_error("cannot create a temporary directory");
        dir_ = pattern;
        make("server", "localhost", "DNS:localhost,IP:127.0.0.1");
        make("other", "someone.else", "DNS:someone.else");
    }
    ~tls_certs() {
        std::error_code ignored;
        std::filesystem::remove_all(dir_, ignored);
    }
    tls_certs(const tls_certs&) = delete;
    tls_certs& operator=(const tls_certs&) = delete;

    std::string cert(const std::string& name = "server") const { return dir_ + "/" + name + ".pem"; }
    std::string key(const std::string& name = "server") const { return dir_ + "/" + name + ".key"; }
    const std::string& dir() const { return dir_; }

private:
    void make(const std::string& name, const std::string& cn, const std::string& san) {
        const std::string command =
            "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2"
            " -subj /CN=" + cn + " -addext subjectAltName=" + san + " -keyout '" + key(name) +
            "' -out '" + cert(name) + "' >/dev/null 2>&1";
        if (std::system(command.c_str()) != 0)
            throw std::runtime_error("openssl could not make a test certificate: " + command);
    }

    std::string dir_;
};

} // namespace parley::test

#endif
