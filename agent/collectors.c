/* The list of collectors, in the order they run. */
#include "collector.h"

#include <stddef.h>

const struct collector *const collectors[] = {
    &collector_cpu,  &collector_mem,        &collector_disk, &collector_net,
    &collector_load, &collector_containers, &collector_gpu,  NULL,
};
