package runtime

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"unicode"
	"unicode/utf8"

	units "github.com/docker/go-units"

	"github.com/berthsh/berth/pkg/errdefs"
	"github.com/berthsh/berth/pkg/runtime/volume"
)

// This file parses docker's option strings (docker run flags, and the same
// strings in compose files) into this package's types. Every error wraps
// errdefs.ErrInvalidArgument (or errdefs.ErrNotImplemented for a form
// docker accepts that berth does not support) and quotes the value.

// Mount types accepted in MountSpec.Type besides MountTypeBind and
// MountTypeTmpfs.
const MountTypeVolume = "volume"

func optErrorf(format string, a ...any) error {
	return fmt.Errorf(format+": %w", append(a, errdefs.ErrInvalidArgument)...)
}

func optUnsupportedf(format string, a ...any) error {
	return fmt.Errorf(format+": %w", append(a, errdefs.ErrNotImplemented)...)
}

// ParsePortSpecs parses docker's -p values,
// [IP:][HOST_PORT:]CONTAINER_PORT[/PROTO], into port publications. Ports
// may be ranges ("8000-8002:9000-9002", or "8000-8002" for any host
// ports), IP may be an IPv6 address in brackets ("[::1]:8080:80"), and
// PROTO is tcp (the default) or udp. A missing or zero host port means
// any free port.
func ParsePortSpecs(list []string) ([]PortSpec, error) {
	var out []PortSpec
	for _, s := range list {
		ps, err := parsePortSpec(s)
		if err != nil {
			return nil, err
		}
		out = append(out, ps...)
	}
	return out, nil
}

func parsePortSpec(raw string) ([]PortSpec, error) {
	bad := func(why string) error {
		return optErrorf("invalid port publication %q: %s (want [IP:][HOST_PORT:]CONTAINER_PORT[/tcp|udp])", raw, why)
	}
	s := strings.TrimSpace(raw)
	if s == "" {
		return nil, bad("empty")
	}
	proto := "tcp"
	if i := strings.LastIndex(s, "/"); i >= 0 {
		proto = strings.ToLower(s[i+1:])
		s = s[:i]
	}
	switch proto {
	case "tcp", "udp":
	case "sctp":
		return nil, optUnsupportedf("port publication %q: sctp is not supported", raw)
	default:
		return nil, bad(fmt.Sprintf("unknown protocol %q", proto))
	}
	var ip, host, ctr string
	parts := strings.Split(s, ":")
	n := len(parts)
	switch n {
	case 1:
		ctr = parts[0]
	case 2:
		host, ctr = parts[0], parts[1]
	default:
		ip, host, ctr = strings.Join(parts[:n-2], ":"), parts[n-2], parts[n-1]
	}
	if ip != "" {
		bracketed := strings.HasPrefix(ip, "[") && strings.HasSuffix(ip, "]")
		if bracketed {
			ip = ip[1 : len(ip)-1]
		}
		addr := net.ParseIP(ip)
		if addr == nil {
			return nil, bad(fmt.Sprintf("invalid IP address %q", ip))
		}
		ip = addr.String()
	}
	cLo, cHi, err := parsePortRange(ctr)
	if err != nil {
		return nil, bad(fmt.Sprintf("container port: %v", err))
	}
	if cLo == 0 {
		return nil, bad("container port must not be 0")
	}
	var hLo, hHi uint16
	if host != "" {
		if hLo, hHi, err = parsePortRange(host); err != nil {
			return nil, bad(fmt.Sprintf("host port: %v", err))
		}
	}
	count := int(cHi) - int(cLo) + 1
	hostRange := host != "" && hHi != hLo
	switch {
	case hostRange && count == 1:
		return nil, optUnsupportedf("port publication %q: a host port range for a single container port is not supported; give one host port", raw)
	case hostRange && int(hHi)-int(hLo)+1 != count:
		return nil, bad("the host and container port ranges differ in length")
	case host != "" && !hostRange && count > 1 && hLo != 0:
		return nil, bad("a single host port for a container port range")
	}
	out := make([]PortSpec, 0, count)
	for i := range count {
		p := PortSpec{HostIP: ip, ContainerPort: cLo + uint16(i), Proto: proto}
		if hLo != 0 {
			p.HostPort = hLo + uint16(i)
		}
		out = append(out, p)
	}
	return out, nil
}

