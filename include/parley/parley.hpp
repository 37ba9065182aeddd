// parley: the umbrella header. Including it brings in every public component.
#ifndef PARLEY_PARLEY_HPP
#define PARLEY_PARLEY_HPP

#include <parley/socket.hpp>
#include <parley/version.hpp>

#endif
