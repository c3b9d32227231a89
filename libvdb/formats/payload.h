/* Values in a payload (a JSON object's text) along a dotted path, and the JSON number and
 * string comparisons that filters and payload indexes share (payload.c). */
#ifndef VDB_FORMATS_PAYLOAD_H
#define VDB_FORMATS_PAYLOAD_H

#include <stddef.h>

/* Payloads nest at most this deep (what ingest accepts, VJ_MAX_DEPTH). */
#define VDB_PAYLOAD_MAX_DEPTH 64

/* One part of a dotted path: an object member's name (decoded bytes). */
typedef struct vdb_payload_part {
	const char *s;
	size_t len;
} vdb_payload_part;

/* Calls fn with the JSON text of each value at the path parts[0..nparts) of a payload
 * (NULL/0: a payload of {}), under the rules at the top of payload.c. fn returns 0 to go
 * on, 1 to stop (found), -1 to stop with an error. With `presence`, fn is not called: the
 * walk stops (1) at the first value there is at the path's end, whatever it is. Returns 1
 * when the walk stopped, 0 when every value was visited, -1 when the payload is damaged or
 * fn returned -1. */
int vdb_payload_walk(const char *payload, size_t len, const vdb_payload_part *parts,
		     size_t nparts, int presence, int (*fn)(void *ctx, const char *v, size_t n),
		     void *ctx);

/* The same for a dotted path given as text ("meta.source"), visiting every scalar value.
 * 0, or -1 when the payload or the path is damaged. */
int vdb_payload_values(const char *payload, size_t len, const char *path, size_t plen,
		       void (*fn)(void *ctx, const char *v, size_t n), void *ctx);

/* A JSON number token as a double (as filters compare numbers). 0, or -1 if it is not one. */
int vdb_json_number(const char *s, size_t n, double *out);

/* Whether the decoded bytes of the JSON string s[0..n) (quotes included) are want[0..wlen). */
int vdb_json_string_equals(const char *s, size_t n, const char *want, size_t wlen);

/* <0, 0, >0 comparing the decoded JSON string s[0..n) with want; *bad set on damage. */
int vdb_json_string_compare(const char *s, size_t n, const char *want, size_t wlen, int *bad);

#endif
