/* check_run.h -- the end of every check program's main(): run the suite
 * (each test in a child unless CK_FORK=no) and turn the result into the
 * exit status automake's test driver reads. */
#ifndef RC_CHECK_RUN_H
#define RC_CHECK_RUN_H

#include <check.h>
#include <stdlib.h>

static inline int check_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#endif
