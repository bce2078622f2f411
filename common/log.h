/* Logging: one line per event on stderr, with a UTC timestamp, a level and the
 * emitting component. Thread-safe; lines are never interleaved. */
#ifndef SCALECAST_LOG_H
#define SCALECAST_LOG_H

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Sets the minimum level printed (default LOG_INFO). */
void log_set_level(enum log_level lvl);
enum log_level log_get_level(void);

/* Parses "debug", "info", "warn"/"warning" or "error". Returns 0, or -1 for
 * anything else (leaving *out untouched). */
int log_parse_level(const char *s, enum log_level *out);

/* Prints one line: "2026-11-21T08:40:17.123Z INFO  server: message". A
 * trailing newline in fmt is not needed. */
void log_msg(enum log_level lvl, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_debug(comp, ...) log_msg(LOG_DEBUG, comp, __VA_ARGS__)
#define log_info(comp, ...) log_msg(LOG_INFO, comp, __VA_ARGS__)
#define log_warn(comp, ...) log_msg(LOG_WARN, comp, __VA_ARGS__)
#define log_error(comp, ...) log_msg(LOG_ERROR, comp, __VA_ARGS__)

#endif
