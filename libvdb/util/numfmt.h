/* Float <-> decimal text conversion for the JSON-facing paths (embedding import/export).
 * Both directions are exact: vdb_fmt_float prints the shortest string that reads back to the
 * same float32 bits, and vdb_parse_float rounds decimal text exactly like strtof, so a
 * float that is exported and re-imported never changes. Neither function allocates or
 * touches global state; both are safe to call from any thread. */
#ifndef VDB_UTIL_NUMFMT_H
#define VDB_UTIL_NUMFMT_H

#include <stddef.h>

#define VDB_FLOAT_FMT_MAX 24 /* buffer size that always suffices, including a NUL */

/* Writes the shortest decimal representation of the finite float `f` that reads back
 * (via strtof, or vdb_parse_float) to exactly the same float32 bits, -0 included ("-0").
 * Among the shortest digit strings, pick the one closest to the exact value of f (ties: even
 * digit). Output is a valid JSON number. Layout follows ECMAScript Number::toString applied to
 * those digits (digits d1..dn, decimal exponent so value = 0.d1..dn * 10^n):
 *   integers up to 21 digits without exponent ("1", "16777216", "100"), plain decimals when
 *   -6 < n <= 21 ("0.1", "0.000001", "123.456"), otherwise exponent form "1e-7", "1.5e+30",
 *   "3.4028235e+38".
 * Writes a NUL terminator; returns the length without the NUL. NaN/Inf: behaviour undefined
 * (callers never pass them; debug builds assert, release builds write "null" like
 * ECMAScript's JSON.stringify). `buf` must hold VDB_FLOAT_FMT_MAX bytes; bytes after the NUL
 * may be overwritten too (the digits are stored in fixed-size chunks). */
size_t vdb_fmt_float(float f, char *buf);

/* Parses a JSON number token s[0..len) (the caller has already checked it matches the JSON
 * number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? ) to the correctly rounded
 * float32 (round-half-even), bit-identical to glibc strtof() in the "C" locale (whatever the
 * process locale is, and errno is left untouched).
 * Returns 0 on success; VDB_NUM_OVERFLOW when the magnitude rounds beyond FLT_MAX (out is not
 * written); values that underflow round to the nearest subnormal or to (signed) zero like
 * strtof and return 0.
 * Never reads outside s[0..len) (the token is NOT NUL-terminated; it is followed by other JSON
 * text), and never allocates, whatever the token length. */
#define VDB_NUM_OVERFLOW 1
int vdb_parse_float(const char *s, size_t len, float *out);

#endif
