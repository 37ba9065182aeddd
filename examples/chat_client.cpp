// The seed's chat client, done right.
//
//   chat_client [--host 127.0.0.1] [--port 9999] [--nick NAME] [--plain]
//               [--reconnect-attempts N] [--no-reconnect]
//               [--tls] [--tls-ca FILE] [--token SECRET]
//
// --tls connects with TLS and checks that the server's certificate is
// signed by an authority the system trusts and names --host; --tls-ca FILE
// (implies --tls) trusts the authorities in FILE instead. A certificate
// that fails the check ends the client with the reason. --token sends the
// server's access token before the nickname.
//
// Asks for a nickname, then sends each line typed as a message or
// /command and shows what happens in the room. One thread reads the
// keyboard and the network at once.
//
// On a terminal: a prompt line that incoming messages never garble (the
// line being typed is erased, the message printed, the line drawn again),
// with the editing keys people expect (arrows, Home/End, Up/Down through
// the lines typed before, Ctrl-A/E/U/K/W; examples/common/line_editor.hpp),
// redrawn cleanly when the window is resized; timestamps and a colour per
// nickname. Anything else (a pipe, a file,
// `--plain`): the plain lines of the protocol's line mode, so a script can
// drive the client and read what it prints; the client's own notes go to
// standard error.
//
// Everything received is made harmless before it is printed: control
// characters and escape sequences become U+FFFD, so no nickname or message
// can move the cursor, recolour the terminal or retitle the window.
//
// If the connection is lost the client reconnects with growing delays and
// resumes its session (docs/PROTOCOL.md §8: its nickname, its rooms and the
// messages it missed); when it cannot (the server restarted), it chooses its
// nickname again and rejoins its rooms.
// It exits with a clear message on QUIT or /quit, at the end of its input
// (Ctrl-D), on Ctrl-C, or when the server shuts down and does not come
// back.
#include "common/line_editor.hpp"
#include "common/options.hpp"
#include "common/stdin_reader.hpp"
#include "common/terminal.hpp"

#include <parley/client/async_client.hpp>
#if PARLEY_HAVE_TLS
#include <parley/net/tls.hpp>
#endif
#include <parley/chat/protocol.hpp>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

using namespace std::chrono_literals;
namespace chat = parley::chat;
namespace term = parley::examples;
constexpr auto with_error = asio::experimental::as_tuple(asio::use_awaitable);

struct settings {
    std::string host = "127.0.0.1";
    std::uint16_t port = 9999;
    std::string nick;
    unsigned reconnect_attempts = 10;
    bool no_reconnect = false;
    bool plain = false;
    bool tls = false;
    std::string tls_ca; // empty: the system's trusted authorities
    std::string token;
};

// --- how things look on a terminal ---------------------------------------------------

namespace style {
constexpr std::string_view reset = "\x1b[0m", dim = "\x1b[2m", bold = "\x1b[1m",
                           red = "\x1b[31m", yellow = "\x1b[33m", magenta = "\x1b[35m";

// The same nickname always gets the same colour.
inline std::string nick(std::string_view name, bool own = false) {
    static constexpr std::string_view palette[] = {"\x1b[31m", "\x1b[32m", "\x1b[33m",
                                                   "\x1b[34m", "\x1b[35m", "\x1b[36m",
                                                   "\x1b[91m", "\x1b[92m", "\x1b[94m",
                                                   "\x1b[95m", "\x1b[96m"};
    std::size_t hash = 5381;
    for (unsigned char c : chat::nickname_key(name))
        hash = hash * 33 + c;
    std::string out(palette[hash % std::size(palette)]);
    if (own)
        out += bold;
    return out + term::sanitize(name) + std::string(reset);
}
} // namespace style

