// The chat protocol without any I/O: JSON, names, inputs, events.
#include <parley/chat/protocol.hpp>
#include <parley/chat/json.hpp>
#include <parley/chat/nickname.hpp>

#include <doctest/doctest.h>

#include <string>
#include <string_view>

namespace json = parley::chat::json;
namespace pc = parley::chat;
using namespace std::string_literals;

namespace {

std::optional<json::value> parse_ok(std::string_view text) {
    json::parse_error error;
    auto v = json::parse(text, error);
    REQUIRE_MESSAGE(v.has_value(), "rejected " << text << ": " << error.message);
    CHECK(error.message.empty());
    return v;
}

json::parse_error parse_fails(std::string_view text, const json::parse_limits& limits = {}) {
    json::parse_error error;
    auto v = json::parse(text, error, limits);
    CHECK_MESSAGE(!v.has_value(), "accepted " << text);
    CHECK(!error.message.empty());
    return error;
}

} // namespace

TEST_SUITE("chat protocol") {

TEST_CASE("json: every type parses and serializes back") {
    const std::string text =
        R"({"a":[1,-2,3.5,1e3,-0.25E-2,0],"b":"x\"y\\z\/\b\f\n\r\t\u00e9\ud83d\ude00","c":true,"d":false,"e":null,"f":{},"g":[]})";
    auto v = parse_ok(text);
    const auto* a = v->find("a");
    REQUIRE(a != nullptr);
    REQUIRE(a->if_array()->size() == 6);
    CHECK((*a->if_array())[0].to_int64() == 1);
    CHECK((*a->if_array())[1].to_int64() == -2);
    CHECK((*a->if_array())[1].to_uint64() == std::nullopt);
    CHECK((*a->if_array())[2].to_int64() == std::nullopt);
    CHECK((*a->if_array())[2].to_double() == 3.5);
    CHECK((*a->if_array())[3].to_double() == 1000.0);
    CHECK(*v->find("b")->if_string() == "x\"y\\z/\b\f\n\r\t\xC3\xA9\xF0\x9F\x98\x80");
    CHECK(*v->find("c")->if_bool() == true);
    CHECK(v->find("e")->is_null());
    CHECK(v->find("missing") == nullptr);
    CHECK(v->find("f")->if_object()->empty());
    // Numbers keep their text; a serialized value parses to an equal one.
    const std::string again = json::serialize(*v);
    CHECK(again.find("-0.25E-2") != std::string::npos);
    CHECK(parse_ok(again) == v);
    // Large integers survive.
    CHECK(parse_ok("18446744073709551615")->to_uint64() == 18446744073709551615ull);
    CHECK(parse_ok("18446744073709551616")->to_uint64() == std::nullopt);
    CHECK(parse_ok(" \t\r\n[ 1 , 2 ]\n")->if_array()->size() == 2);
    CHECK(parse_ok("\"\\u0000\"")->if_string()->size() == 1);
}

