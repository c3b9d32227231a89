/* Shared helpers of the fuzz targets (libFuzzer's LLVMFuzzerTestOneInput, built by
 * `scripts/fuzz` with clang, and replayed over tests/fuzz/corpus/<target> by replay.c in the
 * normal test suite). */
#ifndef VDB_FUZZ_H
#define VDB_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A readable descriptor holding exactly data (an anonymous memory file), positioned at 0. */
int fuzz_memfd(const uint8_t *data, size_t size);

/* A private directory for this process, created once (removed at exit). */
const char *fuzz_dir(void);

/* Writes data as dir/name (replacing it). */
void fuzz_write_file(const char *dir, const char *name, const uint8_t *data, size_t size);

#endif
