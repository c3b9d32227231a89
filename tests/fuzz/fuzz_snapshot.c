/* The snapshot archive reader: the input is an archive (zstd-compressed tar), verified as
 * `vdb-restore --verify` does, and listed as `vdb-restore --list` does. */
#include <stdlib.h>
#include <unistd.h>

#include "fuzz.h"
#include "vdb_admin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	vdb_restore_options o;
	vdb_restore_options_init(&o);
	o.verify_only = 1;
	o.chain_dir = fuzz_dir(); /* an incremental's chain is looked up in an empty directory */
	vdb_restore_stats stats;
	vdb_error err;
	int fd = fuzz_memfd(data, size);
	vdb_restore(fd, "fuzz", NULL, &o, &stats, &err);
	close(fd);
	fd = fuzz_memfd(data, size);
	vdb_text t = {0};
	vdb_snapshot_list(fd, "fuzz", &t, &err);
	vdb_text_free(&t);
	close(fd);
	return 0;
}
