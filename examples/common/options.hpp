// What every example shares: command-line options, the "listening on"
// line scripts wait for, and small helpers. Not part of parley's API.
#ifndef PARLEY_EXAMPLES_COMMON_OPTIONS_HPP
#define PARLEY_EXAMPLES_COMMON_OPTIONS_HPP

#include <asio/ip/tcp.hpp>

#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace parley::examples {

/// A command line: `--name value` options, `--flag` switches, and help.
/// Unknown options and bad values are reported with a clear message.
class command_line {
public:
    command_line(std::string program, std::string summary)
        : program_(std::move(program)), summary_(std::move(summary)) {}

    /// `--name VALUE` stored into `target`, which holds the default.
    command_line& option(std::string name, std::string& target, std::string help) {
        add(std::move(name), "TEXT", std::move(help), target, [&target](std::string_view v) {
            target = std::string(v);
            return true;
        });
        return *this;
    }

    /// `--name N` for an unsigned integer within [min, max].
    template <class Unsigned>
    command_line& option(std::string name, Unsigned& target, std::string help,
                         Unsigned min = 0, Unsigned max = ~Unsigned(0)) {
        add(std::move(name), "N", std::move(help), std::to_string(target),
            [&target, min, max](std::string_view v) {
                Unsigned value{};
                auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), value);
                if (ec != std::errc() || end != v.data() + v.size() || value < min || value > max)
                    return false;
                target = value;
                return true;
            });
        return *this;
    }

    /// `--name` switch.
    command_line& flag(std::string name, bool& target, std::string help) {
        flags_[name] = {std::move(help), &target};
        order_.push_back(std::move(name));
        return *this;
    }

    /// Parses; on error or --help prints to stderr/stdout and returns the
    /// exit status the program should end with.
    std::optional<int> parse(int argc, char** argv) {
        for (int i = 1; i < argc; ++i) {
            const std::string_view arg = argv[i];
            if (arg == "--help" || arg == "-h") {
                std::cout << usage();
                return 0;
            }
            if (auto f = flags_.find(std::string(arg)); f != flags_.end()) {
                *f->second.target = true;
                continue;
            }
            auto o = options_.find(std::string(arg));
            if (o == options_.end()) {
                std::cerr << program_ << ": unknown option '" << arg << "'\n" << usage();
                return 2;
            }
            if (i + 1 >= argc) {
                std::cerr << program_ << ": " << arg << " needs a value\n";
                return 2;
            }
            const std::string_view value = argv[++i];
            if (!o->second.set(value)) {
                std::cerr << program_ << ": invalid value '" << value << "' for " << arg << '\n';
                return 2;
            }
        }
        return std::nullopt;
    }

    std::string usage() const {
        std::ostringstream out;
        out << "usage: " << program_ << " [options]\n" << summary_ << "\n\noptions:\n";
        for (const auto& name : order_) {
            if (auto o = options_.find(name); o != options_.end())
                out << "  " << name << ' ' << o->second.metavar << "\n      " << o->second.help
                    << " (default: " << o->second.default_text << ")\n";
            else
                out << "  " << name << "\n      " << flags_.at(name).help << '\n';
        }
        out << "  --help\n      show this text\n";
        return out.str();
    }

private:
    struct value_option {
        std::string metavar, help, default_text;
        std::function<bool(std::string_view)> set;
    };
    struct flag_option {
        std::string help;
        bool* target = nullptr;
    };

    void add(std::string name, std::string metavar, std::string help, std::string default_text,
             std::function<bool(std::string_view)> set) {
        options_[name] = {std::move(metavar), std::move(help),
                          default_text.empty() ? "none" : std::move(default_text), std::move(set)};
        order_.push_back(std::move(name));
    }

    std::string program_, summary_;
    std::map<std::string, value_option> options_;
    std::map<std::string, flag_option> flags_;
    std::vector<std::string> order_;
};

/// "127.0.0.1:10000", or "[::1]:10000" for IPv6.
inline std::string to_string(const asio::ip::tcp::endpoint& endpoint) {
    const auto address = endpoint.address();
    const std::string host = address.is_v6() ? '[' + address.to_string() + ']' : address.to_string();
    return host + ':' + std::to_string(endpoint.port());
}

/// Text from the network made safe to print on a terminal: control
/// characters (which could move the cursor or change colours) shown as
/// \xNN, and anything past `max` bytes summarised.
inline std::string printable(std::string_view text, std::size_t max = 200) {
    std::string out;
    const std::size_t shown = text.size() > max ? max : text.size();
    for (std::size_t i = 0; i < shown; ++i) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c < 0x20 || c == 0x7f) {
            static constexpr char hex[] = "0123456789abcdef";
            out += "\\x";
            out += hex[c >> 4];
            out += hex[c & 15];
        } else {
            out += static_cast<char>(c);
        }
    }
    if (shown < text.size())
        out += "... (" + std::to_string(text.size()) + " bytes)";
    return out;
}

/// Opens, binds (with SO_REUSEADDR) and listens; prints
/// "listening on HOST:PORT" once connections are accepted, or the reason
/// it could not.
inline bool open_acceptor(asio::ip::tcp::acceptor& acceptor, const std::string& host,
                          std::uint16_t port, std::string_view label = "listening on") {
    std::error_code ec;
    const auto address = asio::ip::make_address(host, ec);
    if (ec) {
        std::cerr << "invalid address '" << host << "': use a numeric IPv4 or IPv6 address\n";
        return false;
    }
    const asio::ip::tcp::endpoint endpoint(address, port);
    acceptor.open(endpoint.protocol(), ec);
    if (!ec)
        acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec)
        acceptor.bind(endpoint, ec);
    if (!ec)
        acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
        std::cerr << "cannot listen on " << to_string(endpoint) << ": " << ec.message() << '\n';
        return false;
    }
    std::cout << label << ' ' << to_string(acceptor.local_endpoint()) << std::endl;
    return true;
}

} // namespace parley::examples

#endif