// "12:34" in local time, from the server's "2024-05-01T12:34:56.789Z".
std::string local_clock(std::string_view rfc3339) {
    std::tm utc{};
    std::time_t when = std::time(nullptr);
    if (rfc3339.size() >= 19 &&
        std::sscanf(std::string(rfc3339.substr(0, 19)).c_str(), "%4d-%2d-%2dT%2d:%2d:%2d",
                    &utc.tm_year, &utc.tm_mon, &utc.tm_mday, &utc.tm_hour, &utc.tm_min,
                    &utc.tm_sec) == 6) {
        utc.tm_year -= 1900;
        utc.tm_mon -= 1;
        when = ::timegm(&utc);
    }
    std::tm local{};
    ::localtime_r(&when, &local);
    char text[8];
    std::strftime(text, sizeof text, "%H:%M", &local);
    return text;
}

// --- the client ------------------------------------------------------------------------

// Client: parley::async_client, or parley::tls::async_client for --tls.
template <class Client>
class chat_client {
public:
    template <class... Transport>
    chat_client(const asio::any_io_executor& ex, settings s, Transport&&... transport)
        : settings_(std::move(s)),
          client_(ex, client_options(settings_), std::forward<Transport>(transport)...), input_(ex),
          done_(ex), input_room_(ex), fancy_(!settings_.plain && ::isatty(STDOUT_FILENO)),
          editing_(fancy_ && ::isatty(STDIN_FILENO)) {
        done_.expires_at(asio::steady_timer::time_point::max());
        input_room_.expires_at(asio::steady_timer::time_point::max());
        wanted_nick_ = settings_.nick;
    }

    asio::awaitable<int> run() {
        client_.on_frame([this](parley::frame_view payload) { on_frame(payload); });
        client_.on_event([this](const parley::client_event& e) { on_client_event(e); });
        if (editing_) {
            raw_.emplace();
            set_prompt("");
        }
        status("connecting to " + settings_.host + ":" + std::to_string(settings_.port));
        asio::co_spawn(done_.get_executor(), read_input(), asio::detached);

        auto [ec, server] = co_await client_.async_connect(settings_.host, settings_.port,
                                                           with_error);
        if (ec && !finished_)
            finish(1, parley::detail::connect_failure_context(settings_.host, settings_.port,
                                                              attempts_) +
                          ": " + client_.describe(ec));
        if (!finished_)
            co_await done_.async_wait(with_error); // until finish()
        co_return exit_code_;
    }

    // Ctrl-C and friends: leave politely the first time, at once the second.
    void interrupted(int signal) {
        if (leaving_ || signal == SIGHUP || signal == SIGQUIT)
            return finish(128 + signal, "interrupted");
        leave_code_ = 128 + signal; // what shells expect of a program stopped by a signal
        leave("interrupted; leaving the chat", "/quit");
    }

    // Ctrl-Z: put the terminal back while stopped, take it again after.
    void suspend() {
        if (raw_) {
            term::write_all(STDOUT_FILENO, editor_.erase(term::terminal_columns()));
            raw_->restore();
        }
        ::kill(::getpid(), SIGSTOP);
        if (raw_) {
            raw_->enter();
            redraw();
        }
    }

    // SIGWINCH: render() sees the new width and redraws from where the
    // terminal's reflow left the line.
    void resized() { redraw(); }

private:
    enum class phase : unsigned char {
        connecting,     // not connected (first connection or reconnecting)
        welcome,        // connected, waiting for the server's welcome
        choosing,       // the server asked for a nickname
        nick_sent,      // a nickname is on its way, its answer not yet back
        chatting,       // nickname accepted
    };

    static parley::client_options client_options(const settings& s) {
        parley::client_options options;
        options.reconnect = !s.no_reconnect;
        options.connect.max_attempts = s.reconnect_attempts;
        options.connect.initial_backoff = 250ms;
        options.connect.max_backoff = 4s;
        options.connect.attempt_timeout = 5s;
        options.max_payload = chat::max_event_bytes;
        options.close_timeout = 3s;
        return options;
    }

    // --- output ---------------------------------------------------------------------------