TEST_CASE("json: strictness, with errors that say what and where") {
    CHECK(parse_fails("").message == "empty document");
    CHECK(parse_fails("   ").message == "empty document");
    CHECK(parse_fails("{\"a\":1,\"a\":2}").message.find("duplicate key \"a\"") != std::string::npos);
    CHECK(parse_fails("{\"a\":1,\"a\":2}").offset == 7);
    CHECK(parse_fails("[1,]").message.find("expected a value but found ']'") != std::string::npos);
    CHECK(parse_fails("{\"a\":1,}").offset == 7);
    CHECK(parse_fails("01").message.find("leading zero") != std::string::npos);
    CHECK(parse_fails("-").message.find("digit") != std::string::npos);
    CHECK(parse_fails("1.").message.find("decimal point") != std::string::npos);
    CHECK(parse_fails("1e").message.find("exponent") != std::string::npos);
    CHECK(parse_fails("+1").offset == 0);
    CHECK(parse_fails(".5").offset == 0);
    CHECK(parse_fails("NaN").offset == 0);
    CHECK(parse_fails("Infinity").offset == 0);
    CHECK(parse_fails("tru").offset == 0);
    CHECK(parse_fails("nul").offset == 0);
    CHECK(parse_fails("{} x").message == "unexpected 'x' after the document at offset 3");
    CHECK(parse_fails("{}{}").offset == 2);
    CHECK(parse_fails("'a'").offset == 0);
    CHECK(parse_fails("{a:1}").message.find("string key") != std::string::npos);
    CHECK(parse_fails("{\"a\" 1}").message.find("':'") != std::string::npos);
    CHECK(parse_fails("[1 2]").message.find("',' or ']'") != std::string::npos);
    CHECK(parse_fails("\"abc").message.find("unterminated string") != std::string::npos);
    CHECK(parse_fails("\"a\tb\"").message.find("U+0009") != std::string::npos);
    CHECK(parse_fails("\"a\nb\"").offset == 2);
    CHECK(parse_fails("\"\\x\"").message.find("invalid escape") != std::string::npos);
    CHECK(parse_fails("\"\\u12\"").message.find("four hex digits") != std::string::npos);
    CHECK(parse_fails("\"\\ud800\"").message.find("unpaired high surrogate") != std::string::npos);
    CHECK(parse_fails("\"\\ud800\\u0041\"").message.find("unpaired") != std::string::npos);
    CHECK(parse_fails("\"\\udc00\"").message.find("unpaired low surrogate") != std::string::npos);
    // Not UTF-8: a bare continuation byte, an overlong form, a surrogate,
    // a truncated sequence; the offset points at the bad byte.
    CHECK(parse_fails("\"ab\x80\"").offset == 3);
    CHECK(parse_fails("\"\xC0\xAF\"").message.find("invalid UTF-8") != std::string::npos);
    CHECK(parse_fails("\"\xED\xA0\x80\"").offset == 1);
    CHECK(parse_fails("\"\xE4\xBD\"").offset == 1);
    CHECK(parse_fails("\xEF\xBB\xBF{}").offset == 0); // a BOM is not whitespace
}

TEST_CASE("json: depth and size limits") {
    const std::string deep32 = std::string(32, '[') + std::string(32, ']');
    const std::string deep33 = std::string(33, '[') + std::string(33, ']');
    parse_ok(deep32);
    CHECK(parse_fails(deep33).message.find("nesting deeper than 32") != std::string::npos);
    // Very deep input is refused without recursing through it.
    const std::string abyss(1000000, '[');
    CHECK(parse_fails(abyss).offset == 32);
    CHECK(parse_fails("[1,2,3]", {.max_bytes = 6}).message ==
          "document of 7 bytes exceeds the 6-byte limit");
    CHECK(parse_fails("[[1]]", {.max_depth = 1}).message.find("deeper than 1") !=
          std::string::npos);
    // Many keys: the duplicate check must not be quadratic.
    std::string many = "{";
    for (int i = 0; i < 50000; ++i)
        many += (i ? ",\"" : "\"") + std::to_string(i) + "\":0";
    CHECK(parse_ok(many + "}")->if_object()->size() == 50000);
    CHECK(parse_fails(many + ",\"17\":1}").message.find("duplicate key \"17\"") !=
          std::string::npos);
}

TEST_CASE("json: the writer escapes and never emits invalid JSON") {
    std::string out;
    json::writer w(out);
    w.begin_object()
        .key("s")
        .string("q\"b\\n\n\x01\x1f\x7f é")
        .key("bad")
        .string("a\xFF" "b\xC3")
        .key("n")
        .begin_array()
        .integer(-5)
        .unsigned_integer(18446744073709551615ull)
        .number(0.5)
        .number(std::numeric_limits<double>::quiet_NaN())
        .boolean(false)
        .null()
        .end_array()
        .key("empty")
        .begin_object()
        .end_object()
        .end_object();
    CHECK(out == "{\"s\":\"q\\\"b\\\\n\\n\\u0001\\u001f\x7f é\",\"bad\":\"a\xEF\xBF\xBD"
                 "b\xEF\xBF\xBD\",\"n\":[-5,18446744073709551615,0.5,null,false,null],"
                 "\"empty\":{}}");
    auto v = parse_ok(out);
    CHECK(*v->find("s")->if_string() == "q\"b\\n\n\x01\x1f\x7f é");
}

