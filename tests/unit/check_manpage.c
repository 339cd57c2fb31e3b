/* check_manpage.c -- the manual page and the sample configuration against
 * the directive table (src/config.c), so a new or changed directive cannot
 * go undocumented.
 *
 * man/redis-chat.conf.5 documents each directive as an entry that starts
 * with ".TP" and ".BI "NAME " TYPE" and says "Default: \fBVALUE\fR." (fed
 * to the real parser, the result must equal cfg_init's defaults),
 * "Default: none" (unset: the directive set to "" must equal the defaults)
 * or, for the two defaults computed at start, what they are. Every
 * directive must also appear in etc/redis-chat.conf (commented or not),
 * and that file must load. The files are read from SRCDIR (set by make
 * check), so a VPATH build finds them.
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_run.h"

#define PAGE "man/redis-chat.conf.5"
#define SAMPLE "etc/redis-chat.conf"

static char *page;

/* SRCDIR/rel into buf. */
static const char *src_path(const char *rel, char *buf, size_t cap)
{
    const char *srcdir = getenv("SRCDIR");

    snprintf(buf, cap, "%s/%s", srcdir != NULL && *srcdir != '\0' ? srcdir : ".", rel);
    return buf;
}

/* The whole file as a NUL-terminated string (the test fails if unreadable). */
static char *slurp(const char *rel)
{
    char path[4096], *buf;
    FILE *f = fopen(src_path(rel, path, sizeof path), "rb");
    long len;

    ck_assert_msg(f != NULL, "cannot open %s (set SRCDIR)", path);
    ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
    len = ftell(f);
    ck_assert_int_ge(len, 0);
    rewind(f);
    buf = malloc((size_t)len + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(fread(buf, 1, (size_t)len, f), (size_t)len);
    buf[len] = '\0';
    fclose(f);
    return buf;
}

static void page_setup(void)
{
    page = slurp(PAGE);
}

static void page_teardown(void)
{
    free(page);
    page = NULL;
}

/* A directive name as roff writes it: every '-' as "\-". */
static void roff_name(const char *name, char *out, size_t cap)
{
    size_t o = 0;

    for (; *name != '\0' && o + 3 < cap; name++) {
        if (*name == '-')
            out[o++] = '\\';
        out[o++] = *name;
    }
    out[o] = '\0';
}

/* The entry of directive `name` in the page: from its heading up to the
 * next entry or section, as a heap string; NULL when the page has none. */
static char *page_entry(const char *name)
{
    char rname[128], heading[160];
    const char *start, *end, *stops[] = {"\n.TP\n", "\n.SH ", "\n.SS "};
    size_t i;

    roff_name(name, rname, sizeof rname);
    snprintf(heading, sizeof heading, "\n.TP\n.BI \"%s \"", rname);
    if ((start = strstr(page, heading)) == NULL)
        return NULL;
    start += 5; /* past "\n.TP\n" */
    end = start + strlen(start);
    for (i = 0; i < sizeof stops / sizeof stops[0]; i++) {
        const char *s = strstr(start, stops[i]);
        if (s != NULL && s < end)
            end = s;
    }
    return strndup(start, (size_t)(end - start));
}

/* Roff text to plain: "\-" is '-', "\&" and "\%" vanish. */
static void roff_plain(const char *s, size_t len, char *out, size_t cap)
{
    size_t o = 0, i;

    for (i = 0; i < len && o + 1 < cap; i++) {
        if (s[i] == '\\' && i + 1 < len && (s[i + 1] == '&' || s[i + 1] == '%')) {
            i++;
            continue;
        }
        if (s[i] == '\\' && i + 1 < len && s[i + 1] == '-')
            i++;
        out[o++] = s[i];
    }
    out[o] = '\0';
}

/* Parse "name value" (value already in config syntax) onto the defaults and
 * say whether the result still equals the defaults. */
static int default_is(const char *name, const char *value, char *err, size_t errlen)
{
    struct cfg def, set;
    char line[512];
    int same;

    cfg_init(&def);
    cfg_init(&set);
    snprintf(line, sizeof line, "%s %s\n", name, value);
    if (cfg_parse_buffer(&set, line, strlen(line), PAGE, err, errlen) == -1) {
        cfg_free(&def);
        cfg_free(&set);
        return 0;
    }
    same = cfg_equal(&def, &set);
    if (!same)
        snprintf(err, errlen, "'%s %s' differs from the built-in default", name, value);
    cfg_free(&def);
    cfg_free(&set);
    return same;
}

/* The defaults computed at start, described in words on the page. */
static void check_computed_default(const char *name, const char *text)
{
    struct cfg cfg;
    char err[CFG_ERR_LEN];

    cfg_init(&cfg);
    if (strcmp(name, "workers") == 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        ck_assert_msg(strstr(text, "the number of online CPUs") != NULL,
                      "workers: the page does not say the default is the number of online CPUs");
        ck_assert_int_eq(cfg.workers, cpus < 1 ? 1 : cpus > 256 ? 256 : cpus);
    } else if (strcmp(name, "broker-socket") == 0) {
        ck_assert_msg(strstr(text, "redis\\-chat\\-\\fIport\\fR.sock") != NULL,
                      "broker-socket: the page does not give /tmp/redis-chat-PORT.sock");
        ck_assert_msg(cfg_finalize(&cfg, err, sizeof err) == 0, "%s", err);
        ck_assert_str_eq(cfg.broker_socket, "/tmp/redis-chat-8080.sock");
    } else {
        ck_abort_msg("%s: the page's default is neither \\fBVALUE\\fR nor none: %.60s", name, text);
    }
    cfg_free(&cfg);
}

START_TEST(test_page_documents_every_directive)
{
    const char *name;
    size_t i, missing = 0;

    for (i = 0; (name = cfg_directive_name(i)) != NULL; i++) {
        char *entry = page_entry(name);
        if (entry == NULL) {
            fprintf(stderr, "%s: no entry in %s\n", name, PAGE);
            missing++;
        }
        free(entry);
    }
    ck_assert_uint_gt(i, 40); /* the table was walked */
    ck_assert_msg(missing == 0, "%zu directive(s) missing from %s", missing, PAGE);
}
END_TEST

START_TEST(test_page_defaults_match_the_table)
{
    const char *name;
    char err[CFG_ERR_LEN], value[256];
    size_t i;

    for (i = 0; (name = cfg_directive_name(i)) != NULL; i++) {
        char *entry = page_entry(name);
        const char *d, *v, *e;

        if (entry == NULL)
            continue; /* reported by the test above */
        d = strstr(entry, "Default: ");
        ck_assert_msg(d != NULL, "%s: no \"Default: \" in its entry", name);
        v = d + strlen("Default: ");
        if (strncmp(v, "\\fB", 3) == 0) {
            v += 3;
            e = strstr(v, "\\fR");
            ck_assert_msg(e != NULL, "%s: \\fB without \\fR after Default:", name);
            roff_plain(v, (size_t)(e - v), value, sizeof value);
            ck_assert_msg(default_is(name, value, err, sizeof err), "%s: page says %s: %s", name,
                          value, err);
        } else if (strncmp(v, "none", 4) == 0) {
            ck_assert_msg(default_is(name, "\"\"", err, sizeof err),
                          "%s: page says none (unset): %s", name, err);
        } else {
            check_computed_default(name, v);
        }
        free(entry);
    }
}
END_TEST

/* The checks above must be able to fail: a wrong default and a missing
 * entry are caught. */
START_TEST(test_checks_catch_a_wrong_page)
{
    char err[CFG_ERR_LEN];

    ck_assert(!default_is("port", "8081", err, sizeof err));
    ck_assert(!default_is("max-message-size", "8k", err, sizeof err));
    ck_assert(!default_is("bind", "\"\"", err, sizeof err));
    ck_assert(!default_is("tls-port", "\"\"", err, sizeof err));
    ck_assert(default_is("max-message-size", "4096", err, sizeof err));
    ck_assert_ptr_null(page_entry("no-such-directive"));
}
END_TEST

START_TEST(test_sample_names_every_directive)
{
    char *sample = slurp(SAMPLE);
    const char *name;
    size_t i, missing = 0;

    for (i = 0; (name = cfg_directive_name(i)) != NULL; i++) {
        size_t n = strlen(name);
        const char *line = sample;
        int found = 0;

        /* a line "name value" or "# name value" */
        for (; line != NULL && !found; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
            const char *p = line;
            if (p[0] == '#')
                p += p[1] == ' ' ? 2 : 1;
            found = strncmp(p, name, n) == 0 && (p[n] == ' ' || p[n] == '\n' || p[n] == '\0');
        }
        if (!found) {
            fprintf(stderr, "%s: not in %s\n", name, SAMPLE);
            missing++;
        }
    }
    free(sample);
    ck_assert_msg(missing == 0, "%zu directive(s) missing from %s", missing, SAMPLE);
}
END_TEST

START_TEST(test_sample_loads)
{
    struct cfg cfg;
    char path[4096], err[CFG_ERR_LEN];

    cfg_init(&cfg);
    ck_assert_msg(cfg_load_file(&cfg, src_path(SAMPLE, path, sizeof path), err, sizeof err) == 0,
                  "%s", err);
    ck_assert_msg(cfg_finalize(&cfg, err, sizeof err) == 0, "%s", err);
    cfg_free(&cfg);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("manpage");
    TCase *tc = tcase_create("page");

    tcase_add_checked_fixture(tc, page_setup, page_teardown);
    tcase_add_test(tc, test_page_documents_every_directive);
    tcase_add_test(tc, test_page_defaults_match_the_table);
    tcase_add_test(tc, test_checks_catch_a_wrong_page);
    suite_add_tcase(s, tc);
    tc = tcase_create("sample");
    tcase_add_test(tc, test_sample_names_every_directive);
    tcase_add_test(tc, test_sample_loads);
    suite_add_tcase(s, tc);
    return check_run(s);
}