    // One line of the conversation (already safe to print), shown above the
    // line being typed.
    void show(const std::string& line) {
        if (!editing_) {
            term::write_all(STDOUT_FILENO, line + "\n");
            return;
        }
        std::string out = editor_.erase(term::terminal_columns());
        out += line;
        out += "\n";
        if (!finished_)
            out += draw();
        term::write_all(STDOUT_FILENO, out);
    }

    // The client's own notes: in the conversation on a terminal, on
    // standard error otherwise (so a script reading standard output sees
    // only the chat).
    void status(const std::string& text) {
        if (fancy_)
            show(std::string(style::dim) + "-- " + text + std::string(style::reset));
        else
            term::write_all(STDERR_FILENO, "chat_client: " + text + "\n");
    }

    void redraw() {
        if (editing_ && !finished_)
            term::write_all(STDOUT_FILENO, draw());
    }

    // The input line at the terminal's size now, one row left for the
    // conversation (and for the cursor after a full last row).
    std::string draw() {
        const std::size_t rows = term::terminal_rows();
        return editor_.render(term::terminal_columns(), rows > 2 ? rows - 1 : 1);
    }

    void set_prompt(const std::string& room) {
        if (!editing_)
            return;
        if (phase_ == phase::choosing || phase_ == phase::nick_sent)
            editor_.prompt(std::string(style::bold) + "nickname> " + std::string(style::reset),
                           "nickname> ");
        else if (room.empty())
            editor_.prompt("> ", "> ");
        else
            editor_.prompt(std::string(style::dim) + room + std::string(style::reset) + "> ",
                           room + "> ");
        redraw();
    }

    // --- events from the server --------------------------------------------------------------

    void on_frame(parley::frame_view payload) {
        std::string error;
        auto ev = chat::parse_event(parley::as_string_view(payload), error);
        if (!ev)
            return status("ignored an event the client does not understand: " +
                          term::sanitize(error));
        std::visit([this](const auto& e) { this->handle(e); }, *ev);
    }

    // Plain mode prints every event as the server's line mode would.
    template <class Event>
    bool plain(const Event& e) {
        if (fancy_)
            return false;
        const std::string lines = chat::to_line(chat::event(e));
        for (std::string_view rest = lines; !rest.empty();) {
            const auto end = rest.find('\n');
            show(std::string(rest.substr(0, end)));
            rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
        }
        return true;
    }

    void handle(const chat::welcome_event& e) {
        if (!settings_.token.empty())
            client_.send("/auth " + settings_.token); // before anything else
        resuming_ = false;
        if (!wanted_nick_.empty() && !resume_token_.empty()) {
            // Back after a lost connection: take the session back (docs/PROTOCOL.md §8.5).
            std::string line = "/resume " + resume_token_;
            // Every room it is in: the server's room limit bounds them.
            for (const auto& room : rooms_) {
                const auto it = positions_.find(room);
                if (it != positions_.end())
                    line += " " + room + "=" + std::to_string(it->second.first) + "@" +
                            it->second.second;
            }
            if (client_.send(line)) {
                resuming_ = true;
                phase_ = phase::nick_sent;
                set_prompt("");
                return;
            }
        }
        if (!wanted_nick_.empty()) {
            if (reconnections_ == 0)
                plain(e);
            send_nick(wanted_nick_); // --nick, or choosing again after a reconnect
            return;
        }
        phase_ = phase::choosing;
        if (!plain(e))
            show(std::string(style::bold) + term::sanitize(e.prompt) + std::string(style::reset));
        set_prompt("");
        drain_pending();
    }

