// parley: the umbrella header. Including it brings in every public component
// of the core; the chat server and clients have their own headers
// (parley/chat/*.hpp, parley/connect.hpp, parley/async_client.hpp,
// parley/blocking_client.hpp).
#ifndef PARLEY_PARLEY_HPP
#define PARLEY_PARLEY_HPP

#include <parley/constant_time.hpp>
#include <parley/accept_backoff.hpp>
#include <parley/error.hpp>
#include <parley/frame_batch.hpp>
#include <parley/frame_codec.hpp>
#include <parley/framed_stream.hpp>
#include <parley/http/error.hpp>
#include <parley/http/request_parser.hpp>
#include <parley/http/response.hpp>
#include <parley/http/response_parser.hpp>
#include <parley/hub.hpp>
#include <parley/line_codec.hpp>
#include <parley/message.hpp>
#include <parley/outbound_budget.hpp>
#include <parley/outbound_queue.hpp>
#include <parley/session_base.hpp>
#include <parley/session.hpp>
#include <parley/socket.hpp>
#include <parley/utf8.hpp>
#include <parley/version.hpp>
#include <parley/websocket/handshake.hpp>
#include <parley/websocket/permessage_deflate.hpp>

#endif
