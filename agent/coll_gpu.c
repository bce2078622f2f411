/* NVIDIA GPUs through NVML, loaded at run time with dlopen so that nothing
 * NVIDIA is needed to build or run the agent: without libnvidia-ml.so.1 (or
 * without a GPU) this collector is simply not there.
 *
 * Host metrics: gpu<N>_util (percent of time a kernel was running, as
 * nvidia-smi's "GPU-Util") and gpu<N>_mem (percent of the GPU's memory in
 * use). Per container: gpu_mem_bytes, the GPU memory held by the container's
 * processes (summed over GPUs), found by matching each GPU process's
 * /proc/<pid>/cgroup against the containers of this round.
 *
 * The structures and entry points below follow NVML's public nvml.h; only
 * the few used are declared. */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector.h"
#include "log.h"
#include "pfile.h"
#include "text.h"
#include "xalloc.h"

#define NVML_SUCCESS 0
#define NVML_ERROR_INSUFFICIENT_SIZE 7
#define NVML_VALUE_NOT_AVAILABLE (~0ULL)
#define MAX_GPUS 64

typedef void *nvml_device;
struct nvml_utilization {
    unsigned int gpu, memory;
};
struct nvml_memory {
    unsigned long long total, free, used;
};
/* nvmlProcessInfo_t as the _v2/_v3 entry points fill it; the original entry
 * point fills only the first two fields (a 16-byte stride). */
struct nvml_process {
    unsigned int pid;
    unsigned long long used_gpu_memory;
    unsigned int gpu_instance_id, compute_instance_id;
};
struct nvml_process_v1 {
    unsigned int pid;
    unsigned long long used_gpu_memory;
};

struct gpu_state {
    void *lib;
    int (*shutdown)(void);
    int (*utilization)(nvml_device, struct nvml_utilization *);
    int (*memory)(nvml_device, struct nvml_memory *);
    int (*processes)(nvml_device, unsigned int *, void *);
    size_t stride;
    unsigned ndev;
    nvml_device dev[MAX_GPUS];
    char *proc_root;
    unsigned char *procs;
    unsigned int procs_cap;
    struct buf text;
};

static void *sym(void *lib, const char *a, const char *b)
{
    void *f = dlsym(lib, a);
    return f || !b ? f : dlsym(lib, b);
}

static int gpu_create(const struct agent_paths *paths, void **state)
{
    if (!paths->nvml || !paths->nvml[0])
        return -ENOENT;
    void *lib = dlopen(paths->nvml, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        log_debug("agent", "gpu: no NVML (%s): GPU metrics are off", dlerror());
        return -ENOENT;
    }
    struct gpu_state *s = xcalloc(1, sizeof *s);
    s->lib = lib;
    int (*init)(void) = (int (*)(void))sym(lib, "nvmlInit_v2", "nvmlInit");
    int (*count)(unsigned int *) =
        (int (*)(unsigned int *))sym(lib, "nvmlDeviceGetCount_v2", "nvmlDeviceGetCount");
    int (*handle)(unsigned int, nvml_device *) = (int (*)(unsigned int, nvml_device *))sym(
        lib, "nvmlDeviceGetHandleByIndex_v2", "nvmlDeviceGetHandleByIndex");
    s->shutdown = (int (*)(void))sym(lib, "nvmlShutdown", NULL);
    s->utilization = (int (*)(nvml_device, struct nvml_utilization *))sym(
        lib, "nvmlDeviceGetUtilizationRates", NULL);
    s->memory =
        (int (*)(nvml_device, struct nvml_memory *))sym(lib, "nvmlDeviceGetMemoryInfo", NULL);
    s->stride = sizeof(struct nvml_process);
    s->processes = (int (*)(nvml_device, unsigned int *, void *))sym(
        lib, "nvmlDeviceGetComputeRunningProcesses_v3", "nvmlDeviceGetComputeRunningProcesses_v2");
    if (!s->processes) {
        s->processes = (int (*)(nvml_device, unsigned int *, void *))sym(
            lib, "nvmlDeviceGetComputeRunningProcesses", NULL);
        s->stride = sizeof(struct nvml_process_v1);
    }
    unsigned int n = 0;
    int rc;
    if (!init || !count || !handle || !s->shutdown || !s->utilization || !s->memory) {
        log_warn("agent", "gpu: %s lacks NVML entry points; GPU metrics are off", paths->nvml);
        goto fail;
    }
    if ((rc = init()) != NVML_SUCCESS) {
        log_warn("agent", "gpu: nvmlInit failed (NVML error %d); GPU metrics are off", rc);
        goto fail;
    }
    if (count(&n) != NVML_SUCCESS || n == 0) {
        s->shutdown();
        goto fail;
    }
    for (unsigned int i = 0; i < n && s->ndev < MAX_GPUS; i++) {
        if (handle(i, &s->dev[s->ndev]) == NVML_SUCCESS)
            s->ndev++;
    }
    s->proc_root = xstrdup(paths->proc);
    log_info("agent", "gpu: %u NVIDIA GPU(s) through NVML", s->ndev);
    *state = s;
    return 0;
fail:
    dlclose(lib);
    free(s);
    return -ENOENT;
}

