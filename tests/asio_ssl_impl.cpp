// Asio's SSL non-template code, compiled once for parley's in-tree programs
// that use TLS (see parley_asio_ssl_impl in CMakeLists.txt).
#include <asio/ssl/impl/src.hpp>
