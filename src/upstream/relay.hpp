#pragma once

#include <boost/asio/awaitable.hpp>

#include "http/client.hpp"
#include "upstream/forward.hpp"
#include "upstream/pool.hpp"

namespace im::upstream {

// Sends the response whose head (head_len bytes) is in conn.in to the client,
// then its body. Returns whether the target connection can be reused.
boost::asio::awaitable<bool> relay_response(http::Client& client, Connection& conn,
                                            server::Guard& upstream_guard,
                                            const http::Response& response, std::size_t head_len,
                                            const config::TargetGroup& group, ForwardResult& result);

}  // namespace im::upstream