// parsePortRange parses "80" or "8000-8002".
func parsePortRange(s string) (lo, hi uint16, err error) {
	a, b, isRange := strings.Cut(s, "-")
	lo, err = parsePort(a)
	if err != nil {
		return 0, 0, err
	}
	if !isRange {
		return lo, lo, nil
	}
	if hi, err = parsePort(b); err != nil {
		return 0, 0, err
	}
	if hi < lo {
		return 0, 0, fmt.Errorf("range %q ends before it starts", s)
	}
	return lo, hi, nil
}

func parsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		return 0, fmt.Errorf("%q is not a port number (0-65535)", s)
	}
	return uint16(n), nil
}

// ParseMountSpecs parses the mount flags of docker run, in this order:
// -v/--volume values (see ParseVolume), --mount values (ParseMount) and
// --tmpfs values (ParseTmpfs). Two mounts on the same target are an error.
func ParseMountSpecs(volumes, mounts, tmpfs []string) ([]MountSpec, error) {
	var out []MountSpec
	seen := map[string]string{}
	add := func(raw string, m MountSpec, err error) error {
		if err != nil {
			return err
		}
		if prev, ok := seen[m.Target]; ok {
			return optErrorf("duplicate mount point %s (from %q and %q)", m.Target, prev, raw)
		}
		seen[m.Target] = raw
		out = append(out, m)
		return nil
	}
	for _, v := range volumes {
		m, err := ParseVolume(v)
		if err := add(v, m, err); err != nil {
			return nil, err
		}
	}
	for _, v := range mounts {
		m, err := ParseMount(v)
		if err := add(v, m, err); err != nil {
			return nil, err
		}
	}
	for _, v := range tmpfs {
		m, err := ParseTmpfs(v)
		if err := add(v, m, err); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// propagationModes are the mount propagation options docker accepts.
var propagationModes = map[string]bool{
	"shared": true, "rshared": true, "slave": true, "rslave": true, "private": true, "rprivate": true,
}

// isHostPath reports whether a -v source is a host path rather than a
// volume name: an absolute path or one starting with ".", as the docker
// CLI decides.
func isHostPath(s string) bool {
	return strings.HasPrefix(s, "/") || strings.HasPrefix(s, ".")
}

// absHostPath makes a bind source absolute (relative to the working
// directory) and clean.
func absHostPath(raw, src string) (string, error) {
	if filepath.IsAbs(src) {
		return filepath.Clean(src), nil
	}
	abs, err := filepath.Abs(src)
	if err != nil {
		return "", optErrorf("mount %q: resolve source %q: %v", raw, src, err)
	}
	return abs, nil
}

// checkTarget validates a mount target and returns it cleaned.
func checkTarget(raw, target string) (string, error) {
	if target == "" {
		return "", optErrorf("invalid mount %q: no target path in the container", raw)
	}
	if !path.IsAbs(target) {
		return "", optErrorf("invalid mount %q: target %q must be an absolute path in the container", raw, target)
	}
	target = path.Clean(target)
	if target == "/" {
		return "", optErrorf("invalid mount %q: the target must not be '/'", raw)
	}
	return target, nil
}

// ParseVolume parses a -v/--volume value: SRC:DST[:OPTS] where SRC is a
// host path (absolute, or starting with "." and made absolute) for a bind
// mount or a volume name, or DST alone for an anonymous volume. OPTS is a
// comma-separated list of ro or rw, a propagation mode (bind mounts:
// shared, rshared, slave, rslave, private, rprivate), nocopy (volumes: do
// not seed the volume from the image), and SELinux labels z/Z and
// consistency modes, which are accepted and ignored.
func ParseVolume(raw string) (MountSpec, error) {
	bad := func(why string) error {
		return optErrorf("invalid volume specification %q: %s (want [SRC:]DST[:OPTS])", raw, why)
	}
	parts := strings.Split(raw, ":")
	var src, dst, mode string
	switch len(parts) {
	case 1:
		dst = parts[0]
	case 2:
		if isVolumeMode(parts[1]) {
			return MountSpec{}, bad("an anonymous volume cannot have options")
		}
		src, dst = parts[0], parts[1]
	case 3:
		src, dst, mode = parts[0], parts[1], parts[2]
	default:
		return MountSpec{}, bad("too many colons")
	}
	if len(parts) > 1 && src == "" {
		return MountSpec{}, bad("empty source")
	}
	target, err := checkTarget(raw, dst)
	if err != nil {
		return MountSpec{}, err
	}
	m := MountSpec{Type: MountTypeVolume, Target: target}
	if src != "" {
		if isHostPath(src) {
			m.Type = MountTypeBind
			if m.Source, err = absHostPath(raw, src); err != nil {
				return MountSpec{}, err
			}
		} else {
			if err := volume.ValidateName(src); err != nil {
				return MountSpec{}, fmt.Errorf("invalid volume specification %q: %w", raw, err)
			}
			m.Source = src
		}
	}
	if mode == "" {
		return m, nil
	}
	var rw, prop, label bool
	for _, o := range strings.Split(mode, ",") {
		switch {
		case o == "ro" || o == "rw":
			if rw {
				return MountSpec{}, bad("ro and rw given twice")
			}
			rw = true
			m.ReadOnly = o == "ro"
		case propagationModes[o]:
			if m.Type != MountTypeBind {
				return MountSpec{}, bad(fmt.Sprintf("propagation %q applies to bind mounts only", o))
			}
			if prop {
				return MountSpec{}, bad("more than one propagation mode")
			}
			prop = true
			m.Options = append(m.Options, o)
		case o == "nocopy":
			if m.Type != MountTypeVolume {
				return MountSpec{}, bad("nocopy applies to volumes only")
			}
			m.Options = append(m.Options, o)
		case o == "z" || o == "Z":
			if label {
				return MountSpec{}, bad("more than one SELinux label")
			}
			label = true
		case o == "consistent" || o == "cached" || o == "delegated":
		default:
			return MountSpec{}, bad(fmt.Sprintf("unknown option %q", o))
		}
	}
	return m, nil
}

// isVolumeMode reports whether s is made only of -v options.
func isVolumeMode(s string) bool {
	for _, o := range strings.Split(s, ",") {
		switch {
		case o == "ro", o == "rw", o == "nocopy", o == "z", o == "Z", propagationModes[o],
			o == "consistent", o == "cached", o == "delegated":
		default:
			return false
		}
	}
	return true
}

// ParseMount parses a --mount value: comma-separated KEY=VALUE fields
// (CSV, so a value may be quoted) among type (bind, volume — the default —
// or tmpfs), source/src, target/destination/dst, readonly/ro (alone or
// =true|false), bind-propagation, bind-nonrecursive, volume-nocopy,
// volume-driver (local only), tmpfs-size and tmpfs-mode (octal);
// consistency is accepted and ignored.
func ParseMount(raw string) (MountSpec, error) {
	bad := func(format string, a ...any) error {
		return optErrorf("invalid --mount %q: %s", raw, fmt.Sprintf(format, a...))
	}
	r := csv.NewReader(strings.NewReader(raw))
	fields, err := r.Read()
	if err != nil {
		return MountSpec{}, bad("%v", err)
	}
	m := MountSpec{Type: MountTypeVolume}
	var src, target string
	var size, mode string
	var nocopy, nonrecursive bool
	var prop string
	used := map[string]bool{}
	for _, f := range fields {
		key, val, hasVal := strings.Cut(f, "=")
		key = strings.ToLower(strings.TrimSpace(key))
		boolVal := func() (bool, error) {
			if !hasVal {
				return true, nil
			}
			switch strings.ToLower(val) {
			case "1", "true":
				return true, nil
			case "0", "false":
				return false, nil
			}
			return false, bad("%s=%q: want true or false", key, val)
		}
		if !hasVal {
			switch key {
			case "readonly", "ro", "volume-nocopy", "bind-nonrecursive":
			default:
				return MountSpec{}, bad("field %q must be KEY=VALUE", f)
			}
		}
		switch key {
		case "type":
			switch val {
			case MountTypeBind, MountTypeVolume, MountTypeTmpfs:
				m.Type = val
			case "npipe", "cluster", "image":
				return MountSpec{}, optUnsupportedf("--mount %q: type %q is not supported", raw, val)
			default:
				return MountSpec{}, bad("unknown type %q (want bind, volume or tmpfs)", val)
			}
		case "source", "src":
			src = val
		case "target", "destination", "dst":
			target = val
		case "readonly", "ro":
			if m.ReadOnly, err = boolVal(); err != nil {
				return MountSpec{}, err
			}
		case "bind-propagation":
			if !propagationModes[val] {
				return MountSpec{}, bad("unknown bind-propagation %q", val)
			}
			prop = val
		case "bind-nonrecursive":
			if nonrecursive, err = boolVal(); err != nil {
				return MountSpec{}, err
			}
		case "bind-recursive":
			switch val {
			case "enabled":
				nonrecursive = false
			case "disabled":
				nonrecursive = true
			case "writable", "readonly":
				return MountSpec{}, optUnsupportedf("--mount %q: bind-recursive=%s is not supported", raw, val)
			default:
				return MountSpec{}, bad("unknown bind-recursive %q", val)
			}
		case "volume-nocopy":
			if nocopy, err = boolVal(); err != nil {
				return MountSpec{}, err
			}
		case "volume-driver":
			if val != "local" {
				return MountSpec{}, optUnsupportedf("--mount %q: volume driver %q is not supported (only local)", raw, val)
			}
		case "volume-opt", "volume-label", "volume-subpath":
			return MountSpec{}, optUnsupportedf("--mount %q: %s is not supported", raw, key)
		case "tmpfs-size":
			n, err := ParseMemory(val)
			if err != nil || n <= 0 {
				return MountSpec{}, bad("tmpfs-size %q: want a size such as 64m", val)
			}
			size = "size=" + strconv.FormatInt(n, 10)
		case "tmpfs-mode":
			n, err := strconv.ParseUint(val, 8, 32)
			if err != nil || n > 0o7777 {
				return MountSpec{}, bad("tmpfs-mode %q: want an octal mode such as 1777", val)
			}
			mode = fmt.Sprintf("mode=%o", n)
		case "consistency":
		default:
			return MountSpec{}, bad("unknown field %q", key)
		}
		used[key] = true
	}
	if m.Target, err = checkTarget(raw, target); err != nil {
		return MountSpec{}, err
	}
	for k := range used {
		var ok bool
		switch {
		case strings.HasPrefix(k, "bind-"):
			ok = m.Type == MountTypeBind
		case strings.HasPrefix(k, "volume-"):
			ok = m.Type == MountTypeVolume
		case strings.HasPrefix(k, "tmpfs-"):
			ok = m.Type == MountTypeTmpfs
		default:
			ok = true
		}
		if !ok {
			return MountSpec{}, bad("%s does not apply to type %s", k, m.Type)
		}
	}
	switch m.Type {
	case MountTypeBind:
		if src == "" {
			return MountSpec{}, bad("a bind mount needs a source")
		}
		if m.Source, err = absHostPath(raw, src); err != nil {
			return MountSpec{}, err
		}
		if prop != "" {
			m.Options = append(m.Options, prop)
		}
		if nonrecursive {
			m.Options = append(m.Options, "norbind")
		}
	case MountTypeVolume:
		if src != "" {
			if err := volume.ValidateName(src); err != nil {
				return MountSpec{}, fmt.Errorf("invalid --mount %q: %w", raw, err)
			}
		}
		m.Source = src
		if nocopy {
			m.Options = append(m.Options, "nocopy")
		}
	case MountTypeTmpfs:
		if src != "" {
			return MountSpec{}, bad("a tmpfs mount takes no source")
		}
		for _, o := range []string{size, mode} {
			if o != "" {
				m.Options = append(m.Options, o)
			}
		}
	}
	return m, nil
}

// ParseTmpfs parses a --tmpfs value, PATH[:OPTIONS], where OPTIONS are
// comma-separated tmpfs mount options ("size=64m,mode=1777,exec"); ro
// makes it read-only.
func ParseTmpfs(raw string) (MountSpec, error) {
	dst, opts, _ := strings.Cut(raw, ":")
	target, err := checkTarget(raw, dst)
	if err != nil {
		return MountSpec{}, err
	}
	m := MountSpec{Type: MountTypeTmpfs, Target: target}
	if opts == "" {
		return m, nil
	}
	for _, o := range strings.Split(opts, ",") {
		switch {
		case o == "":
			return MountSpec{}, optErrorf("invalid --tmpfs %q: empty option", raw)
		case o == "ro":
			m.ReadOnly = true
		case o == "rw":
			m.ReadOnly = false
		default:
			m.Options = append(m.Options, o)
		}
	}
	return m, nil
}

// ParseRestartPolicy parses --restart: no, always, unless-stopped or
// on-failure[:MAX_RETRIES]. The empty string is "no".
func ParseRestartPolicy(s string) (RestartPolicy, error) {
	name, count, hasCount := strings.Cut(s, ":")
	p := RestartPolicy{Name: name}
	switch name {
	case "":
		if hasCount {
			return RestartPolicy{}, optErrorf("invalid restart policy %q", s)
		}
		p.Name = RestartNo
	case RestartNo, RestartAlways, RestartUnlessStopped:
		if hasCount {
			return RestartPolicy{}, optErrorf("invalid restart policy %q: maximum retry count applies to on-failure only", s)
		}
	case RestartOnFailure:
		if hasCount {
			n, err := strconv.Atoi(count)
			if err != nil || n < 0 {
				return RestartPolicy{}, optErrorf("invalid restart policy %q: maximum retry count must be a whole number, at least 0", s)
			}
			p.MaximumRetryCount = n
		}
	default:
		return RestartPolicy{}, optErrorf("invalid restart policy %q: want no, always, unless-stopped or on-failure[:MAX_RETRIES]", s)
	}
	return p, nil
}

// ParseUlimit parses a --ulimit value, NAME=SOFT[:HARD] ("nofile=1024:2048";
// HARD defaults to SOFT; -1 means unlimited).
func ParseUlimit(s string) (Ulimit, error) {
	name, val, ok := strings.Cut(s, "=")
	if !ok {
		return Ulimit{}, optErrorf("invalid ulimit %q: want NAME=SOFT[:HARD]", s)
	}
	if !ulimitNames[name] {
		return Ulimit{}, optErrorf("invalid ulimit %q: unknown resource %q", s, name)
	}
	softS, hardS, hasHard := strings.Cut(val, ":")
	soft, err := strconv.ParseInt(softS, 10, 64)
	if err != nil || soft < -1 {
		return Ulimit{}, optErrorf("invalid ulimit %q: soft limit %q is not a number", s, softS)
	}
	hard := soft
	if hasHard {
		if hard, err = strconv.ParseInt(hardS, 10, 64); err != nil || hard < -1 {
			return Ulimit{}, optErrorf("invalid ulimit %q: hard limit %q is not a number", s, hardS)
		}
	}
	if hard != -1 && (soft == -1 || soft > hard) {
		return Ulimit{}, optErrorf("invalid ulimit %q: soft limit must not exceed the hard limit", s)
	}
	return Ulimit{Name: name, Soft: soft, Hard: hard}, nil
}

// ParseMemory parses a memory size as docker does (RAMInBytes): a number
// with an optional binary unit b, k, m, g, t or p (with or without a
// trailing "b", any case): "256m" is 256 MiB. It must not be negative.
func ParseMemory(s string) (int64, error) {
	n, err := units.RAMInBytes(strings.TrimSpace(s))
	if err != nil || n < 0 {
		return 0, optErrorf("invalid size %q: want a number with an optional unit b, k, m or g, such as 256m", s)
	}
	return n, nil
}

// ParseMemorySwap parses --memory-swap: a size as ParseMemory, or -1 for
// unlimited swap.
func ParseMemorySwap(s string) (int64, error) {
	if strings.TrimSpace(s) == "-1" {
		return -1, nil
	}
	return ParseMemory(s)
}

// ParseCPUs parses --cpus, a positive decimal number of CPUs ("0.5") with
// at most nine decimal places.
func ParseCPUs(s string) (float64, error) {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
		return 0, optErrorf("invalid --cpus %q: want a positive number such as 1.5", s)
	}
	if _, frac, ok := strings.Cut(strings.TrimSpace(s), "."); ok && len(frac) > 9 {
		return 0, optErrorf("invalid --cpus %q: too precise (at most 9 decimal places)", s)
	}
	return f, nil
}

// ParseEnv parses -e values: KEY=VALUE is kept as is; KEY alone takes its
// value from lookup (os.LookupEnv when nil) and is dropped when lookup has
// none, as docker does.
func ParseEnv(list []string, lookup func(string) (string, bool)) ([]string, error) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	var out []string
	for _, kv := range list {
		k, _, hasVal := strings.Cut(kv, "=")
		if k == "" {
			return nil, optErrorf("invalid environment variable %q: no name", kv)
		}
		if strings.ContainsAny(k, " \t\n\x00") {
			return nil, optErrorf("invalid environment variable %q: the name contains whitespace", kv)
		}
		if hasVal {
			out = append(out, kv)
			continue
		}
		if v, ok := lookup(k); ok {
			out = append(out, k+"="+v)
		}
	}
	return out, nil
}

