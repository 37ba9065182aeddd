// parley chat cluster: the Redis backplane's Lua scripts, instance ids and
// URL parsing (parley/chat/redis_backplane.hpp is the public header; its
// bodies are in parley/chat/impl/redis_backplane.hpp).
#ifndef PARLEY_CHAT_CLUSTER_DETAIL_REDIS_SUPPORT_HPP
#define PARLEY_CHAT_CLUSTER_DETAIL_REDIS_SUPPORT_HPP

#include <charconv>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <utility>

namespace parley::chat {

namespace detail {

// Every script reads the time from Redis (TIME), so that instances'
// clocks never have to agree. ARGV[1] is the prefix, ARGV[2] the instance.
//
// register: ARGV[3] = nickname lifetime (ms), then key, value pairs: this
// instance's presence. Rewrites it, claims each nickname unless another
// instance holds it (those keys are returned as conflicts), announces the
// instance, and returns the presence of every other instance.
inline constexpr const char* register_script = R"lua(
local p, id, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local h = p .. 'presence:' .. id
redis.call('DEL', h)
local conflicts = {}
for i = 4, #ARGV - 1, 2 do
  local k = ARGV[i]
  local nk = p .. 'nick:' .. k
  local owner = redis.call('GET', nk)
  if owner and owner ~= id then
    table.insert(conflicts, k)
  else
    redis.call('SET', nk, id, 'PX', ttl)
  end
  redis.call('HSET', h, k, ARGV[i + 1])
end
redis.call('ZADD', p .. 'instances', now, id)
local others = {}
for _, d in ipairs(redis.call('ZRANGE', p .. 'instances', 0, -1)) do
  if d ~= id then
    table.insert(others, {d, redis.call('HVALS', p .. 'presence:' .. d)})
  end
end
return {conflicts, others, redis.call('DEL', p .. 'lost:' .. id)}
)lua";

// heartbeat: ARGV[3] = expiry (ms). Renews this instance and its
// nicknames; removes every instance silent for longer than the expiry,
// with its nicknames and presence, and returns {still_known, {{id,
// {presence values}}...}}. ZREM inside the script makes exactly one
// instance the one that removes (and announces) a dead one.
inline constexpr const char* heartbeat_script = R"lua(
local p, id, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local z = p .. 'instances'
local known = redis.call('ZSCORE', z, id)
local lost = {}
for _, d in ipairs(redis.call('ZRANGEBYSCORE', z, '-inf', now - ttl)) do
  if d ~= id then
    redis.call('ZREM', z, d)
    local h = p .. 'presence:' .. d
    for _, k in ipairs(redis.call('HKEYS', h)) do
      local nk = p .. 'nick:' .. k
      if redis.call('GET', nk) == d then redis.call('DEL', nk) end
    end
    table.insert(lost, {d, redis.call('HVALS', h)})
    redis.call('DEL', h)
    redis.call('SET', p .. 'lost:' .. d, '1', 'PX', 86400000)
  end
end
if not known then return {0, lost} end
redis.call('ZADD', z, now, id)
for _, k in ipairs(redis.call('HKEYS', p .. 'presence:' .. id)) do
  local nk = p .. 'nick:' .. k
  local owner = redis.call('GET', nk)
  if owner == id then redis.call('PEXPIRE', nk, ttl)
  elseif not owner then redis.call('SET', nk, id, 'PX', ttl) end
end
return {1, lost}
)lua";

// claim: ARGV[3] = key, ARGV[4] = lifetime (ms). 1 if claimed.
inline constexpr const char* claim_script = R"lua(
local nk = ARGV[1] .. 'nick:' .. ARGV[3]
local owner = redis.call('GET', nk)
if owner and owner ~= ARGV[2] then return 0 end
redis.call('SET', nk, ARGV[2], 'PX', tonumber(ARGV[4]))
return 1
)lua";

// release: ARGV[3] = key. Compare and delete: never frees another's claim.
inline constexpr const char* release_script = R"lua(
local nk = ARGV[1] .. 'nick:' .. ARGV[3]
if redis.call('GET', nk) == ARGV[2] then redis.call('DEL', nk) end
redis.call('HDEL', ARGV[1] .. 'presence:' .. ARGV[2], ARGV[3])
return 1
)lua";