/* Adds `bytes` of GPU memory to the container running `pid`, if any. */
static void attribute(struct gpu_state *s, unsigned int pid, unsigned long long bytes,
                      struct sampleset *out)
{
    char rel[64];
    snprintf(rel, sizeof rel, "%u/cgroup", pid);
    char *path = path_join(s->proc_root, rel);
    struct pfile f;
    pfile_init(&f, path);
    free(path);
    int rc = pfile_read(&f, &s->text);
    pfile_close(&f);
    if (rc < 0)
        return;
    for (size_t i = 1; i < out->n; i++) {
        const char *id = out->s[i].id;
        if (strstr(s->text.p, id)) {
            double have = 0;
            sampleset_get(out, id, "gpu_mem_bytes", &have);
            sampleset_put(out, id, "gpu_mem_bytes", have + (double)bytes);
            return;
        }
    }
}

static void processes(struct gpu_state *s, nvml_device dev, struct sampleset *out)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        unsigned int n = s->procs_cap;
        int rc = s->processes(dev, &n, s->procs_cap ? s->procs : NULL);
        if (rc == NVML_ERROR_INSUFFICIENT_SIZE || (rc == NVML_SUCCESS && n > s->procs_cap)) {
            s->procs_cap = n + 8;
            s->procs = xrealloc(s->procs, s->procs_cap * s->stride);
            continue;
        }
        if (rc != NVML_SUCCESS)
            return;
        for (unsigned int i = 0; i < n; i++) {
            struct nvml_process_v1 p;
            memcpy(&p, s->procs + i * s->stride, sizeof p);
            if (p.used_gpu_memory != NVML_VALUE_NOT_AVAILABLE)
                attribute(s, p.pid, p.used_gpu_memory, out);
        }
        return;
    }
}

static void gpu_collect(void *state, const struct tick *t, struct sampleset *out)
{
    struct gpu_state *s = state;
    for (unsigned i = 0; i < s->ndev; i++) {
        char name[SAMPLE_METRIC_NAME];
        struct nvml_utilization u;
        struct nvml_memory m;
        if (s->utilization(s->dev[i], &u) == NVML_SUCCESS) {
            snprintf(name, sizeof name, "gpu%u_util", i);
            sampleset_put(out, NULL, name, u.gpu);
        }
        if (s->memory(s->dev[i], &m) == NVML_SUCCESS && m.total > 0) {
            snprintf(name, sizeof name, "gpu%u_mem", i);
            sampleset_put(out, NULL, name, 100.0 * (double)m.used / (double)m.total);
        }
        if (s->processes && out->n > 1)
            processes(s, s->dev[i], out);
    }
}

static void gpu_destroy(void *state)
{
    struct gpu_state *s = state;
    s->shutdown();
    dlclose(s->lib);
    free(s->proc_root);
    free(s->procs);
    buf_free(&s->text);
    free(s);
}

const struct collector collector_gpu = {
    .name = "gpu",
    .create = gpu_create,
    .collect = gpu_collect,
    .destroy = gpu_destroy,
};