TEST_CASE("nicknames: what is accepted") {
    for (std::string_view ok : {"alice", "Bob_2", "张三", "Élodie", "o'brien", "a", "x-y.z",
                                "ça:va", "🙂", "李小龙Bruce"})
        CHECK_MESSAGE(pc::nickname_problem(ok) == std::nullopt, ok);
    // 32 code points of 3 bytes each is fine; 33 is not.
    std::string cjk;
    for (int i = 0; i < 32; ++i)
        cjk += "字";
    CHECK(pc::nickname_problem(cjk) == std::nullopt);
    CHECK(pc::nickname_problem(cjk + "字")->find("at most 32 characters") != std::string::npos);
}

TEST_CASE("nicknames: what is refused, and why") {
    const auto problem = [](std::string_view name) {
        auto p = pc::nickname_problem(name);
        REQUIRE_MESSAGE(p.has_value(), "accepted " << name);
        return *p;
    };
    CHECK(problem("") == "a nickname cannot be empty");
    CHECK(problem(std::string(33, 'a')).find("33") != std::string::npos);
    CHECK(problem(" alice") == "a nickname cannot start or end with a space");
    CHECK(problem("alice ") == "a nickname cannot start or end with a space");
    CHECK(problem("al ice") == "a nickname cannot contain spaces");
    CHECK(problem("a\tb").find("spaces") != std::string::npos);
    CHECK(problem("a\xFF") == "a nickname must be valid UTF-8");
    CHECK(problem("a\xC0\x80") == "a nickname must be valid UTF-8"); // overlong NUL
    // Control and formatting characters, named by code point.
    const std::pair<std::string, std::string_view> hidden[] = {
        {"a\x01"s, "U+0001"},          {"a\x1b[31m"s, "U+001B"},    {"a\x7f"s, "U+007F"},
        {"a\xC2\x85"s, "U+0085"},      {"a\xC2\x9B"s, "U+009B"},    {"a\xC2\xA0"s, "U+00A0"},
        {"a\xC2\xAD"s, "U+00AD"},      {"a\xE2\x80\x8B"s, "U+200B"}, {"a\xE2\x80\x8D"s, "U+200D"},
        {"a\xE2\x80\x8F"s, "U+200F"},  {"a\xE2\x80\xAA"s, "U+202A"}, {"a\xE2\x80\xAE"s, "U+202E"},
        {"a\xE2\x81\xA0"s, "U+2060"},  {"a\xE2\x81\xA4"s, "U+2064"}, {"a\xE2\x81\xA6"s, "U+2066"},
        {"a\xE2\x81\xA9"s, "U+2069"},  {"a\xEF\xBB\xBF"s, "U+FEFF"}, {"a\xE3\x80\x80"s, "U+3000"},
        {"a\xE2\x80\xA8"s, "U+2028"},  {"a\xEF\xB8\x8F"s, "U+FE0F"}, {"a\xEE\x80\x80"s, "U+E000"},
        {"a\xF3\xA0\x80\x81"s, "U+E0001"}, {"a\xEF\xBF\xBF"s, "U+FFFF"}, {"a\xEF\xBF\xBD"s, "U+FFFD"},
    };
    for (const auto& entry : hidden) // no structured binding: clang 14 cannot capture one
        CHECK_MESSAGE(problem(entry.first).find(entry.second) != std::string::npos, entry.second);
    // Posing as the server, a room or a command.
    for (std::string_view name : {"*alice", "[lobby]", "!error", "/nick", "#room"})
        CHECK(problem(name).find("cannot start with") != std::string::npos);
    for (std::string_view name : {"server", "SERVER", "Server", "system", "Admin", "QUIT", "quit"})
        CHECK(problem(name).find("is reserved") != std::string::npos);
    CHECK(problem("\xCC\x81" "a").find("combining mark") != std::string::npos);
}

