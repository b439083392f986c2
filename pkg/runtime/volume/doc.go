// Package volume keeps berth's named volumes: directories on the host that
// outlive containers and are bind-mounted into them, as docker's "local"
// volume driver does.
//
// # Layout
//
//	DIR/.lock                 flock serialising create, remove and prune
//	DIR/<name>/volume.json    the volume's metadata (Volume)
//	DIR/<name>/_data/         the data: the bind-mount source (Mountpoint)
//	DIR/.tmp-*  DIR/.rm-*     volumes being created or removed
//	DIR/<name>/.seed-*        a tree being copied in by Seed
//
// Volume names never start with a dot, so the dotted entries cannot clash
// with a volume.
//
// # Guarantees
//
//   - Create builds the whole volume directory under a temporary name and
//     renames it into place, so a crash leaves either no volume or a
//     complete one. Remove renames the directory away before deleting it,
//     so a volume is never half removed. Leftovers of killed processes are
//     deleted by the next Open, Create or Prune.
//   - Parallel berth processes may share the directory: Create, Remove and
//     Prune hold an exclusive flock on DIR/.lock, and Seed holds one on the
//     volume's own directory.
//   - volume.json is written atomically (temporary file, fsync, rename).
//
// Which containers use a volume is known only to the caller, which passes
// an InUseFunc to the operations that need it.
package volume
