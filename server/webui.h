/* The dashboard's files, embedded at build time (server/embed.cmake), and
 * the handler that serves them and the charting library from Debian's
 * /usr/share/javascript. */
#ifndef SCALECAST_WEBUI_H
#define SCALECAST_WEBUI_H

#include <stddef.h>

struct webui_file {
    const char *path; /* "/index.html" */
    const unsigned char *data;
    size_t len;
};

/* Terminated by an entry with path == NULL. */
extern const struct webui_file webui_files[];

#endif
