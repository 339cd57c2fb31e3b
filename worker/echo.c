/* echo.c -- see echo.h. */
#include "echo.h"

#include "ws_session.h"

static void echo_open(struct wss_session *s, const struct upg_request *req,
                      const struct upg_str *param, void *arg)
{
    (void)param;
    (void)arg;
    if (wss_upgrade(s, req, NULL) == 0)
        wss_open(s);
}

static void echo_text(struct wss_session *s, const char *text, size_t len, void *arg)
{
    (void)arg;
    wss_queue_text(s, text, len);
}

static void echo_binary(struct wss_session *s, const uint8_t *data, size_t len, void *arg)
{
    (void)arg;
    wss_queue_binary(s, data, len);
}

const struct ws_app echo_app = {echo_open, NULL, echo_text, echo_binary, NULL, NULL};
