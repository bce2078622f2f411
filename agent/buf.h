/* Growable byte buffers and the agent's JSON writer.
 *
 * The agent only ever writes JSON (the push body and the spool lines), so a
 * few appenders are all it needs; this keeps a JSON library out of the hot
 * path. A buffer owns its bytes; buf_free releases them. The contents are
 * always NUL-terminated so parsers may treat them as C strings. */
#ifndef SCALECAST_AGENT_BUF_H
#define SCALECAST_AGENT_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
    char *p;    /* NULL until the first append */
    size_t len; /* bytes used, not counting the terminating NUL */
    size_t cap;
};

#define BUF_INIT                                                                                   \
    {                                                                                              \
        NULL, 0, 0                                                                                 \
    }

/* Makes room for `n` more bytes (plus the NUL) and returns where they go. */
char *buf_reserve(struct buf *b, size_t n);
void buf_add(struct buf *b, const void *data, size_t n);
void buf_adds(struct buf *b, const char *s);
void buf_addc(struct buf *b, char c);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Empties the buffer, keeping its memory. */
void buf_reset(struct buf *b);
/* Releases the memory; the buffer is empty and reusable afterwards. */
void buf_free(struct buf *b);

/* Appends `s` as a quoted JSON string, escaping quotes, backslashes and
 * control characters. Bytes >= 0x80 are copied as they are (UTF-8 in, UTF-8
 * out). */
void buf_json_str(struct buf *b, const char *s);
/* Appends a finite number: integers below 2^53 exactly, others with ten
 * significant digits. The caller must not pass NaN or infinity (JSON has no
 * spelling for them); buf_json_num writes 0 for them as a last resort. */
void buf_json_num(struct buf *b, double v);

#endif
