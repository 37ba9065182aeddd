#include <parley/chat/web/page.hpp>

#include <doctest/doctest.h>

#include <fstream>
#include <iterator>
#include <string>

namespace {

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    REQUIRE_MESSAGE(in, "cannot open " << path);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

} // namespace

TEST_CASE("chat page: the embedded page is chat.html as it is in the tree") {
    const auto html = read_file(PARLEY_SOURCE_DIR "/include/parley/chat/web/chat.html");
    CHECK_MESSAGE(parley::chat::web::chat_page == html,
                  "page.hpp is out of date: run scripts/embed_chat_page.py");
}

TEST_CASE("chat page: loads nothing from elsewhere and never turns text into HTML") {
    const std::string_view page = parley::chat::web::chat_page;
    // Self-contained: no script, style, font or image from another address.
    CHECK(page.find("http://") == std::string_view::npos);
    CHECK(page.find("https://") == std::string_view::npos);
    CHECK(page.find(" src=") == std::string_view::npos);
    CHECK(page.find("@import") == std::string_view::npos);
    // Server text reaches the page only through textContent / text nodes.
    for (const char* sink : {"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("})
        CHECK_MESSAGE(page.find(sink) == std::string_view::npos, "the page uses " << sink);
    CHECK(page.find("\"/ws\"") != std::string_view::npos);
    CHECK(page.find("name=\"viewport\"") != std::string_view::npos);
}