    void handle(const chat::nick_accepted_event& e) {
        const bool again = !nick_.empty() && !resuming_;
        resume_token_ = e.resume_token;
        if (!resuming_)
            positions_.clear();
        nick_ = e.nick;
        wanted_nick_ = e.nick;
        phase_ = phase::chatting;
        set_prompt(term::sanitize(current_));
        if (!plain(e))
            show(std::string(style::dim) + "* welcome, " + std::string(style::reset) +
                 style::nick(nick_, true) + std::string(style::dim) +
                 "! type /help for the commands, QUIT to leave" + std::string(style::reset));
        if (again) {
            // Back after a reconnection: the server put us in the lobby;
            // rejoin the other rooms, the current one last.
            for (const auto& room : rooms_)
                if (room != "lobby" && room != current_)
                    client_.send("/join " + room);
            if (!current_.empty() && current_ != "lobby")
                client_.send("/join " + current_);
        }
        drain_pending();
    }

    // Remembers the last position seen in a room, for a /resume.
    void see(const std::string& room, std::uint64_t seq, const std::string& epoch) {
        if (epoch.empty())
            return;
        auto [it, fresh] = positions_.try_emplace(room, seq, epoch);
        if (!fresh && (it->second.second != epoch || seq > it->second.first))
            it->second = {seq, epoch};
    }

    void handle(const chat::message_event& e) {
        see(e.room, e.seq, e.epoch);
        if (plain(e))
            return;
        show(stamp(e.time) + std::string(style::dim) + "[" + term::sanitize(e.room) + "] " +
             std::string(style::reset) + style::nick(e.from, e.from == nick_) + ": " +
             term::sanitize(e.text));
    }

    void handle(const chat::private_event& e) {
        if (plain(e))
            return;
        show(stamp(e.time) + std::string(style::magenta) + "[private] " +
             std::string(style::reset) + style::nick(e.from, e.from == nick_) + " -> " +
             style::nick(e.to, e.to == nick_) + ": " + term::sanitize(e.text));
    }

    void handle(const chat::join_event& e) {
        if (e.nick == nick_) {
            if (std::find(rooms_.begin(), rooms_.end(), e.room) == rooms_.end())
                rooms_.push_back(e.room);
            current_ = e.room;
            set_prompt(term::sanitize(current_));
        }
        if (!plain(e))
            show(stamp(e.time) + std::string(style::dim) + "* " + std::string(style::reset) +
                 style::nick(e.nick, e.nick == nick_) + std::string(style::dim) + " joined " +
                 term::sanitize(e.room) + std::string(style::reset));
    }

    void handle(const chat::leave_event& e) {
        if (e.nick == nick_ && e.reason == "part") {
            std::erase(rooms_, e.room);
            positions_.erase(e.room);
            if (current_ == e.room)
                current_ = rooms_.empty() ? std::string() : rooms_.back();
            set_prompt(term::sanitize(current_));
        }
        if (!plain(e))
            show(stamp(e.time) + std::string(style::dim) + "* " + std::string(style::reset) +
                 style::nick(e.nick) + std::string(style::dim) + " left " +
                 term::sanitize(e.room) + " (" + term::sanitize(e.reason) + ")" +
                 std::string(style::reset));
    }

    void handle(const chat::rename_event& e) {
        if (e.old_nick == nick_)
            nick_ = wanted_nick_ = e.new_nick;
        if (!plain(e))
            show(stamp(e.time) + std::string(style::dim) + "* " + std::string(style::reset) +
                 style::nick(e.old_nick) + std::string(style::dim) + " is now known as " +
                 std::string(style::reset) + style::nick(e.new_nick, e.new_nick == nick_));
    }

    void handle(const chat::members_event& e) {
        see(e.room, e.seq, e.epoch);
        if (plain(e))
            return;
        std::string line = std::string(style::dim) + "* members of " + term::sanitize(e.room) +
                           " (" + std::to_string(e.count) + "): " + std::string(style::reset);
        for (std::size_t i = 0; i < e.members.size(); ++i)
            line += (i ? ", " : "") + style::nick(e.members[i], e.members[i] == nick_);
        if (e.members.size() < e.count)
            line += ", ...";
        show(line);
    }