// ParseEnvFile reads a docker --env-file: one KEY=VALUE a line (the value
// is taken literally, quotes and spaces included), blank lines and lines
// starting with # ignored, and KEY alone taking its value from lookup
// (os.LookupEnv when nil; dropped when unset).
func ParseEnvFile(file string, lookup func(string) (string, bool)) ([]string, error) {
	f, err := os.Open(file)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, fmt.Errorf("env file %s: %w", file, errdefs.ErrNotFound)
		}
		return nil, optErrorf("env file %s: %v", file, err)
	}
	defer f.Close()
	return parseKeyValueFile(f, file, lookup)
}

func parseKeyValueFile(r io.Reader, file string, lookup func(string) (string, bool)) ([]string, error) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	var out []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		b := sc.Bytes()
		if n == 1 {
			b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
		}
		if !utf8.Valid(b) {
			return nil, optErrorf("env file %s: line %d is not valid UTF-8", file, n)
		}
		line := strings.TrimSuffix(strings.TrimLeftFunc(string(b), unicode.IsSpace), "\r")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, hasVal := strings.Cut(line, "=")
		if k == "" {
			return nil, optErrorf("env file %s: line %d has no variable name", file, n)
		}
		if strings.ContainsAny(k, " \t") {
			return nil, optErrorf("env file %s: line %d: variable %q contains whitespace", file, n, k)
		}
		if hasVal {
			out = append(out, k+"="+v)
		} else if val, ok := lookup(k); ok {
			out = append(out, k+"="+val)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, optErrorf("env file %s: %v", file, err)
	}
	return out, nil
}

