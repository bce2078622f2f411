/* Small text helpers shared by the parsers and the HTTP front. */
#ifndef SCALECAST_TEXT_H
#define SCALECAST_TEXT_H

#include <stddef.h>

/* Copies at most srclen bytes of src into dst (always NUL-terminated,
 * truncated to fit), writing every byte outside printable ASCII
 * (0x20-0x7e) as \xNN, so that text from a request can be quoted in an error
 * message that must stay valid UTF-8 and one line. Returns dst. */
char *text_escape(char *dst, size_t dstlen, const char *src, size_t srclen);

/* Joins `root` and `rel` ("/proc" + "stat") into a new string with one '/'
 * between them. The caller frees it. */
char *path_join(const char *root, const char *rel);

#endif