// snapshot: the presence of every other instance.
inline constexpr const char* snapshot_script = R"lua(
local p, id = ARGV[1], ARGV[2]
local others = {}
for _, d in ipairs(redis.call('ZRANGE', p .. 'instances', 0, -1)) do
  if d ~= id then
    table.insert(others, {d, redis.call('HVALS', p .. 'presence:' .. d)})
  end
end
return others
)lua";

// unregister: a clean stop withdraws everything of the instance.
inline constexpr const char* unregister_script = R"lua(
local p, id = ARGV[1], ARGV[2]
local h = p .. 'presence:' .. id
for _, k in ipairs(redis.call('HKEYS', h)) do
  local nk = p .. 'nick:' .. k
  if redis.call('GET', nk) == id then redis.call('DEL', nk) end
end
redis.call('DEL', h)
redis.call('ZREM', p .. 'instances', id)
return 1
)lua";

// store (shared history): ARGV[3] = room, ARGV[4] = messages kept,
// ARGV[5] = expiry (ms), ARGV[6] = the payload as published (instance id,
// '\n', an S payload), ARGV[7] = an epoch for the room if it has none.
// Numbers the message (the room's counter, INCR; its epoch, made once with
// SET NX), appends it as an N payload (S's fields, then seq and epoch) to
// the room's stream and publishes it, in one atomic step: a read sees it
// iff it was published before the read, and every subscriber gets the
// room's messages in seq order. The three keys expire together, so a
// room whose history is gone starts a new epoch at seq 1.
inline constexpr const char* store_script = R"lua(
local p, room = ARGV[1], ARGV[3]
local k, sk, ek = p .. 'history:' .. room, p .. 'seq:' .. room, p .. 'epoch:' .. room
redis.call('SET', ek, ARGV[7], 'NX')
local epoch = redis.call('GET', ek)
local seq = redis.call('INCR', sk)
local body = string.sub(ARGV[6], #ARGV[2] + 2)
local n = 'N' .. string.sub(body, 2) .. '\n' .. seq .. '\n' .. epoch
redis.call('XADD', k, 'MAXLEN', '~', ARGV[4], '*', 'm', n)
redis.call('PEXPIRE', k, ARGV[5])
redis.call('PEXPIRE', sk, ARGV[5])
redis.call('PEXPIRE', ek, ARGV[5])
return redis.call('PUBLISH', p .. 'chat', ARGV[2] .. '\n' .. n)
)lua";

// A room epoch: 14 hex digits, as the chat core makes them.
inline std::string epoch_text(std::uint64_t v) {
    static constexpr char hex[] = "0123456789abcdef";
    std::string out(14, '0');
    for (std::size_t i = 0; i < out.size(); ++i)
        out[i] = hex[(v >> (4 * i)) & 0xf];
    return out;
}

// read (shared history): ARGV[3] = room, ARGV[4] = messages at most,
// ARGV[5] = bytes at most, ARGV[6] = token. Publishes on this instance's
// own channel the token, '\n', then the newest messages that fit, oldest
// first, each as <length>:<payload>. Published, not returned: the answer
// then reaches the subscriber connection after every chat payload
// published before the read and before every one published after it,
// which is what lets the joiner's instance tell them apart. Returns the
// number of receivers (0: this instance's subscriber is not there).
inline constexpr const char* read_script = R"lua(
local k = ARGV[1] .. 'history:' .. ARGV[3]
local budget = tonumber(ARGV[5])
local kept = {}
for _, e in ipairs(redis.call('XREVRANGE', k, '+', '-', 'COUNT', tonumber(ARGV[4]))) do
  local f = e[2]
  if f[1] == 'm' and f[2] then
    if #f[2] > budget then break end
    budget = budget - #f[2]
    table.insert(kept, f[2])
  end
end
local out = {ARGV[6], '\n'}
for i = #kept, 1, -1 do
  table.insert(out, #kept[i] .. ':' .. kept[i])
end
return redis.call('PUBLISH', ARGV[1] .. 'instance:' .. ARGV[2], table.concat(out))
)lua";

