/* libFuzzer harness for the CSV trace reader (built with -DFUZZ=ON). */
#include <stddef.h>
#include <stdint.h>

#include "trace.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct trace_opts o;
    struct trace t;
    char err[256];
    trace_opts_default(&o);
    o.interval = 60;
    if (trace_parse((const char *)data, size, "fuzz", &o, &t, err, sizeof err) == 0)
        trace_free(&t);
    o.column_index = 2;
    if (trace_parse((const char *)data, size, "fuzz", &o, &t, err, sizeof err) == 0)
        trace_free(&t);
    return 0;
}