    void handle(const chat::error_event& e) {
        if (resuming_ && (e.code == "resume_failed" || e.code == "bad_arguments")) {
            resuming_ = false; // the session is gone: choose the nickname again
            resume_token_.clear();
            status("could not resume the session; joining again as " + term::sanitize(wanted_nick_));
            send_nick(wanted_nick_);
            return;
        }
        if (phase_ == phase::nick_sent && e.code.starts_with("nickname_") &&
            e.code != "nickname_timeout") {
            // Refused: ask the person (or take the next input line).
            phase_ = phase::choosing;
            wanted_nick_.clear();
            set_prompt("");
        }
        if (!plain(e))
            show(std::string(style::red) + "! " + term::sanitize(e.message) +
                 std::string(style::reset));
        if (e.code == "access_denied") // retrying would only be refused again
            return finish(1, "access denied: the server did not accept the token (--token)");
        drain_pending();
    }

    void handle(const chat::notice_event& e) {
        if (e.code == "shutdown")
            server_shutting_down_ = true;
        if (plain(e))
            return;
        std::string_view rest = e.text;
        do {
            const auto end = rest.find('\n');
            show(std::string(style::yellow) + "* " + term::sanitize(rest.substr(0, end)) +
                 std::string(style::reset));
            rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
        } while (!rest.empty());
    }

    // Keepalive: answered at once and silently, so the server knows this
    // connection is alive however long the user stays quiet.
    void handle(const chat::ping_event&) {
        std::error_code ec;
        client_.send("/pong", ec);
    }

    void handle(const chat::unknown_event&) {} // newer servers may send more
    void handle(const chat::resumed_event& e) {
        resuming_ = false;
        if (!plain(e))
            show(std::string(e.recovered ? style::dim : style::yellow) + "* resumed as " +
                 term::sanitize(e.nick) +
                 (e.recovered ? ": nothing was missed" : ": some messages may be missing") +
                 std::string(style::reset));
    }
    void handle(const chat::history_event& e) { // the answer to a /history typed by the user
        std::string_view rest;
        const std::string text = chat::to_line(e);
        for (rest = text; !rest.empty();) {
            const auto end = rest.find('\n');
            show(std::string(rest.substr(0, end)));
            rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
        }
    }

    std::string stamp(std::string_view time) const {
        return std::string(style::dim) + local_clock(time) + std::string(style::reset) + " ";
    }

    // --- the connection -----------------------------------------------------------------------

    void on_client_event(const parley::client_event& e) {
        using kind = parley::client_event::kind;
        switch (e.what) {
        case kind::connect_progress:
            attempts_ = e.progress.attempt;
            if (e.progress.what == parley::connect_event::kind::attempt_failed &&
                !e.progress.giving_up && !leaving_)
                status(e.describe());
            break;
        case kind::connected:
            phase_ = phase::welcome;
            if (reconnections_ > 0)
                status("reconnected to " + term::to_string(e.endpoint));
            break;
        case kind::disconnected:
            phase_ = phase::connecting;
            set_prompt("");
            if (leaving_ || !e.reconnecting)
                break;
            ++reconnections_;
            status(server_shutting_down_
                       ? "the server shut down; trying to reconnect in case it restarts "
                         "(Ctrl-D to quit)"
                       : e.describe());
            break;
        case kind::closed:
            if (leaving_)
                finish(leave_code_, leave_note_);
            else if (reconnections_ == 0 && phase_ == phase::connecting)
                break; // the first connection failed: run() says why
            else if (server_shutting_down_)
                finish(0, "the server shut down" +
                              (e.error ? " and did not come back: " + e.error.message()
                                       : std::string()));
            else
                finish(1, "disconnected" + (e.error ? ": " + client_.describe(e.error)
                                                    : std::string()));
            break;
        }
    }

    // --- input -------------------------------------------------------------------------------

