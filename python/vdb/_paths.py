# Where libvdb is: its soname, found on the library path, in the source tree; `meson install`
# writes the installed library's full path here instead. VDB_LIBRARY overrides both.
LIBRARY = "libvdb.so.0"
