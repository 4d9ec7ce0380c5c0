// Hand-off from the HTTP session to a WebSocket feed session (keeps websocket.hpp out of server.cpp).
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <memory>
#include <string>

#include "server_state.h"

namespace dfm::server {

// Completes the upgrade on `socket` (whose executor is the connection's strand) and runs the session.
// The caller has already reserved a slot in state->slots; the session releases it when it ends.
void start_ws_session(std::shared_ptr<Server::State> state, boost::asio::ip::tcp::socket socket,
                      boost::beast::http::request<boost::beast::http::string_body> request, EventFilter filter,
                      std::string remote);

}  // namespace dfm::server
