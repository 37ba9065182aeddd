// The seed's first client, in blocking style like the Python original:
// connect, print the server's greeting, read a line and send it.
//
//   blocking_echo_client [--host 127.0.0.1] [--port 10000]
#include "common/options.hpp"

#include <parley/net/socket.hpp>

#include <chrono>
#include <iostream>

using namespace std::chrono_literals;

int main(int argc, char** argv) {
    std::string host = "127.0.0.1";
    std::uint16_t port = 10000;
    parley::examples::command_line cli("blocking_echo_client",
                                       "Prints the server's greeting, sends it one line.");
    cli.option("--host", host, "server address or name").option("--port", port, "server port");
    if (auto status = cli.parse(argc, argv))
        return *status;

    try {
        auto client = parley::tcp_socket::connect(host, port, 5s);
        client.set_timeout(30s);
        std::cout << client.recv_frame() << std::endl;

        std::cout << "请输入内容 (enter text): " << std::flush;
        std::string line;
        if (!std::getline(std::cin, line))
            return 0; // end of input: nothing to send
        client.send_frame(line);
    } catch (const std::system_error& e) {
        // e.g. "could not connect to 127.0.0.1:10000; tried 127.0.0.1:10000
        // (Connection refused): Connection refused"
        std::cerr << e.what() << '\n';
        return 1;
    }
} // the connection is closed as `client` goes out of scope
