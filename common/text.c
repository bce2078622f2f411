/* Small text helpers. */
#include "text.h"

#include <stdio.h>
#include <string.h>

#include "xalloc.h"

char *text_escape(char *dst, size_t dstlen, const char *src, size_t srclen)
{
    size_t o = 0;
    if (dstlen == 0)
        return dst;
    for (size_t i = 0; i < srclen && src[i]; i++) {
        unsigned char c = (unsigned char)src[i];
        if (c >= 0x20 && c <= 0x7e) {
            if (o + 1 >= dstlen)
                break;
            dst[o++] = (char)c;
        } else {
            if (o + 4 >= dstlen)
                break;
            snprintf(dst + o, 5, "\\x%02x", c);
            o += 4;
        }
    }
    dst[o] = '\0';
    return dst;
}

char *path_join(const char *root, const char *rel)
{
    size_t rl = strlen(root);
    while (rl > 1 && root[rl - 1] == '/')
        rl--;
    while (*rel == '/')
        rel++;
    size_t n = rl + 1 + strlen(rel) + 1;
    char *p = xmalloc(n);
    memcpy(p, root, rl);
    p[rl] = '/';
    memcpy(p + rl + 1, rel, strlen(rel) + 1);
    return p;
}
