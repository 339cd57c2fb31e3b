/* ws_app.h -- what an application running on the WebSocket transport
 * provides: a few callbacks, chosen by the HTTP route (http_route.h).
 *
 * The transport (ws_session.c) knows frames, buffers and the close
 * handshake, nothing of what the messages mean; an application (chat.c,
 * echo.c) knows nothing of sockets. Everything an application needs
 * besides the session calls comes through `arg`, given at setup. */
#ifndef RC_WS_APP_H
#define RC_WS_APP_H

#include <stddef.h>
#include <stdint.h>

struct wss_session;
struct upg_request;
struct upg_str;

struct ws_app {
    /* A request for the app's route passed the common WebSocket checks.
     * The app answers it: wss_upgrade() and, when ready, wss_open(); or
     * wss_http_reply() with an error. `param` is the rest of the path
     * after a prefix route (still percent-encoded), empty otherwise. */
    void (*open)(struct wss_session *s, const struct upg_request *req,
                 const struct upg_str *param, void *arg);
    /* What is wrong with a request for the app's route (the body of a
     * 400), or NULL. Asked for a plain GET, no upgrade: a browser learns
     * this way why its WebSocket was refused, which it cannot read from
     * the refused upgrade. May be NULL. */
    const char *(*check)(const struct upg_request *req, const struct upg_str *param, void *arg);
    /* A complete text message (valid UTF-8) on an open session. */
    void (*text)(struct wss_session *s, const char *text, size_t len, void *arg);
    /* A complete binary message; NULL: binary is refused with 1003. */
    void (*binary)(struct wss_session *s, const uint8_t *data, size_t len, void *arg);
    /* The session is being freed (any state after open was called):
     * release what the app keeps for it. May be NULL. */
    void (*gone)(struct wss_session *s, void *arg);
    void *arg;
};

#endif
