/* Strict RFC 8259 JSON scanner for the JSON-lines ingest path.
 *
 * The record parser walks each line's top-level object itself with these primitives and hands
 * payload values to vj_value, which validates them (UTF-8, depth, duplicate keys) and copies
 * them minified, numbers kept as written. The text is never assumed NUL-terminated and is
 * never read past r->end.
 *
 * Errors: every function returns -1 on failure and records the FIRST error in r->err and
 * r->err_off (later failures do not overwrite it). The offset points at the start of the
 * offending token or sequence: the backslash of a bad escape, the lead byte of an ill-formed
 * UTF-8 sequence, the opening quote of a duplicate key, the bracket that nests too deep, the
 * byte where a digit (also a \u hex digit) or punctuation was expected, or the end of the
 * text when it ends too early. After a failure the cursor position is unspecified: stop parsing. */
#ifndef VDB_FORMATS_JSON_H
#define VDB_FORMATS_JSON_H

#include <stddef.h>

#include "../util/buf.h"

#define VJ_MAX_DEPTH 64

typedef struct vj_reader {
	const char *start; /* beginning of the whole text (offsets in errors are relative to it) */
	const char *p;     /* cursor */
	const char *end;   /* one past the last byte */
	char err[160];     /* first error, e.g. "invalid UTF-8: ...", "duplicate key \"id\"" */
	size_t err_off;    /* byte offset of the error from start */
} vj_reader;

/* Starts reading s[0..len) (need not be NUL-terminated; s may be NULL when len is 0) and
 * clears any previous error. */
void vj_init(vj_reader *r, const char *s, size_t len);

/* Skips JSON whitespace (space, \t, \n, \r). */
void vj_skip_ws(vj_reader *r);

/* After optional whitespace, expects the single character c and consumes it.
 * 0 on success, -1 with r->err set ("expected ':', found '}'", "unexpected end of line
 * (expected ':')") otherwise. */
int vj_expect(vj_reader *r, char c);

/* Peeks the next non-whitespace byte (skipping whitespace) as an unsigned char value, or -1
 * at end of input. Never fails. */
int vj_peek(vj_reader *r);

/* Parses a string at the cursor (after whitespace) and appends its DECODED bytes to out
 * (escapes resolved, \uXXXX including surrogate pairs -> UTF-8; lone surrogates are an error;
 * raw control characters < 0x20 are an error; the raw bytes must be valid UTF-8: no overlongs,
 * no surrogates encoded in UTF-8, nothing above U+10FFFF). out may be NULL to only validate.
 * On failure out is restored to its previous length. Decoded keys may contain NUL bytes
 * (from \u0000): use the length, not strlen. */
int vj_string(vj_reader *r, vdb_buf *out);

/* Parses a number token at the cursor (after whitespace) per the JSON grammar
 * -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? and returns its span (not converted; big
 * integers and exact spelling survive). Rejects "01", "1.", ".5", "+1", "NaN", "Infinity",
 * "-". tok and toklen may be NULL (to only validate, or to get the error message); they are
 * left untouched on failure. The byte after the token is not checked: "1x" yields "1" and the
 * caller's next expectation (',' or ']') reports the 'x'. */
int vj_number(vj_reader *r, const char **tok, size_t *toklen);

/* Validates one complete JSON value at the cursor (after whitespace): objects, arrays,
 * strings, numbers, true/false/null, nesting at most VJ_MAX_DEPTH levels counted from this
 * value (so "[[...64 deep...]]" passes and 65 fails), no duplicate keys in any object (keys
 * compared after decoding escapes, so "a" and "\u0061" clash; O(n log n) worst case in the
 * number of keys), valid UTF-8 everywhere. If min is non-NULL, appends a minified copy (no
 * insignificant whitespace; strings and numbers copied byte-for-byte as written, escapes
 * untouched). On error, min may contain a partial copy (the caller truncates it back).
 * Allocates only scratch memory for the key check, freed before returning. */
int vj_value(vj_reader *r, vdb_buf *min);

/* Skips trailing whitespace and checks that nothing follows: -1 with "trailing characters
 * after the JSON value" otherwise. */
int vj_end(vj_reader *r);

/* Appends s[0..len) to out as a JSON string literal with quotes, escaping '"', '\\' and
 * control characters (\n, \t, \r, \b, \f, others as \u00XX); other bytes (already valid
 * UTF-8) are copied as is. -1 on ENOMEM, with out left as it was. */
int vj_write_string(vdb_buf *out, const char *s, size_t len);

/* Checks that s[0..len) is valid UTF-8 (same rules as vj_string); returns the offset of the
 * first byte of the first ill-formed or truncated sequence, or len when all is valid, so the
 * result is always the length of the longest valid prefix made of whole characters. */
size_t vj_utf8_valid_prefix(const char *s, size_t len);

#endif
