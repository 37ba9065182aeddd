// libFuzzer target for the payloads chat servers exchange
// (parley/chat/cluster/codec.hpp). Besides sanitizer reports, these
// properties are checked (any failure aborts): a payload that decodes
// encodes back to the same bytes and decodes again to an equal payload; a
// presence value that decodes re-encodes to a value that decodes equal.
#include <parley/chat/cluster/codec.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace cl = parley::chat::cluster;

namespace {
void check(bool ok, const char* what) {
    if (!ok) {
        std::fprintf(stderr, "cluster_codec_fuzz: %s\n", what);
        std::abort();
    }
}
} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    if (auto p = cl::decode(text)) {
        const std::string again = cl::encode(*p);
        check(again == text, "a decoded payload encodes to other bytes");
        auto q = cl::decode(again);
        check(q && *q == *p, "a re-encoded payload decodes differently");
    }
    if (auto p = cl::decode_presence(text)) {
        auto q = cl::decode_presence(cl::encode_presence(p->nick, p->rooms));
        check(q && *q == *p, "a presence value does not round-trip");
    }
    return 0;
}
