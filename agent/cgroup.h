/* Reading a container's CPU and memory from its cgroup, v1 or v2.
 *
 *                 v1 (this project's CI machine)     v2 (unified)
 * CPU used        cpuacct/<cg>/cpuacct.usage (ns)    <cg>/cpu.stat usage_usec
 * memory used     memory/<cg>/memory.usage_in_bytes  <cg>/memory.current
 * ...minus cache  memory.stat total_inactive_file    memory.stat inactive_file
 * limit           memory.limit_in_bytes              memory.max ("max": none)
 *
 * "Used" memory follows `docker stats`: usage minus inactive file cache,
 * which the kernel reclaims before it would fail an allocation. */
#ifndef SCALECAST_AGENT_CGROUP_H
#define SCALECAST_AGENT_CGROUP_H

enum cgroup_version { CGROUP_V1 = 1, CGROUP_V2 = 2 };

struct cgroup_layout {
    enum cgroup_version version;
    char *cpu_root; /* v1: the cpuacct hierarchy; v2: the unified root */
    char *mem_root; /* v1: the memory hierarchy; v2: the unified root */
};

/* Finds the hierarchies under `root` (normally /sys/fs/cgroup). Returns 0,
 * or -ENOENT when neither a v2 root nor v1 cpuacct and memory hierarchies
 * are there. */
int cgroup_detect(const char *root, struct cgroup_layout *out /* out */);
void cgroup_layout_free(struct cgroup_layout *l);

/* Finds the cgroup of container `id` (64 hex): docker/<id> (cgroupfs
 * driver), system.slice/docker-<id>.scope (systemd driver), else a directory
 * named after the id anywhere below (a custom --cgroup-parent). Returns 0
 * with the CPU and memory directories (new strings), or -ENOENT. */
int cgroup_find(const struct cgroup_layout *l, const char *id, char **cpu_dir /* out */,
                char **mem_dir /* out */);

/* File names, relative to the directories above. */
const char *cgroup_cpu_file(const struct cgroup_layout *l);
const char *cgroup_mem_file(const struct cgroup_layout *l);
const char *cgroup_limit_file(const struct cgroup_layout *l);
#define CGROUP_STAT_FILE "memory.stat"

/* Parses the CPU file's text into nanoseconds of CPU used. 0 or -EINVAL. */
int cgroup_parse_cpu(const struct cgroup_layout *l, const char *text,
                     unsigned long long *ns /* out */);
/* Parses memory.stat's text for the inactive file cache, in bytes. 0 or
 * -EINVAL. */
int cgroup_parse_inactive_file(const struct cgroup_layout *l, const char *text,
                               unsigned long long *bytes /* out */);

#endif
