// parley chat: redis_backplane.hpp bodies.
#ifndef PARLEY_CHAT_IMPL_REDIS_BACKPLANE_HPP
#define PARLEY_CHAT_IMPL_REDIS_BACKPLANE_HPP

#include <parley/chat/impl/redis_backplane_link.hpp>
#include <parley/chat/impl/redis_backplane_presence.hpp>
#include <parley/chat/impl/redis_backplane_messages.hpp>

#endif
