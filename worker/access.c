/* access.c -- see access.h. */
#include "access.h"

#include <string.h>
#include <strings.h>
#include <time.h>

#include "jwt.h"

#define ACCESS_LEEWAY_S 30 /* clocks of token issuers and servers drift a little */

int access_origin_allowed(const struct cfg *cfg, const struct upg_request *req)
{
    const struct upg_str *origin = upg_header_get(req, "Origin");
    const char *p;

    if (cfg->allowed_origins == NULL || origin == NULL)
        return 1;
    for (p = cfg->allowed_origins; *p != '\0';) {
        size_t n;

        p += strspn(p, " ,\t");
        n = strcspn(p, " ,\t");
        if (n > 0 && n == origin->len && strncasecmp(p, origin->p, n) == 0)
            return 1;
        p += n;
    }
    return 0;
}

int access_token_find(const struct upg_request *req, struct access_token *t)
{
    const struct upg_str *protos = upg_header_get(req, "Sec-WebSocket-Protocol");
    struct upg_str raw;
    ssize_t n;

    memset(t, 0, sizeof(*t));
    if (upg_query_param(&req->target, "token", &raw)) {
        n = upg_percent_decode(raw.p, raw.len, t->token, sizeof(t->token));
        if (n < 0)
            return -1;
        t->len = (size_t)n;
        return 0;
    }
    if (protos != NULL) { /* browsers cannot set headers: new WebSocket(url, [jwt]) */
        const char *p = protos->p, *end = protos->p + protos->len;
        while (p < end) {
            const char *comma = memchr(p, ',', (size_t)(end - p)), *stop = comma ? comma : end;
            const char *b = p, *e = stop;
            while (b < e && (*b == ' ' || *b == '\t'))
                b++;
            while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
                e--;
            if (e > b && (size_t)(e - b) < sizeof(t->token) && jwt_looks_like(b, (size_t)(e - b))) {
                memcpy(t->token, b, (size_t)(e - b));
                t->len = (size_t)(e - b);
                t->token[t->len] = '\0';
                t->protocol.p = b;
                t->protocol.len = t->len;
                return 0;
            }
            p = stop + 1;
        }
    }
    return 0;
}

const char *access_token_check(const struct cfg *cfg, const struct access_token *t,
                               const char *user, size_t userlen)
{
    enum jwt_result r;

    if (cfg->auth_secret == NULL)
        return NULL;
    if (t->len == 0)
        return "token required";
    r = jwt_verify_hs256(t->token, t->len, cfg->auth_secret, strlen(cfg->auth_secret), user,
                         userlen, (long long)time(NULL), ACCESS_LEEWAY_S);
    return r == JWT_OK ? NULL : jwt_result_reason(r);
}
