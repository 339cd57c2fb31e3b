/* echo.h -- the /echo application: every message comes back to its
 * sender, text as text and binary as binary, with no name, no broker and
 * no Redis. It exists for WebSocket conformance suites (echo-endpoint). */
#ifndef RC_ECHO_H
#define RC_ECHO_H

#include "ws_app.h"

extern const struct ws_app echo_app;

#endif
