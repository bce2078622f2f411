/* A stand-in for NVIDIA's libnvidia-ml.so, for the gpu_fake fixture: this
 * machine has no GPU, and NVML is a boundary the agent only dlopens. It
 * implements the entry points coll_gpu.c uses, with nvml.h's signatures,
 * over fixed data: two GPUs; process 4242 holds 512 MiB on GPU 0 and
 * 256 MiB on GPU 1, process 777 holds 100 MiB on GPU 0, and process 4343's
 * memory on GPU 1 is "not available". It also answers "insufficient size"
 * when the caller's array is short, as the real library does. */
#include <string.h>

#define NVML_SUCCESS 0
#define NVML_ERROR_INVALID_ARGUMENT 2
#define NVML_ERROR_UNINITIALIZED 1
#define NVML_ERROR_INSUFFICIENT_SIZE 7

struct device {
    int index;
};
struct utilization {
    unsigned int gpu, memory;
};
struct memory {
    unsigned long long total, free, used;
};
struct process {
    unsigned int pid;
    unsigned long long used;
    unsigned int gpu_instance, compute_instance;
};

static struct device devices[2] = {{0}, {1}};
static int initialized;

int nvmlInit_v2(void)
{
    initialized = 1;
    return NVML_SUCCESS;
}

int nvmlShutdown(void)
{
    initialized = 0;
    return NVML_SUCCESS;
}

int nvmlDeviceGetCount_v2(unsigned int *count)
{
    if (!initialized)
        return NVML_ERROR_UNINITIALIZED;
    *count = 2;
    return NVML_SUCCESS;
}

int nvmlDeviceGetHandleByIndex_v2(unsigned int i, struct device **dev)
{
    if (i >= 2)
        return NVML_ERROR_INVALID_ARGUMENT;
    *dev = &devices[i];
    return NVML_SUCCESS;
}

int nvmlDeviceGetUtilizationRates(struct device *dev, struct utilization *u)
{
    u->gpu = dev->index == 0 ? 37 : 80;
    u->memory = 10;
    return NVML_SUCCESS;
}

int nvmlDeviceGetMemoryInfo(struct device *dev, struct memory *m)
{
    m->total = 4ULL << 30;
    m->used = dev->index == 0 ? 1ULL << 30 : 3ULL << 30;
    m->free = m->total - m->used;
    return NVML_SUCCESS;
}

int nvmlDeviceGetComputeRunningProcesses_v3(struct device *dev, unsigned int *count,
                                            struct process *out)
{
    struct process gpu0[] = {{4242, 512ULL << 20, 0, 0}, {777, 100ULL << 20, 0, 0}};
    struct process gpu1[] = {{4242, 256ULL << 20, 0, 0}, {4343, ~0ULL, 0, 0}};
    struct process *p = dev->index == 0 ? gpu0 : gpu1;
    unsigned int n = 2;
    if (*count < n || !out) {
        *count = n;
        return NVML_ERROR_INSUFFICIENT_SIZE;
    }
    memcpy(out, p, n * sizeof *p);
    *count = n;
    return NVML_SUCCESS;
}
