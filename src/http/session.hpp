// The client connection loop: read a head, decide, execute, repeat.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <memory>

#include "core/decide.hpp"
#include "server/watchdog.hpp"

namespace im::server {
class Worker;
}

namespace im::http {

// `https`: the connection came to a TLS listener; the handshake comes first.
// The caller has counted it in `worker.clients`; the session counts it out.
boost::asio::awaitable<void> serve_client(server::Worker& worker, boost::asio::ip::tcp::socket socket,
                                          bool https);

struct Client;

// A request taken as far as it goes without waiting. `answered`: refused,
// redirected to HTTPS, or answered by the gateway itself (the answer is in
// c.out). Otherwise `decision` waits for the application, or for the body to
// be read off, on the snapshot it was made with (`pinned`).
struct Started {
    bool answered = false;
    bool keep = false;  // answered: the connection may carry another request
    bool close = false;
    long end = 0;       // the head's length
    server::Clock::time_point start;
    core::Visitor visitor;
    core::Decision decision;
    std::shared_ptr<const core::Snapshot> pinned;
};

// The request whose head is c.in[0, end).
Started start_request(Client& c, long end);
// The rest of a request that was not answered at once. Returns whether the
// connection stays open for another.
boost::asio::awaitable<bool> finish_request(Client& c, Started& st);

// HTTP/2 streams: the stream's whole head is in c.in (as HTTP/1.1), its body
// and answer go through c.pipe. start_stream() serves it as far as it goes
// without waiting, finish_stream() does the rest and writes the answer out.
// A `refuse_status` answers at once (431: the header list was too large).
Started start_stream(Client& c, int refuse_status);
boost::asio::awaitable<void> finish_stream(Client& c, Started st);

}  // namespace im::http
