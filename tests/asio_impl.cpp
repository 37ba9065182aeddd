// Asio's non-template code, compiled once for all of parley's own tests,
// examples and benchmarks (see parley_asio_impl in CMakeLists.txt, which
// defines ASIO_SEPARATE_COMPILATION for everything that links it).
#include <asio/impl/src.hpp>
