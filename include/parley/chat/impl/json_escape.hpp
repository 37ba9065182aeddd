// parley chat: JSON string escaping (write_string()).
#ifndef PARLEY_CHAT_IMPL_JSON_ESCAPE_HPP
#define PARLEY_CHAT_IMPL_JSON_ESCAPE_HPP

#include <parley/codec/utf8.hpp>

namespace parley::chat::json {

inline void write_string(std::string& out, std::string_view text) {
    static constexpr char hex[] = "0123456789abcdef";
    out += '"';
    std::size_t i = 0;
    while (i < text.size()) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c >= 0x80) {
            // Copy a whole valid sequence, or replace one bad byte.
            if (const std::size_t len = utf8_sequence_at(text, i); len != 0) {
                out += text.substr(i, len);
                i += len;
            } else {
                out += "\xEF\xBF\xBD";
                ++i;
            }
            continue;
        }
        ++i;
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
            if (c < 0x20) {
                out += "\\u00";
                out += hex[c >> 4];
                out += hex[c & 0xF];
            } else {
                out += static_cast<char>(c);
            }
        }
    }
    out += '"';
}

} // namespace parley::chat::json

#endif
