/* proctitle.h -- what `ps` shows for each process ("redis-chat: worker 2"),
 * as nginx does, so an operator can tell the processes apart. */
#ifndef RC_PROCTITLE_H
#define RC_PROCTITLE_H

/* Call once from main() before anything reads environ: moves the
 * environment out of the argv area so that area can hold the title. */
void proctitle_init(int argc, char **argv);

/* Set the title ("redis-chat: %s" is up to the caller). */
void proctitle_set(const char *title);

#endif
