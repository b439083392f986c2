package logs

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	units "github.com/docker/go-units"

	"github.com/berthsh/berth/pkg/errdefs"
)

const (
	// DefaultMaxSize is the size at which the live log file is rotated when
	// Options.MaxSize is 0.
	DefaultMaxSize int64 = 10 << 20
	// DefaultMaxFiles is the number of files kept (the live file included)
	// when Options.MaxFiles is 0.
	DefaultMaxFiles = 5
	// NoRotation as Options.MaxSize lets the live file grow without limit.
	NoRotation int64 = -1

	// maxChunk is the longest "log" value written: longer lines are split,
	// as Docker does.
	maxChunk = 16 * 1024
)

// Options configures a Writer. The zero value means: rotate at 10 MiB, keep
// 5 files, do not compress.
type Options struct {
	// MaxSize is the size in bytes past which the live file is rotated.
	// 0 means DefaultMaxSize; NoRotation (-1) disables rotation.
	MaxSize int64
	// MaxFiles is how many files are kept, the live file included. 0 means
	// DefaultMaxFiles. With 1 the live file is simply started afresh.
	MaxFiles int
	// Compress gzips rotated files (PATH.N.gz) in the background.
	Compress bool

	// OnError, if set, is told about failures to write, rotate or compress
	// the log. Output that cannot be written is dropped (see
	// Writer.Dropped) so that the container never blocks on its log; a run
	// of consecutive write failures is reported once. OnError may be called
	// from a background goroutine and must not call back into the Writer.
	OnError func(error)
	// Now returns the current time; nil means time.Now. Tests set it.
	Now func() time.Time
}

func (o Options) normalize() (Options, error) {
	switch {
	case o.MaxSize == 0:
		o.MaxSize = DefaultMaxSize
	case o.MaxSize < 0 && o.MaxSize != NoRotation:
		return o, fmt.Errorf("log max size %d: must be positive, 0 for the default or -1 for no rotation: %w", o.MaxSize, errdefs.ErrInvalidArgument)
	}
	switch {
	case o.MaxFiles == 0:
		o.MaxFiles = DefaultMaxFiles
	case o.MaxFiles < 0:
		return o, fmt.Errorf("log max files %d: must be at least 1: %w", o.MaxFiles, errdefs.ErrInvalidArgument)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o, nil
}

// Log option names accepted by ParseOptions (Docker's json-file names).
const (
	OptMaxSize  = "max-size"
	OptMaxFile  = "max-file"
	OptCompress = "compress"
)

// ParseOptions turns Docker-style log options (`--log-opt max-size=10m
// --log-opt max-file=3`, compose `logging.options`) into Options.
//
// max-size takes a size as Docker's json-file driver reads it
// (go-units FromHumanSize: "10m" = 10,000,000 bytes, "10MiB" = 10 MiB,
// "512k", "1g", plain bytes), or "-1" for no rotation. max-file is a count
// of at least 1, compress a boolean. Anything else is an error wrapping
// errdefs.ErrInvalidArgument that names the option.
func ParseOptions(m map[string]string) (Options, error) {
	var o Options
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := strings.TrimSpace(m[k])
		switch k {
		case OptMaxSize:
			if v == "-1" {
				o.MaxSize = NoRotation
				continue
			}
			n, err := units.FromHumanSize(v)
			if err != nil || n <= 0 {
				return Options{}, fmt.Errorf("log option %s=%q: want a positive size such as 10m or 512k, or -1 for no rotation: %w", k, m[k], errdefs.ErrInvalidArgument)
			}
			o.MaxSize = n
		case OptMaxFile:
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return Options{}, fmt.Errorf("log option %s=%q: want a whole number of files, at least 1: %w", k, m[k], errdefs.ErrInvalidArgument)
			}
			o.MaxFiles = n
		case OptCompress:
			b, err := strconv.ParseBool(v)
			if err != nil {
				return Options{}, fmt.Errorf("log option %s=%q: want true or false: %w", k, m[k], errdefs.ErrInvalidArgument)
			}
			o.Compress = b
		default:
			return Options{}, fmt.Errorf("unknown log option %q (berth supports %s, %s and %s): %w", k, OptMaxSize, OptMaxFile, OptCompress, errdefs.ErrInvalidArgument)
		}
	}
	if o.Compress && (o.MaxFiles == 1 || o.MaxSize == NoRotation) {
		return Options{}, fmt.Errorf("log option %s=true needs rotation: %s must be at least 2 and %s not -1: %w", OptCompress, OptMaxFile, OptMaxSize, errdefs.ErrInvalidArgument)
	}
	return o, nil
}