TEST_CASE("nicknames: uniqueness ignores case") {
    CHECK(pc::nickname_key("ALICE") == pc::nickname_key("alice"));
    CHECK(pc::nickname_key("AlIcE") == "alice");
    CHECK(pc::nickname_key("\xEF\xBC\xA1lice") == "alice"); // fullwidth Ａ
    CHECK(pc::nickname_key("ÉLODIE") == "élodie");
    CHECK(pc::nickname_key("ΑΒΓ") == "αβγ");
    CHECK(pc::nickname_key("ΟΔΥΣΣΕΥΣ") == pc::nickname_key("οδυσσευς"));
    CHECK(pc::nickname_key("ς") == "σ");
    CHECK(pc::nickname_key("ПРИВЕТ") == "привет");
    CHECK(pc::nickname_key("ЁЖ") == "ёж");
    CHECK(pc::nickname_key("ŁÓDŹ") == "łódź");
    CHECK(pc::nickname_key("Ÿ") == "ÿ");
    CHECK(pc::nickname_key("张三") == "张三");
    CHECK(pc::nickname_key("ß") == "ß"); // no full folding
    CHECK(pc::is_reserved_nickname("ＳＥＲＶＥＲ"));
}

TEST_CASE("room names") {
    CHECK(pc::canonical_room("#Rust") == "rust");
    CHECK(pc::canonical_room("Lobby") == "lobby");
    CHECK(pc::canonical_room("##x") == "#x");
    CHECK(pc::room_name_problem("rust") == std::nullopt);
    CHECK(pc::room_name_problem("c++") == std::nullopt);
    CHECK(pc::room_name_problem("聊天") == std::nullopt);
    CHECK(pc::room_name_problem("")->find("empty") != std::string::npos);
    CHECK(pc::room_name_problem("a]b")->find("']'") != std::string::npos);
    CHECK(pc::room_name_problem("a,b").has_value());
    CHECK(pc::room_name_problem("a\xE2\x80\xAE" "b").has_value());
    CHECK(pc::room_name_problem(std::string(33, 'r')).has_value());
}

TEST_CASE("inputs: messages, commands and their mistakes") {
    auto in = [](std::string_view text) { return pc::parse_input(text); };
    CHECK(std::get<pc::say_input>(in("hello")).text == "hello");
    CHECK(std::get<pc::say_input>(in(" /not a command")).text == " /not a command");
    CHECK(std::get<pc::say_input>(in("//join me")).text == "/join me");
    CHECK(std::get<pc::say_input>(in("")).text.empty());
    for (std::string_view quit : {"QUIT", "quit", "Quit", "qUiT", "/quit", "/QUIT", "/quit bye"})
        CHECK_MESSAGE(std::holds_alternative<pc::quit_input>(in(quit)), quit);
    for (std::string_view not_quit : {"QUIT ", " quit", "quitting", "/quitting", "//quit"})
        CHECK_MESSAGE(!std::holds_alternative<pc::quit_input>(in(not_quit)), not_quit);
    CHECK(std::get<pc::nick_input>(in("/nick  bob ")).nick == "bob");
    CHECK(std::get<pc::nick_input>(in("/NICK bob")).nick == "bob");
    CHECK(std::get<pc::nick_input>(in("/nick two words")).nick == "two words");
    CHECK(std::get<pc::join_input>(in("/join #rust")).room == "#rust");
    CHECK(std::get<pc::part_input>(in("/part")).room.empty());
    CHECK(std::get<pc::part_input>(in("/part rust")).room == "rust");
    CHECK(std::get<pc::list_input>(in("/list")).room.empty());
    CHECK(std::get<pc::list_input>(in("/list lobby")).room == "lobby");
    const auto msg = std::get<pc::msg_input>(in("/msg bob  hi  there "));
    CHECK(msg.nick == "bob");
    CHECK(msg.text == "hi  there ");
    CHECK(std::holds_alternative<pc::help_input>(in("/help")));

    const auto bad = [&](std::string_view text) {
        auto i = in(text);
        REQUIRE_MESSAGE(std::holds_alternative<pc::bad_input>(i), text);
        return std::get<pc::bad_input>(i);
    };
    CHECK(bad("/nick").code == pc::errc::bad_arguments);
    CHECK(bad("/nick").message == "usage: /nick NEW");
    CHECK(bad("/join").code == pc::errc::bad_arguments);
    CHECK(bad("/join a b").code == pc::errc::bad_arguments);
    CHECK(bad("/part a b").message == "usage: /part [ROOM]");
    CHECK(bad("/msg").message == "usage: /msg NICK TEXT");
    CHECK(bad("/msg bob").code == pc::errc::bad_arguments);
    CHECK(bad("/msg bob   ").code == pc::errc::bad_arguments);
    CHECK(bad("/frobnicate now").code == pc::errc::unknown_command);
    CHECK(bad("/frobnicate now").message == "unknown command /frobnicate; type /help for the commands");
    CHECK(bad("/").code == pc::errc::unknown_command);
    CHECK(bad("/" + std::string(100, 'x')).message.find("...") != std::string::npos);
    CHECK(bad("/\x1b[2J").message.find('\x1b') == std::string::npos);
    CHECK(bad("hello \xFF").code == pc::errc::invalid_utf8);
}

