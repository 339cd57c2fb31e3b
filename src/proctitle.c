/* proctitle.c -- overwrite the argv area with a title.
 *
 * Linux shows /proc/PID/cmdline from the memory argv points at; argv and
 * environ strings are contiguous, so once environ is copied elsewhere the
 * whole span can hold a title longer than the original command line.
 * The comm name (ps -e, pidof) stays "redis-chat". Callers copy what they
 * need from argv before the first proctitle_set().
 */
#include "proctitle.h"

#include <stdlib.h>
#include <string.h>

extern char **environ;

/* our copy of the environment, kept for the process lifetime; `used` keeps
 * the compiler from dropping a static that is only written, so leak
 * checkers still see the copy as reachable */
static char **title_env __attribute__((used));
static char *title_start;
static size_t title_cap;

void proctitle_init(int argc, char **argv)
{
    char *end;
    size_t n = 0;
    int i;

    if (argc < 1 || argv[0] == NULL)
        return;
    end = argv[0] + strlen(argv[0]) + 1;
    for (i = 1; i < argc; i++)
        if (argv[i] == end)
            end = argv[i] + strlen(argv[i]) + 1;
    for (i = 0; environ[i] != NULL; i++)
        n++;
    if (n > 0) {
        char **env = calloc(n + 1, sizeof(char *));
        if (env == NULL)
            return;
        for (i = 0; environ[i] != NULL; i++) {
            if (environ[i] == end)
                end = environ[i] + strlen(environ[i]) + 1;
            env[i] = strdup(environ[i]);
            if (env[i] == NULL)
                return;
        }
        environ = title_env = env;
    }
    title_start = argv[0];
    title_cap = (size_t)(end - argv[0]);
}

void proctitle_set(const char *title)
{
    size_t len;

    if (title_start == NULL || title_cap < 2)
        return;
    len = strlen(title);
    if (len > title_cap - 1)
        len = title_cap - 1;
    memcpy(title_start, title, len);
    memset(title_start + len, 0, title_cap - len);
}
