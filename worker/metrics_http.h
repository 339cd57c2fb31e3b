/* metrics_http.h -- GET /metrics on the metrics listener: the shared
 * metrics (src/metrics.h) in the Prometheus text exposition format 0.0.4.
 *
 * Any worker answers: it reads the shared table (no round trip to another
 * process, no Redis), formats it into one buffer, writes it and closes. The
 * request head goes through the WebSocket side's parser (http_upgrade.h);
 * only GET /metrics is served (other paths 404, other methods 405, a bad
 * head 400). */
#ifndef RC_METRICS_HTTP_H
#define RC_METRICS_HTTP_H

#include <stddef.h>

struct event_base;
struct metrics_shm;
struct metrics_view;

/* The exposition of view v into a malloc'd buffer (*out, NUL-terminated);
 * returns its length, or 0 out of memory. */
size_t metrics_render(const struct metrics_view *v, char **out);

/* Accept on listen_fd (shared by every worker, owned by the master) and
 * answer there. NULL out of memory. */
struct metrics_http *metrics_http_new(struct event_base *base, int listen_fd,
                                      const struct metrics_shm *shm);
/* Stop accepting (a draining or stopping worker); requests in progress are
 * still answered. */
void metrics_http_stop(struct metrics_http *mh);
/* Drop everything, the listener's copy included. */
void metrics_http_free(struct metrics_http *mh);

#endif
