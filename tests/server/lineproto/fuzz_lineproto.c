/* libFuzzer harness of the line protocol parser: any bytes, any of the
 * precisions, one counter state kept across inputs (as the server keeps
 * it), so rates over stale, reset and re-sent readings are exercised too.
 * Built with -DFUZZ=ON (clang); run: fuzz_lineproto -max_total_time=60 */
#include <stdint.h>
#include <string.h>

#include "lineproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const precisions[] = {"", "ns", "us", "ms", "s", "m", "h", "bogus"};
    static struct lineproto_state *st;
    if (!st)
        st = lineproto_state_new();
    if (size == 0)
        return 0;
    struct lineproto_opts o = {precisions[data[0] % 8], 1700000000.0};
    struct ingest_batch b;
    struct lineproto_stats stats;
    char err[512];
    if (lineproto_parse((const char *)data + 1, size - 1, &o, st, &b, &stats, err, sizeof err) ==
        0) {
        for (size_t i = 0; i < b.n; i++) {
            /* Every sample must pass the same rules as the JSON ingest. */
            if (ingest_check_name(NAME_NODE, b.samples[i].node) ||
                ingest_check_name(NAME_METRIC, b.samples[i].metric) ||
                ingest_check_name(NAME_LABEL, b.samples[i].container) ||
                ingest_check_name(NAME_LABEL, b.samples[i].service) ||
                !(b.samples[i].ts >= INGEST_TS_MIN && b.samples[i].ts <= INGEST_TS_MAX))
                __builtin_trap();
        }
        ingest_batch_free(&b);
    } else if (strncmp(err, "unable to parse '", 17) != 0 &&
               strncmp(err, "invalid precision", 17) != 0) {
        __builtin_trap();
    }
    return 0;
}
