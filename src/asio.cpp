// Asio's implementation, compiled once for the whole program
// (BOOST_ASIO_SEPARATE_COMPILATION keeps it out of every other file).
#include <boost/asio/impl/src.hpp>
#include <boost/asio/ssl/impl/src.hpp>
