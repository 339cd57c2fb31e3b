/* main.c -- command line: -c FILE, -t (test the config), -v, -h. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "master.h"
#include "proctitle.h"
#include "util.h"

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: redis-chat [-c FILE] [-t] [-v] [-h]\n"
            "  -c FILE  configuration file (e.g. " SYSCONFDIR "/redis-chat.conf);\n"
            "           without it, built-in defaults and the environment are used\n"
            "  -t       check the configuration and exit (0 = valid)\n"
            "  -v       print the version and exit\n"
            "  -h       print this help and exit\n"
            "Environment (overrides the file): REDIS_HOST=host[:port] (6380 implies TLS),\n"
            "REDIS_PASSWORD, PORT.\n");
}

int main(int argc, char **argv)
{
    char err[CFG_ERR_LEN];
    char *conf_path = NULL;
    struct cfg *cfg;
    int opt, test_only = 0;

    while ((opt = getopt(argc, argv, "c:tvh")) != -1) {
        switch (opt) {
        case 'c':
            free(conf_path);
            conf_path = strdup(optarg);
            break;
        case 't':
            test_only = 1;
            break;
        case 'v':
            printf("redis-chat %s\n", PACKAGE_VERSION);
            return RC_EXIT_OK;
        case 'h':
            usage(stdout);
            return RC_EXIT_OK;
        default:
            usage(stderr);
            return RC_EXIT_RUNTIME;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "redis-chat: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return RC_EXIT_RUNTIME;
    }
    cfg = malloc(sizeof(*cfg));
    if (cfg == NULL) {
        fprintf(stderr, "redis-chat: out of memory\n");
        return RC_EXIT_RUNTIME;
    }
    if (master_load_config(cfg, conf_path, err, sizeof(err)) == -1) {
        fprintf(stderr, "redis-chat: %s\n", err);
        cfg_free(cfg);
        free(cfg);
        free(conf_path);
        return RC_EXIT_RUNTIME;
    }
    if (test_only) {
        printf("redis-chat: configuration %s is valid\n", conf_path ? conf_path : "(defaults)");
        cfg_free(cfg);
        free(cfg);
        free(conf_path);
        return RC_EXIT_OK;
    }
    if (log_open((enum log_level)cfg->log_level, cfg->logfile) == -1)
        fprintf(stderr, "redis-chat: cannot open logfile %s, logging to stderr only\n",
                cfg->logfile);
    proctitle_init(argc, argv);
    opt = master_run(cfg, conf_path);
    free(conf_path);
    return opt;
}