// ParseLabels parses --label values, KEY=VALUE or KEY (empty value), into
// a map; a later value for a key wins.
func ParseLabels(list []string) (map[string]string, error) {
	if len(list) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(list))
	for _, kv := range list {
		k, v, _ := strings.Cut(kv, "=")
		if strings.TrimSpace(k) == "" {
			return nil, optErrorf("invalid label %q: no key", kv)
		}
		out[k] = v
	}
	return out, nil
}

// ParseLabelFile reads a --label-file: lines as in ParseEnvFile, KEY alone
// meaning an empty value.
func ParseLabelFile(file string) (map[string]string, error) {
	f, err := os.Open(file)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, fmt.Errorf("label file %s: %w", file, errdefs.ErrNotFound)
		}
		return nil, optErrorf("label file %s: %v", file, err)
	}
	defer f.Close()
	lines, err := parseKeyValueFile(f, file, func(string) (string, bool) { return "", true })
	if err != nil {
		return nil, err
	}
	return ParseLabels(lines)
}

// signals are Linux's signal names without "SIG".
var signals = map[string]syscall.Signal{
	"ABRT": 6, "ALRM": 14, "BUS": 7, "CHLD": 17, "CLD": 17, "CONT": 18, "FPE": 8, "HUP": 1,
	"ILL": 4, "INT": 2, "IO": 29, "IOT": 6, "KILL": 9, "PIPE": 13, "POLL": 29, "PROF": 27,
	"PWR": 30, "QUIT": 3, "SEGV": 11, "STKFLT": 16, "STOP": 19, "SYS": 31, "TERM": 15,
	"TRAP": 5, "TSTP": 20, "TTIN": 21, "TTOU": 22, "URG": 23, "USR1": 10, "USR2": 12,
	"VTALRM": 26, "WINCH": 28, "XCPU": 24, "XFSZ": 25,
}

const (
	sigRTMin = 34
	sigRTMax = 64
)

// signalAliases are names SignalName does not return.
var signalAliases = map[string]bool{"IOT": true, "CLD": true, "POLL": true}

// SignalName is the canonical name of sig ("SIGTERM", "SIGRTMIN+3"), or
// its number for one without a name.
func SignalName(sig syscall.Signal) string {
	for name, n := range signals {
		if n == sig && !signalAliases[name] {
			return "SIG" + name
		}
	}
	switch {
	case sig == sigRTMin:
		return "SIGRTMIN"
	case sig > sigRTMin && sig <= sigRTMax:
		return fmt.Sprintf("SIGRTMIN+%d", int(sig)-sigRTMin)
	}
	return strconv.Itoa(int(sig))
}
