// parley: tcp_socket and tcp_listener bodies.
#ifndef PARLEY_NET_IMPL_SOCKET_HPP
#define PARLEY_NET_IMPL_SOCKET_HPP

#include <parley/net/impl/tcp_socket_connect.hpp>
#include <parley/net/impl/tcp_socket_io.hpp>
#include <parley/net/impl/tcp_socket_options.hpp>
#include <parley/net/impl/tcp_listener.hpp>

#endif
