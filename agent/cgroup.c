/* cgroup v1/v2 layout and file formats. */
#include "cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "pfile.h"
#include "text.h"
#include "xalloc.h"

#define SEARCH_DEPTH 6

static int exists(const char *dir, const char *file)
{
    char *p = path_join(dir, file);
    struct stat st;
    int ok = stat(p, &st) == 0;
    free(p);
    return ok;
}

int cgroup_detect(const char *root, struct cgroup_layout *out)
{
    memset(out, 0, sizeof *out);
    if (exists(root, "cgroup.controllers")) {
        out->version = CGROUP_V2;
        out->cpu_root = xstrdup(root);
        out->mem_root = xstrdup(root);
        return 0;
    }
    /* v1 mounts cpuacct alone or co-mounted with cpu, under either name. */
    static const char *const cpu[] = {"cpuacct", "cpu,cpuacct", "cpuacct,cpu"};
    for (size_t i = 0; i < sizeof cpu / sizeof cpu[0]; i++) {
        char *c = path_join(root, cpu[i]);
        char *m = path_join(root, "memory");
        if (exists(c, "cpuacct.usage") && exists(m, "memory.usage_in_bytes")) {
            out->version = CGROUP_V1;
            out->cpu_root = c;
            out->mem_root = m;
            return 0;
        }
        free(c);
        free(m);
    }
    return -ENOENT;
}

void cgroup_layout_free(struct cgroup_layout *l)
{
    free(l->cpu_root);
    free(l->mem_root);
    memset(l, 0, sizeof *l);
}

const char *cgroup_cpu_file(const struct cgroup_layout *l)
{
    return l->version == CGROUP_V2 ? "cpu.stat" : "cpuacct.usage";
}

const char *cgroup_mem_file(const struct cgroup_layout *l)
{
    return l->version == CGROUP_V2 ? "memory.current" : "memory.usage_in_bytes";
}

const char *cgroup_limit_file(const struct cgroup_layout *l)
{
    return l->version == CGROUP_V2 ? "memory.max" : "memory.limit_in_bytes";
}

/* Depth-first search for a directory whose name contains `id`; returns its
 * path relative to `base` (new string) or NULL. */
static char *search(const char *base, const char *rel, const char *id, int depth)
{
    char *dir = rel[0] ? path_join(base, rel) : xstrdup(base);
    DIR *d = opendir(dir);
    free(dir);
    if (!d)
        return NULL;
    char *found = NULL;
    struct dirent *de;
    while (!found && (de = readdir(d))) {
        if (de->d_name[0] == '.' || (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN))
            continue;
        char *sub = rel[0] ? path_join(rel, de->d_name) : xstrdup(de->d_name);
        if (de->d_type == DT_UNKNOWN) {
            char *full = path_join(base, sub);
            struct stat st;
            int isdir = stat(full, &st) == 0 && S_ISDIR(st.st_mode);
            free(full);
            if (!isdir) {
                free(sub);
                continue;
            }
        }
        if (strstr(de->d_name, id))
            found = sub;
        else {
            if (depth > 1)
                found = search(base, sub, id, depth - 1);
            free(sub);
        }
    }
    closedir(d);
    return found;
}

int cgroup_find(const struct cgroup_layout *l, const char *id, char **cpu_dir, char **mem_dir)
{
    char cand[2][128];
    snprintf(cand[0], sizeof cand[0], "docker/%s", id);
    snprintf(cand[1], sizeof cand[1], "system.slice/docker-%s.scope", id);
    char *rel = NULL;
    for (int i = 0; i < 2 && !rel; i++) {
        char *c = path_join(l->cpu_root, cand[i]);
        if (exists(c, cgroup_cpu_file(l)))
            rel = xstrdup(cand[i]);
        free(c);
    }
    if (!rel)
        rel = search(l->cpu_root, "", id, SEARCH_DEPTH);
    if (!rel)
        return -ENOENT;
    *cpu_dir = path_join(l->cpu_root, rel);
    *mem_dir = path_join(l->mem_root, rel);
    free(rel);
    return 0;
}

int cgroup_parse_cpu(const struct cgroup_layout *l, const char *text, unsigned long long *ns)
{
    unsigned long long v;
    if (l->version == CGROUP_V2) {
        if (find_key_u64(text, "usage_usec", &v) < 0)
            return -EINVAL;
        *ns = v * 1000;
        return 0;
    }
    if (parse_u64(text, &v) < 0)
        return -EINVAL;
    *ns = v;
    return 0;
}

int cgroup_parse_inactive_file(const struct cgroup_layout *l, const char *text,
                               unsigned long long *bytes)
{
    const char *key = l->version == CGROUP_V2 ? "inactive_file" : "total_inactive_file";
    return find_key_u64(text, key, bytes) < 0 ? -EINVAL : 0;
}
