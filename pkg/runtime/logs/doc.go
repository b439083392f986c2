// Package logs stores and reads a container's stdout and stderr in Docker's
// json-file format.
//
// Each line a container prints becomes one JSON object on its own line:
//
//	{"log":"hello\n","stream":"stdout","time":"2024-01-01T00:00:00.000000001Z"}
//
// The keys come in Docker's order and strings are escaped the way Docker
// escapes them, so tools that read Docker's json-file logs read berth's too.
// A line longer than 16 KiB is cut into 16 KiB chunks; every chunk but the
// last has no trailing "\n" in its "log" value, and all chunks carry the time
// of the first.
//
// Unlike Docker, berth rotates by default: when the live file would grow past
// Options.MaxSize it is renamed to PATH.1 (PATH.1 to PATH.2, and so on) and a
// new live file is started; at most Options.MaxFiles files are kept. With
// Options.Compress the rotated files are gzipped to PATH.N.gz.
//
// A Writer is owned by the process that holds the container's output pipes
// (one per container); Read is used by `berth logs`, possibly while the
// Writer is still appending and rotating.
package logs
