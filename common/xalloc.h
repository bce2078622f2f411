/* Allocation that never returns NULL.
 *
 * scalecast's out-of-memory policy, decided once (as redis and tmux do): an
 * allocation failure aborts the process with a message. Callers therefore
 * never grow error branches for OOM. */
#ifndef SCALECAST_XALLOC_H
#define SCALECAST_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

/* Grow an array so that it holds at least `need` elements of `elem` bytes.
 * *cap is updated; returns the (possibly moved) array. */
void *xgrow(void *arr, size_t *cap, size_t need, size_t elem);

#endif