    asio::awaitable<void> read_input() {
        while (!finished_) {
            if (editing_) {
                const std::string keys = co_await input_.read_some();
                if (keys.empty())
                    co_return end_of_input();
                auto r = editor_.feed(keys);
                for (auto& line : r.lines)
                    submit(std::move(line));
                if (r.clear_screen)
                    term::write_all(STDOUT_FILENO, editor_.clear_screen());
                if (r.end_of_input)
                    co_return end_of_input();
                if (r.changed || !r.lines.empty())
                    redraw();
            } else {
                auto line = co_await input_.read_line();
                if (!line)
                    co_return end_of_input();
                submit(std::move(*line));
            }
            // Lines read faster than they can be sent (a script while the
            // client reconnects) wait here, a bounded number of them.
            while (pending_.size() >= max_pending && !finished_)
                co_await input_room_.async_wait(with_error);
        }
    }

    // Ctrl-D on a terminal leaves at once. A script's input ending only
    // means it has nothing more to say: what it wrote is sent first (its
    // nickname, then its lines), then the client leaves.
    void end_of_input() {
        if (finished_)
            return;
        input_ended_ = true;
        if (editing_)
            return leave("end of input; leaving the chat", "/quit");
        leave_if_input_done();
    }

    void leave_if_input_done() {
        if (input_ended_ && pending_.empty() &&
            (phase_ == phase::chatting || phase_ == phase::choosing))
            leave("end of input; leaving the chat", "/quit");
    }

    void submit(std::string line) {
        if (finished_ || leaving_)
            return;
        if (chat::is_quit_input(line))
            return leave("left the chat", line);
        if (line.empty())
            return;
        pending_.push_back(std::move(line));
        drain_pending();
    }

    // Sends the lines typed so far, as far as the conversation allows: a
    // nickname only when one is asked for, messages only once it is
    // accepted.
    void drain_pending() {
        while (!pending_.empty() && !leaving_) {
            if (phase_ == phase::choosing) {
                if (!send_nick(pending_.front()))
                    break; // the connection is gone: keep the line for the next one
            } else if (phase_ == phase::chatting) {
                std::error_code ec;
                if (!client_.send(pending_.front(), ec)) {
                    status("not sent: " + ec.message());
                    if (ec != parley::error::frame_too_large)
                        break;
                }
            } else {
                break;
            }
            pending_.pop_front();
        }
        input_room_.cancel();
        leave_if_input_done();
    }

    bool send_nick(const std::string& nick) {
        if (!client_.send(nick))
            return false;
        wanted_nick_ = nick;
        phase_ = phase::nick_sent;
        set_prompt("");
        return true;
    }

    // Leaves: sends `farewell` (QUIT or /quit) if a connection is up, then
    // closes; everything queued before goes out first. finish() follows the
    // `closed` event.
    void leave(std::string note, const std::string& farewell) {
        if (leaving_)
            return;
        leaving_ = true;
        leave_note_ = std::move(note);
        if (client_.is_connected() && phase_ != phase::welcome) {
            client_.send(farewell);
            client_.close();
        } else if (client_.state() == parley::client_state::closed ||
                   client_.state() == parley::client_state::idle) {
            finish(leave_code_, leave_note_);
        } else {
            client_.abort(); // not connected: nothing to say goodbye to
        }
    }

    void finish(int code, const std::string& note) {
        if (finished_)
            return;
        status(note);
        finished_ = true;
        exit_code_ = code;
        if (editing_)
            term::write_all(STDOUT_FILENO, editor_.erase(term::terminal_columns()));
        raw_.reset();
        input_.cancel();
        input_room_.cancel();
        client_.abort();
        done_.cancel();
    }

    static constexpr std::size_t max_pending = 256;

    settings settings_;
    Client client_;
    term::stdin_reader input_;
    asio::steady_timer done_;       // cancelled by finish()
    asio::steady_timer input_room_; // cancelled when pending lines went out
    const bool fancy_;              // colours and timestamps: stdout is a terminal
    const bool editing_;            // the line editor: stdin is a terminal too
    std::optional<term::raw_mode> raw_;
    term::line_editor editor_{chat::default_max_message_bytes};