TEST_CASE("inputs: message text rules") {
    CHECK(pc::message_text_problem("hello\tworld", 4096) == std::nullopt);
    CHECK(pc::message_text_problem("你好", 4096) == std::nullopt);
    CHECK(pc::message_text_problem("", 4096)->first == pc::errc::empty_message);
    const auto too_long = pc::message_text_problem(std::string(4097, 'x'), 4096);
    CHECK(too_long->first == pc::errc::message_too_long);
    CHECK(too_long->second == "a message of 4097 bytes exceeds the 4096-byte limit; it was not sent");
    CHECK(pc::message_text_problem(std::string(4096, 'x'), 4096) == std::nullopt);
    CHECK(pc::message_text_problem("a\xFF", 4096)->first == pc::errc::invalid_utf8);
    const auto esc = pc::message_text_problem("red \x1b[31m", 4096);
    CHECK(esc->first == pc::errc::invalid_text);
    CHECK(esc->second.find("U+001B at byte 4") != std::string::npos);
    CHECK(pc::message_text_problem("a\nb", 4096)->first == pc::errc::invalid_text);
    CHECK(pc::message_text_problem("a\rb", 4096)->first == pc::errc::invalid_text);
    CHECK(pc::message_text_problem("a\x7f", 4096)->first == pc::errc::invalid_text);
    CHECK(pc::message_text_problem("a\xC2\x9B", 4096)->first == pc::errc::invalid_text);
    CHECK(pc::message_text_problem("a\xC2\xA0", 4096) == std::nullopt); // NBSP is text
    CHECK(pc::escape_message("/join") == "//join");
    CHECK(pc::escape_message("hi") == "hi");
}

TEST_CASE("events: JSON round trip for every type") {
    const pc::event events[] = {
        pc::welcome_event{"连接成功!,请输入昵称", 1, "parley/0.1.0", 65536, 4096, 32},
        pc::nick_accepted_event{"alice", {}},
        pc::message_event{42, "lobby", "alice", "hi \"you\"\t\\", "2024-05-01T12:34:56.789Z", 0, {}},
        pc::private_event{43, "alice", "bob", "psst", "2024-05-01T12:34:56.790Z"},
        pc::join_event{"lobby", "bob", "2024-05-01T12:34:56.791Z"},
        pc::leave_event{"lobby", "bob", "slow_consumer", "2024-05-01T12:34:56.792Z"},
        pc::rename_event{"bob", "robert", "2024-05-01T12:34:56.793Z"},
        pc::members_event{"lobby", {"alice", "robert"}, 2, 0, {}},
        pc::error_event{"nickname_taken", "the nickname \"alice\" is taken; choose another"},
        pc::notice_event{"help", "line one\nline two"},
    };
    for (const auto& e : events) {
        const std::string payload = pc::to_json(e);
        std::string error;
        auto back = pc::parse_event(payload, error);
        REQUIRE_MESSAGE(back.has_value(), payload << ": " << error);
        CHECK_MESSAGE(*back == e, payload);
        CHECK(pc::type_of(*back) == pc::type_of(e));
    }
    CHECK(pc::to_json(events[2]) ==
          R"({"type":"message","id":42,"room":"lobby","from":"alice","text":"hi \"you\"\t\\","time":"2024-05-01T12:34:56.789Z"})");
    CHECK(pc::to_json(events[6]) ==
          R"({"type":"rename","old":"bob","new":"robert","time":"2024-05-01T12:34:56.793Z"})");
    CHECK(pc::to_json(events[7]) ==
          R"({"type":"members","room":"lobby","members":["alice","robert"],"count":2})");
}

