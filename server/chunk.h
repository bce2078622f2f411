/* The byte format of a chunk: up to a few hundred points of one series,
 * sorted by time, as one SQLite blob. Pure: bytes in, points out.
 *
 * A blob of exactly n * 16 bytes holds the points as they are in memory
 * (f64 ts, f64 value: what schema version 2 wrote, and the fallback when
 * the encoding would not be smaller). Any other length is the encoding:
 *
 *   byte 0   format, 1
 *   byte 1   ts scale k: ts = m / 10^k with m an integer (0..9), or 255
 *   byte 2   value scale, the same way
 *   then the n timestamps, then the n values, each column either
 *     scaled:  zigzag LEB128 of the first integer, then of the first
 *              difference, then (timestamps only) of each difference of
 *              differences; values keep plain differences
 *     255:     each f64's bits XORed with the previous one's, written as one
 *              byte (leading zero bytes << 4 | trailing zero bytes) and the
 *              bytes between them, most significant first
 *
 * A scale is used only when every point converts back to the very same bits,
 * so decoding is exact. Regular timestamps take one byte, a percentage with
 * two decimals about two. */
#ifndef SC_CHUNK_H
#define SC_CHUNK_H

#include <stddef.h>
#include <stdint.h>

struct chunk_point {
    double ts;
    double value;
};

/* Encodes pts[0..n) into out, which has room for n * 16 bytes; returns the
 * length written (n * 16 when the points are stored as they are). */
size_t chunk_encode(const struct chunk_point *pts, size_t n, uint8_t *out);

/* Decodes a blob of len bytes that holds n points into out[0..n).
 * Returns 0, or -1 when the blob is not a valid chunk of n points. */
int chunk_decode(const uint8_t *blob, size_t len, size_t n, struct chunk_point *out);

#endif