    phase phase_ = phase::connecting;
    std::string nick_, wanted_nick_, current_;
    std::vector<std::string> rooms_; // in the order joined
    std::deque<std::string> pending_;
    unsigned attempts_ = 0, reconnections_ = 0;
    bool server_shutting_down_ = false, leaving_ = false, finished_ = false;
    bool input_ended_ = false;
    bool resuming_ = false;   // a /resume was sent, its answer not yet back
    std::string resume_token_; // from the last nick_accepted; empty: none
    std::map<std::string, std::pair<std::uint64_t, std::string>> positions_; // room -> seq, epoch
    std::string leave_note_;
    int leave_code_ = 0;
    int exit_code_ = 0;
};

template <class Client>
int run(asio::io_context& ioc, chat_client<Client>&& client);

int main(int argc, char** argv) {
    settings s;
    parley::examples::command_line cli("chat_client",
                                       "Chats on a parley chat server (examples/chat_server).");
    cli.option("--host", s.host, "server address or name")
        .option("--port", s.port, "server port (the framed one)")
        .option("--nick", s.nick, "nickname to use instead of asking for one")
        .option("--reconnect-attempts", s.reconnect_attempts,
                "attempts to connect or reconnect before giving up, 0 for no limit")
        .flag("--no-reconnect", s.no_reconnect, "exit when the connection is lost")
        .flag("--plain", s.plain, "plain lines, no colours or line editor, even on a terminal")
        .flag("--tls", s.tls, "connect with TLS, verifying the server's certificate and name")
        .option("--tls-ca", s.tls_ca, "PEM file of the authorities to trust (implies --tls)")
        .option("--token", s.token, "access token the server asks for (sent as /auth TOKEN)");
    if (auto status = cli.parse(argc, argv))
        return *status;
    if (!s.tls_ca.empty())
        s.tls = true;

    asio::io_context ioc(1);
    if (!s.tls)
        return run(ioc, chat_client<parley::async_client>(ioc.get_executor(), s));
#if PARLEY_HAVE_TLS
    std::error_code ec;
    std::string why;
    auto ctx = std::make_shared<asio::ssl::context>(
        parley::tls::client_context({.ca_file = s.tls_ca}, ec, &why));
    if (ec) {
        term::write_all(STDERR_FILENO, "chat_client: " + why + "\n");
        return 1;
    }
    return run(ioc, chat_client<parley::tls::async_client>(
                        ioc.get_executor(), s, parley::tls::client_transport<>(ctx)));
#else
    term::write_all(STDERR_FILENO,
                    "chat_client: built without TLS support (OpenSSL was not found)\n");
    return 1;
#endif
}

template <class Client>
int run(asio::io_context& ioc, chat_client<Client>&& client_object) {
    auto& client = client_object;
    int status = 0;

    asio::signal_set stop(ioc, SIGINT, SIGTERM, SIGHUP);
    stop.add(SIGQUIT);
    std::function<void()> wait_stop = [&] {
        stop.async_wait([&](std::error_code ec, int signal) {
            if (ec)
                return;
            client.interrupted(signal);
            wait_stop();
        });
    };
    wait_stop();
    asio::signal_set terminal(ioc, SIGTSTP, SIGWINCH);
    std::function<void()> wait_terminal = [&] {
        terminal.async_wait([&](std::error_code ec, int signal) {
            if (ec)
                return;
            if (signal == SIGTSTP)
                client.suspend();
            else
                client.resized();
            wait_terminal();
        });
    };
    wait_terminal();

    asio::co_spawn(ioc, client.run(), [&](std::exception_ptr error, int result) {
        status = result;
        if (error) {
            try {
                std::rethrow_exception(error);
            } catch (const std::exception& e) {
                term::write_all(STDERR_FILENO, std::string("chat_client: ") + e.what() + "\n");
                status = 1;
            }
        }
        stop.cancel();
        terminal.cancel();
    });
    ioc.run();
    return status;
}