TEST_CASE("events: decoding is strict about types, lenient about additions") {
    std::string error;
    auto fails = [&](std::string_view payload) {
        auto e = pc::parse_event(payload, error);
        CHECK_MESSAGE(!e.has_value(), payload);
        CHECK(!error.empty());
        return error;
    };
    CHECK(fails("[]") == "an event must be a JSON object");
    CHECK(fails("{}") == "field \"type\" is missing");
    CHECK(fails(R"({"type":1})") == "field \"type\" must be a string");
    CHECK(fails("{").find("invalid JSON") == 0);
    CHECK(fails(R"({"type":"message","id":"7","room":"r","from":"a","text":"t","time":"x"})") ==
          "message event: field \"id\" must be a non-negative integer");
    CHECK(fails(R"({"type":"message","id":-1,"room":"r","from":"a","text":"t","time":"x"})")
              .find("non-negative") != std::string::npos);
    CHECK(fails(R"({"type":"message","id":1.5,"room":"r","from":"a","text":"t","time":"x"})")
              .find("\"id\"") != std::string::npos);
    CHECK(fails(R"({"type":"join","room":"r"})") == "join event: field \"nick\" is missing");
    CHECK(fails(R"({"type":"members","room":"r","members":["a",2]})")
              .find("array of strings") != std::string::npos);
    CHECK(fails(R"({"type":"error","code":"x"})").find("\"message\"") != std::string::npos);

    auto unknown = pc::parse_event(R"({"type":"typing","nick":"bob"})", error);
    REQUIRE(unknown.has_value());
    CHECK(std::get<pc::unknown_event>(*unknown).type == "typing");
    auto extra = pc::parse_event(
        R"({"type":"join","room":"r","nick":"n","time":"t","color":"red","v":[1,{}]})", error);
    REQUIRE(extra.has_value());
    CHECK(std::get<pc::join_event>(*extra).nick == "n");
}

TEST_CASE("events: line mode formats") {
    pc::welcome_event welcome;
    welcome.prompt = pc::default_prompt;
    CHECK(pc::to_line(welcome) == "连接成功!,请输入昵称");
    CHECK(pc::to_line(pc::nick_accepted_event{"alice", {}}) ==
          "* welcome, alice! type /help for the commands");
    CHECK(pc::to_line(pc::message_event{1, "lobby", "alice", "hello", "t", 0, {}}) ==
          "[lobby] alice: hello");
    CHECK(pc::to_line(pc::private_event{2, "alice", "bob", "psst", "t"}) ==
          "[private] alice -> bob: psst");
    CHECK(pc::to_line(pc::join_event{"lobby", "bob", "t"}) == "* bob joined lobby");
    CHECK(pc::to_line(pc::leave_event{"lobby", "bob", "quit", "t"}) == "* bob left lobby (quit)");
    CHECK(pc::to_line(pc::rename_event{"bob", "robert", "t"}) == "* bob is now known as robert");
    CHECK(pc::to_line(pc::members_event{"lobby", {"alice", "bob"}, 2, 0, {}}) ==
          "* members of lobby (2): alice, bob");
    CHECK(pc::to_line(pc::members_event{"big", {"a"}, 5, 0, {}}) == "* members of big (5): a, ...");
    CHECK(pc::to_line(pc::error_event{"unknown_command", "no /x"}) == "! unknown_command: no /x");
    CHECK(pc::to_line(pc::notice_event{"help", "a\nb"}) == "* a\n* b");
    // Nothing from an event can drive a terminal or forge a line.
    CHECK(pc::to_line(pc::message_event{1, "r", "e\x1bvil", "x\ny\x7f\xC2\x9B\xFF", "t", 0, {}}) ==
          "[r] e\xEF\xBF\xBDvil: x\xEF\xBF\xBDy\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST_CASE("time stamps: RFC 3339, UTC, milliseconds") {
    using namespace std::chrono;
    CHECK(pc::format_time(system_clock::time_point{}) == "1970-01-01T00:00:00.000Z");
    const auto leap = sys_days{2024y / February / 29} + 23h + 59min + 59s + 999ms;
    CHECK(pc::format_time(time_point_cast<system_clock::duration>(leap)) ==
          "2024-02-29T23:59:59.999Z");
    CHECK(pc::format_time(time_point_cast<system_clock::duration>(
              sys_days{2000y / January / 1} + 1h + 2min + 3s + 4ms + 999us)) ==
          "2000-01-01T01:02:03.004Z");
}

} // TEST_SUITE

