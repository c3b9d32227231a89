/* The library's own version, for programs that check which libvdb they run with. */
#include "vdb.h"

const char *vdb_version(void)
{
	return VDB_VERSION_STRING;
}

unsigned vdb_version_number(void)
{
	return VDB_VERSION_NUMBER;
}