// Parked sessions (resume on any instance): the key is the SHA-1 of the
// token, so that only its holder can name it (the secret itself is never
// compared, nor stored).
// park: ARGV[3] = token, ARGV[4] = lifetime (ms), ARGV[5] = serial,
// ARGV[6] = member key, ARGV[7] = presence value, ARGV[8] = current room.
inline constexpr const char* park_script = R"lua(
local k = ARGV[1] .. 'resume:' .. redis.sha1hex(ARGV[3])
redis.call('DEL', k)
redis.call('HSET', k, 'inst', ARGV[2], 'serial', ARGV[5], 'key', ARGV[6], 'rec', ARGV[7],
           'cur', ARGV[8])
redis.call('PEXPIRE', k, ARGV[4])
return 1
)lua";

// unpark: ARGV[3] = token.
inline constexpr const char* unpark_script = R"lua(
return redis.call('DEL', ARGV[1] .. 'resume:' .. redis.sha1hex(ARGV[3]))
)lua";

// take: ARGV[3] = token, ARGV[4] = nickname lifetime (ms). Removes the
// session (so it is taken once), moves its nickname and presence entry to
// this instance, publishes a T payload, and returns {instance, serial,
// key, presence value, current room}; 0 if there is no such session.
inline constexpr const char* take_script = R"lua(
local p, id = ARGV[1], ARGV[2]
local k = p .. 'resume:' .. redis.sha1hex(ARGV[3])
local v = redis.call('HMGET', k, 'inst', 'serial', 'key', 'rec', 'cur')
if not v[1] or not v[2] or not v[3] or not v[4] or not v[5] then return 0 end
redis.call('DEL', k)
redis.call('SET', p .. 'nick:' .. v[3], id, 'PX', tonumber(ARGV[4]))
redis.call('HDEL', p .. 'presence:' .. v[1], v[3])
redis.call('HSET', p .. 'presence:' .. id, v[3], v[4])
local nick = string.match(v[4], '^[^\n]*')
redis.call('PUBLISH', p .. 'chat', id .. '\nT\n' .. v[1] .. '\n' .. v[2] .. '\n' .. nick)
return v
)lua";

inline std::string random_instance_id() {
    std::random_device rd;
    std::uniform_int_distribution<std::uint64_t> any;
    const std::uint64_t v = (std::uint64_t{rd()} << 32) ^ rd() ^ any(rd);
    static constexpr char hex[] = "0123456789abcdef";
    std::string id(16, '0');
    for (int i = 0; i < 16; ++i)
        id[static_cast<std::size_t>(i)] = hex[(v >> (4 * i)) & 0xf];
    return id;
}

} // namespace detail

inline std::optional<std::pair<std::string, std::uint16_t>> parse_redis_url(std::string_view url,
                                                                             std::string& error) {
    constexpr std::string_view scheme = "redis://";
    if (url.substr(0, scheme.size()) != scheme) {
        error = "a Redis URL starts with redis:// (redis://127.0.0.1:6379)";
        return std::nullopt;
    }
    std::string_view rest = url.substr(scheme.size());
    if (!rest.empty() && rest.back() == '/')
        rest.remove_suffix(1);
    if (rest.find_first_of("@/?") != std::string_view::npos) {
        error = "only redis://HOST[:PORT] is supported (no user, password, database or options)";
        return std::nullopt;
    }
    std::string_view host = rest, port_text;
    if (!rest.empty() && rest.front() == '[') {
        const auto close = rest.find(']');
        if (close == std::string_view::npos) {
            error = "unclosed '[' in the Redis URL";
            return std::nullopt;
        }
        host = rest.substr(1, close - 1);
        port_text = rest.substr(close + 1);
        if (!port_text.empty() && port_text.front() != ':') {
            error = "expected ':PORT' after ']' in the Redis URL";
            return std::nullopt;
        }
        if (!port_text.empty())
            port_text.remove_prefix(1);
    } else if (const auto colon = rest.rfind(':'); colon != std::string_view::npos) {
        host = rest.substr(0, colon);
        port_text = rest.substr(colon + 1);
    }
    if (host.empty()) {
        error = "the Redis URL names no host";
        return std::nullopt;
    }
    std::uint16_t port = 6379;
    if (!port_text.empty()) {
        auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
        if (ec != std::errc() || end != port_text.data() + port_text.size() || port == 0) {
            error = "invalid port '" + std::string(port_text) + "' in the Redis URL";
            return std::nullopt;
        }
    }
    return std::pair<std::string, std::uint16_t>(std::string(host), port);
}

} // namespace parley::chat

#endif
