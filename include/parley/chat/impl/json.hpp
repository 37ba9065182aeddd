// parley chat: JSON reader and writer bodies.
#ifndef PARLEY_CHAT_IMPL_JSON_HPP
#define PARLEY_CHAT_IMPL_JSON_HPP

#include <parley/chat/impl/json_value.hpp>
#include <parley/chat/impl/json_parser.hpp>
#include <parley/chat/impl/json_escape.hpp>
#include <parley/chat/impl/json_writer.hpp>

#endif