TEST_CASE("resume and history: inputs, events and their encodings") {
    auto r = std::get<pc::resume_input>(pc::parse_input("/resume 7.abc lobby=3@e1  side=0 "));
    CHECK(r.token == "7.abc");
    CHECK(r.positions == "lobby=3@e1  side=0");
    CHECK(std::get<pc::bad_input>(pc::parse_input("/resume")).code == pc::errc::bad_arguments);
    auto h = std::get<pc::history_input>(pc::parse_input("/history lobby before=12 limit=5"));
    CHECK(h.room == "lobby");
    CHECK(h.before == 12);
    CHECK(h.limit == 5);
    CHECK(std::get<pc::history_input>(pc::parse_input("/HISTORY lobby")).before == 0);
    for (auto bad : {"/history", "/history lobby before=", "/history lobby limit=x",
                     "/history lobby before=99999999999999999999", "/history lobby after=3"})
        CHECK(std::get<pc::bad_input>(pc::parse_input(bad)).code == pc::errc::bad_arguments);

    pc::message_event m{5, "lobby", "alice", "hi", "2024-05-01T12:34:56.789Z", 3, "e1"};
    const pc::event events[] = {
        pc::nick_accepted_event{"bob", "1.abcdef"},
        m,
        pc::members_event{"lobby", {"alice"}, 1, 3, "e1"},
        pc::resumed_event{"bob", false, {{"lobby", "e1", 1, 3, true}, {"side", "e2", 0, 9, false}}},
        pc::history_event{"lobby", "e1", {m, m}, true},
    };
    for (const auto& e : events) {
        INFO(pc::to_json(e));
        std::string error;
        auto back = pc::parse_event(pc::to_json(e), error);
        REQUIRE_MESSAGE(back.has_value(), error);
        CHECK(*back == e);
    }
    CHECK(pc::to_json(m).find(R"("seq":3,"epoch":"e1")") != std::string::npos);
    // Old events without the new fields still decode.
    std::string error;
    auto old = pc::parse_event(
        R"({"type":"message","id":1,"room":"r","from":"a","text":"t","time":"x"})", error);
    REQUIRE(old);
    CHECK(std::get<pc::message_event>(*old).seq == 0);
    CHECK_FALSE(pc::parse_event(R"({"type":"history","room":"r","messages":[1]})", error));
    CHECK(error.find("messages") != std::string::npos);
    CHECK(pc::to_line(pc::nick_accepted_event{"bob", "1.ab"}) ==
          "* welcome, bob! type /help for the commands\n"
          "* if your connection drops, send this first to resume: /resume 1.ab");
    CHECK(pc::to_line(pc::history_event{"lobby", "e1", {m}, true}) ==
          "* history of lobby: 1 message(s)\n3 2024-05-01T12:34:56 alice: hi\n"
          "* older: /history lobby before=3");
    CHECK(pc::to_line(std::get<pc::resumed_event>(events[3])) ==
          "* resumed as bob: some messages may be missing\n"
          "* side: some messages up to 9 may be missing; /history side shows what is kept");
}
