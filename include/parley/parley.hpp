// parley: the umbrella header. Including it brings in every public component
// of the core; the chat server and clients have their own headers
// (parley/chat/*.hpp, parley/net/connect.hpp, parley/client/async_client.hpp,
// parley/client/blocking_client.hpp).
#ifndef PARLEY_PARLEY_HPP
#define PARLEY_PARLEY_HPP

#include <parley/codec/frame_batch.hpp>
#include <parley/codec/frame_codec.hpp>
#include <parley/codec/line_codec.hpp>
#include <parley/codec/utf8.hpp>
#include <parley/codec/utf8_validator.hpp>
#include <parley/constant_time.hpp>
#include <parley/error.hpp>
#include <parley/http/error.hpp>
#include <parley/http/request_parser.hpp>
#include <parley/http/response.hpp>
#include <parley/http/response_parser.hpp>
#include <parley/hub/hub.hpp>
#include <parley/hub/input_decoder.hpp>
#include <parley/hub/message.hpp>
#include <parley/hub/outbound_budget.hpp>
#include <parley/hub/outbound_queue.hpp>
#include <parley/hub/session.hpp>
#include <parley/hub/session_base.hpp>
#include <parley/net/accept_backoff.hpp>
#include <parley/net/socket.hpp>
#include <parley/stream/framed_stream.hpp>
#include <parley/version.hpp>
#include <parley/websocket/close.hpp>
#include <parley/websocket/error.hpp>
#include <parley/websocket/frame.hpp>
#include <parley/websocket/frame_writer.hpp>
#include <parley/websocket/handshake.hpp>
#include <parley/websocket/message_reader.hpp>
#include <parley/websocket/permessage_deflate.hpp>
#include <parley/websocket/stream.hpp>

#endif
