package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	dref "github.com/distribution/reference"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berthsh/berth/internal/filterargs"
	"github.com/berthsh/berth/pkg/errdefs"
	"github.com/berthsh/berth/pkg/reference"
)

// This file describes stored images the way docker's image commands show
// them: list summaries with docker's filters, the inspect object, the
// build history and disk usage. Sizes are stored (compressed) sizes: the
// manifest, config and layer blobs as kept in the store, not the unpacked
// size docker reports.

// ImageSummary is one image as "images" lists it.
type ImageSummary struct {
	// Image is the stored image. With a reference filter, Names and
	// RepoDigests hold only the matching ones, as docker shows them.
	Image
	// ID is the image ID (the config digest), or the manifest digest when
	// the manifest cannot be read.
	ID v1.Hash
	// Created is the config's creation time; zero when it has none or the
	// config cannot be read.
	Created time.Time
	// Size is the stored size (see Store.Size).
	Size int64
	// Labels are the config's labels.
	Labels map[string]string
}

// Dangling reports whether the image has no name.
func (s ImageSummary) Dangling() bool { return len(s.Names) == 0 }

// ImageFilter selects images as "docker images --filter" does. The zero
// value selects every image. Values of one key are alternatives (any may
// match) except Labels, which must all match; different keys must all
// match.
type ImageFilter struct {
	// Dangling, if set, keeps only images without (true) or with (false)
	// a name.
	Dangling *bool
	// References are glob patterns matched against familiar names
	// ("py*", "python:3.*", "me/app"), as docker's reference filter.
	References []string
	// Before and Since keep images created before / after the given image
	// (name or ID).
	Before, Since []string
	// Labels are "KEY" (the label is set) or "KEY=VALUE".
	Labels []string
}

// ParseImageFilter parses "key=value" filter arguments (dangling,
// reference, before, since, label) into an ImageFilter.
func ParseImageFilter(args []string) (ImageFilter, error) {
	var f ImageFilter
	var dangling filterargs.Dangling
	for _, a := range args {
		key, val, err := filterargs.Split(a)
		if err != nil {
			return ImageFilter{}, err
		}
		switch key {
		case "dangling":
			if err := dangling.Add(val); err != nil {
				return ImageFilter{}, err
			}
		case "reference":
			if _, err := path.Match(val, ""); err != nil {
				return ImageFilter{}, fmt.Errorf("invalid filter 'reference=%s': %v: %w", val, err, errdefs.ErrInvalidArgument)
			}
			f.References = append(f.References, val)
		case "before":
			f.Before = append(f.Before, val)
		case "since":
			f.Since = append(f.Since, val)
		case "label":
			if val == "" {
				return ImageFilter{}, fmt.Errorf("invalid filter 'label=': give label=KEY or label=KEY=VALUE: %w", errdefs.ErrInvalidArgument)
			}
			f.Labels = append(f.Labels, val)
		default:
			return ImageFilter{}, fmt.Errorf("invalid filter '%s': supported filters are dangling, reference, before, since and label: %w", key, errdefs.ErrInvalidArgument)
		}
	}
	var err error
	if f.Dangling, err = dangling.Value(); err != nil {
		return ImageFilter{}, err
	}
	return f, nil
}

// imageMeta is what the descriptive functions read about one image.
type imageMeta struct {
	manifest *v1.Manifest
	rawCfg   []byte
	cfg      *v1.ConfigFile
}

// describe reads an image's manifest and config.
func (s *Store) describe(ctx context.Context, img Image) (imageMeta, error) {
	m, err := s.Manifest(ctx, img)
	if err != nil {
		return imageMeta{}, err
	}
	raw, err := s.ReadBlob(ctx, m.Config.Digest)
	if err != nil {
		return imageMeta{manifest: m}, fmt.Errorf("config of %s: %w", img.Manifest.Digest, err)
	}
	cf, err := v1.ParseConfigFile(bytes.NewReader(raw))
	if err != nil {
		return imageMeta{manifest: m}, fmt.Errorf("config of %s: %v: %w", img.Manifest.Digest, err, errdefs.ErrDataCorrupt)
	}
	return imageMeta{manifest: m, rawCfg: raw, cfg: cf}, nil
}

func (m imageMeta) size(img Image) int64 {
	if m.manifest == nil {
		return 0
	}
	n := img.Manifest.Size + m.manifest.Config.Size
	for _, l := range m.manifest.Layers {
		n += l.Size
	}
	return n
}

// summarize builds an image's summary. A damaged image is still listed,
// with what could be read ("image verify" reports the damage).
func (s *Store) summarize(ctx context.Context, img Image) ImageSummary {
	sum := ImageSummary{Image: img, ID: img.Manifest.Digest}
	meta, _ := s.describe(ctx, img)
	if meta.manifest != nil {
		sum.ID = meta.manifest.Config.Digest
		sum.Size = meta.size(img)
	}
	if meta.cfg != nil {
		sum.Created = meta.cfg.Created.Time
		sum.Labels = meta.cfg.Config.Labels
	}
	return sum
}

// Summaries lists the images f selects, newest (by creation time) first.
func (s *Store) Summaries(ctx context.Context, f ImageFilter) ([]ImageSummary, error) {
	imgs, err := s.List(ctx)
	if err != nil {
		return nil, err
	}
	var before, since time.Time
	var hasBefore, hasSince bool
	for _, v := range f.Before {
		img, err := s.Get(ctx, v)
		if err != nil {
			return nil, fmt.Errorf("filter before=%s: %w", v, err)
		}
		before, hasBefore = s.summarize(ctx, img).Created, true
	}
	for _, v := range f.Since {
		img, err := s.Get(ctx, v)
		if err != nil {
			return nil, fmt.Errorf("filter since=%s: %w", v, err)
		}
		since, hasSince = s.summarize(ctx, img).Created, true
	}
	var out []ImageSummary
	for _, img := range imgs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		sum := s.summarize(ctx, img)
		if len(f.References) > 0 {
			sum.Names = matchingNames(f.References, sum.Names)
			sum.RepoDigests = matchingDigests(f.References, sum.RepoDigests)
			if len(sum.Names) == 0 && len(sum.RepoDigests) == 0 {
				continue
			}
		}
		if f.Dangling != nil && *f.Dangling != sum.Dangling() {
			continue
		}
		if hasBefore && !sum.Created.Before(before) {
			continue
		}
		if hasSince && !sum.Created.After(since) {
			continue
		}
		if !matchLabels(f.Labels, sum.Labels) {
			continue
		}
		out = append(out, sum)
	}
	sortSummaries(out)
	return out, nil
}

func sortSummaries(list []ImageSummary) {
	sort.SliceStable(list, func(i, j int) bool {
		a, b := list[i], list[j]
		if !a.Created.Equal(b.Created) {
			return a.Created.After(b.Created)
		}
		if !a.Added.Equal(b.Added) {
			return a.Added.After(b.Added)
		}
		return a.ID.String() < b.ID.String()
	})
}

// familiarMatch matches pattern against the familiar form of the full
// reference s, and against its familiar repository, as docker does.
func familiarMatch(pattern, s string) bool {
	r, err := dref.ParseNormalizedNamed(s)
	if err != nil {
		return false
	}
	ok, _ := dref.FamiliarMatch(pattern, r)
	return ok
}

func matchingNames(patterns []string, names []reference.Reference) []reference.Reference {
	var out []reference.Reference
	for _, n := range names {
		for _, p := range patterns {
			if familiarMatch(p, n.String()) {
				out = append(out, n)
				break
			}
		}
	}
	return out
}

func matchingDigests(patterns []string, rds []string) []string {
	var out []string
	for _, rd := range rds {
		for _, p := range patterns {
			if familiarMatch(p, rd) {
				out = append(out, rd)
				break
			}
		}
	}
	return out
}

func matchLabels(want []string, labels map[string]string) bool {
	for _, w := range want {
		k, v, hasValue := strings.Cut(w, "=")
		got, ok := labels[k]
		if !ok || (hasValue && got != v) {
			return false
		}
	}
	return true
}

// FamiliarRepoDigest turns a stored "repository@digest" into docker's
// familiar form ("python@sha256:…"); what does not parse is returned as is.
func FamiliarRepoDigest(rd string) string {
	r, err := reference.ParseRepository(rd)
	if err != nil {
		return rd
	}
	return r.Familiar()
}

// ImageInspect is an image as "docker image inspect" shows it. Field names
// are docker's JSON keys, so Go templates ({{.Id}}, {{.Config.Cmd}}) work
// as they do with docker.
type ImageInspect struct {
	Id            string // docker's key and template field name
	RepoTags      []string
	RepoDigests   []string
	Parent        string
	Comment       string
	Created       string
	DockerVersion string
	Author        string
	Config        *ContainerConfig
	Architecture  string
	Variant       string `json:",omitempty"`
	Os            string
	OsVersion     string `json:",omitempty"`
	// Size is the stored (compressed) size of the image.
	Size       int64
	RootFS     InspectRootFS
	Metadata   InspectMetadata
	Descriptor *v1.Descriptor `json:",omitempty"`
}

// ContainerConfig is the run configuration of an image in the shape of
// docker's container config (the "Config" of image and container inspect).
type ContainerConfig struct {
	Hostname        string
	Domainname      string
	User            string
	AttachStdin     bool
	AttachStdout    bool
	AttachStderr    bool
	ExposedPorts    map[string]struct{} `json:",omitempty"`
	Tty             bool
	OpenStdin       bool
	StdinOnce       bool
	Env             []string
	Cmd             []string
	Healthcheck     *HealthConfig `json:",omitempty"`
	ArgsEscaped     bool          `json:",omitempty"`
	Image           string
	Volumes         map[string]struct{}
	WorkingDir      string
	Entrypoint      []string
	NetworkDisabled bool   `json:",omitempty"`
	MacAddress      string `json:",omitempty"`
	OnBuild         []string
	Labels          map[string]string
	StopSignal      string   `json:",omitempty"`
	StopTimeout     *int     `json:",omitempty"`
	Shell           []string `json:",omitempty"`
}

// HealthConfig is docker's healthcheck configuration. Durations are
// nanoseconds in JSON, as in docker.
type HealthConfig struct {
	Test          []string      `json:",omitempty"`
	Interval      time.Duration `json:",omitempty"`
	Timeout       time.Duration `json:",omitempty"`
	StartPeriod   time.Duration `json:",omitempty"`
	StartInterval time.Duration `json:",omitempty"`
	Retries       int           `json:",omitempty"`
}

// InspectRootFS lists the image's layers by diff ID.
type InspectRootFS struct {
	Type   string
	Layers []string `json:",omitempty"`
}

// InspectMetadata is docker's local image metadata.
type InspectMetadata struct {
	// LastTagTime is when the image was stored under a name; zero for an
	// image without one.
	LastTagTime time.Time
}

// NewContainerConfig converts an image config's run configuration. hc
// overrides the healthcheck (ggcr's type lacks StartInterval); nil keeps
// the one in c.
func NewContainerConfig(c v1.Config, hc *HealthConfig) *ContainerConfig {
	if hc == nil && c.Healthcheck != nil {
		hc = &HealthConfig{
			Test:        c.Healthcheck.Test,
			Interval:    c.Healthcheck.Interval,
			Timeout:     c.Healthcheck.Timeout,
			StartPeriod: c.Healthcheck.StartPeriod,
			Retries:     c.Healthcheck.Retries,
		}
	}
	return &ContainerConfig{
		Hostname:        c.Hostname,
		Domainname:      c.Domainname,
		User:            c.User,
		AttachStdin:     c.AttachStdin,
		AttachStdout:    c.AttachStdout,
		AttachStderr:    c.AttachStderr,
		ExposedPorts:    c.ExposedPorts,
		Tty:             c.Tty,
		OpenStdin:       c.OpenStdin,
		StdinOnce:       c.StdinOnce,
		Env:             c.Env,
		Cmd:             c.Cmd,
		Healthcheck:     hc,
		ArgsEscaped:     c.ArgsEscaped,
		Image:           c.Image,
		Volumes:         c.Volumes,
		WorkingDir:      c.WorkingDir,
		Entrypoint:      c.Entrypoint,
		NetworkDisabled: c.NetworkDisabled,
		MacAddress:      c.MacAddress,
		OnBuild:         c.OnBuild,
		Labels:          c.Labels,
		StopSignal:      c.StopSignal,
		Shell:           c.Shell,
	}
}

// Inspect describes img as docker's image inspect does.
func (s *Store) Inspect(ctx context.Context, img Image) (ImageInspect, error) {
	meta, err := s.describe(ctx, img)
	if err != nil {
		return ImageInspect{}, fmt.Errorf("inspect %s: %w", imageLabel(img), err)
	}
	cf := meta.cfg
	// Fields ggcr's ConfigFile does not keep.
	var extra struct {
		Config struct {
			Healthcheck *HealthConfig `json:"Healthcheck"`
			StopTimeout *int          `json:"StopTimeout"`
		} `json:"config"`
	}
	_ = json.Unmarshal(meta.rawCfg, &extra)

	out := ImageInspect{
		Id:            meta.manifest.Config.Digest.String(),
		RepoTags:      []string{},
		RepoDigests:   []string{},
		DockerVersion: cf.DockerVersion,
		Author:        cf.Author,
		Config:        NewContainerConfig(cf.Config, extra.Config.Healthcheck),
		Architecture:  cf.Architecture,
		Variant:       cf.Variant,
		Os:            cf.OS,
		OsVersion:     cf.OSVersion,
		Size:          meta.size(img),
		RootFS:        InspectRootFS{Type: cf.RootFS.Type},
		Descriptor: &v1.Descriptor{
			MediaType: img.Manifest.MediaType,
			Digest:    img.Manifest.Digest,
			Size:      img.Manifest.Size,
		},
	}
	out.Config.StopTimeout = extra.Config.StopTimeout
	for _, n := range img.Names {
		out.RepoTags = append(out.RepoTags, n.Familiar())
	}
	for _, rd := range img.RepoDigests {
		out.RepoDigests = append(out.RepoDigests, FamiliarRepoDigest(rd))
	}
	if !cf.Created.IsZero() {
		out.Created = cf.Created.UTC().Format(time.RFC3339Nano)
	}
	if n := len(cf.History); n > 0 {
		out.Comment = cf.History[n-1].Comment
	}
	for _, d := range cf.RootFS.DiffIDs {
		out.RootFS.Layers = append(out.RootFS.Layers, d.String())
	}
	if len(img.Names) > 0 {
		out.Metadata.LastTagTime = img.Added
	}
	return out, nil
}

func imageLabel(img Image) string {
	if len(img.Names) > 0 {
		return img.Names[0].Familiar()
	}
	return img.Manifest.Digest.String()
}

// HistoryEntry is one step of an image's build history, as "docker
// history" shows it.
type HistoryEntry struct {
	// ID is the image ID on the newest entry and "<missing>" on the others
	// (as docker shows pulled images).
	ID        string
	Created   time.Time
	CreatedBy string
	Comment   string
	// Size is the stored (compressed) size of the layer the step created;
	// 0 for steps that created none.
	Size       int64
	EmptyLayer bool
	// Tags are the image's familiar names, on the newest entry only.
	Tags []string
}

// HistoryMissingID is the ID docker shows for steps without an image of
// their own.
const HistoryMissingID = "<missing>"

// History returns img's build history from its config, newest first.
// Steps that created a layer are paired with the manifest's layers in
// order; an image without history gets one entry per layer.
func (s *Store) History(ctx context.Context, img Image) ([]HistoryEntry, error) {
	meta, err := s.describe(ctx, img)
	if err != nil {
		return nil, fmt.Errorf("history of %s: %w", imageLabel(img), err)
	}
	layers := meta.manifest.Layers
	var out []HistoryEntry
	next := 0
	for _, h := range meta.cfg.History {
		e := HistoryEntry{Created: h.Created.Time, CreatedBy: h.CreatedBy, Comment: h.Comment, EmptyLayer: h.EmptyLayer}
		if !h.EmptyLayer && next < len(layers) {
			e.Size = layers[next].Size
			next++
		}
		out = append(out, e)
	}
	// Layers the history does not account for (or no history at all).
	for ; next < len(layers); next++ {
		out = append(out, HistoryEntry{Created: meta.cfg.Created.Time, Size: layers[next].Size})
	}
	if len(out) == 0 {
		out = append(out, HistoryEntry{Created: meta.cfg.Created.Time, EmptyLayer: true})
	}
	// Newest first.
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	for i := range out {
		out[i].ID = HistoryMissingID
	}
	out[0].ID = meta.manifest.Config.Digest.String()
	for _, n := range img.Names {
		out[0].Tags = append(out[0].Tags, n.Familiar())
	}
	return out, nil
}

// DiskUsageOptions tune DiskUsage.
type DiskUsageOptions struct {
	// Containers, if set, returns how many containers use the image.
	Containers func(Image) int
}

// ImageUsage is one image's share of the store.
type ImageUsage struct {
	ImageSummary
	// SharedSize is the size of the image's blobs that other images use
	// too; the rest of Size is unique to the image.
	SharedSize int64
	// Containers is the number of containers using the image.
	Containers int
}

// UniqueSize is the size of the blobs only this image uses.
func (u ImageUsage) UniqueSize() int64 { return u.Size - u.SharedSize }

// DiskUsage sums up the store's space as "docker system df" does.
type DiskUsage struct {
	// Images, newest first.
	Images []ImageUsage
	// Active is the number of images containers use.
	Active int
	// Size counts every blob the images reference once.
	Size int64
	// Reclaimable is what "image prune" would free: the blobs only
	// dangling images that no container uses reference.
	Reclaimable int64
}

// DiskUsage reports the space the images take.
func (s *Store) DiskUsage(ctx context.Context, opts DiskUsageOptions) (DiskUsage, error) {
	imgs, err := s.List(ctx)
	if err != nil {
		return DiskUsage{}, err
	}
	type blobs = map[v1.Hash]int64
	var du DiskUsage
	perImage := make([]blobs, len(imgs))
	users := map[v1.Hash]int{}
	kept := map[v1.Hash]bool{} // blobs a named or in-use image references
	sizes := blobs{}
	for i, img := range imgs {
		if err := ctx.Err(); err != nil {
			return DiskUsage{}, err
		}
		u := ImageUsage{ImageSummary: s.summarize(ctx, img)}
		if opts.Containers != nil {
			u.Containers = opts.Containers(img)
		}
		if u.Containers > 0 {
			du.Active++
		}
		b := blobs{img.Manifest.Digest: img.Manifest.Size}
		if m, err := s.Manifest(ctx, img); err == nil {
			b[m.Config.Digest] = m.Config.Size
			for _, l := range m.Layers {
				b[l.Digest] = l.Size
			}
		}
		for d, n := range b {
			users[d]++
			sizes[d] = n
			if !u.Dangling() || u.Containers > 0 {
				kept[d] = true
			}
		}
		perImage[i] = b
		du.Images = append(du.Images, u)
	}
	for d, n := range sizes {
		du.Size += n
		if !kept[d] {
			du.Reclaimable += n
		}
	}
	for i := range du.Images {
		for d, n := range perImage[i] {
			if users[d] > 1 {
				du.Images[i].SharedSize += n
			}
		}
	}
	sort.SliceStable(du.Images, func(i, j int) bool {
		a, b := du.Images[i], du.Images[j]
		if !a.Created.Equal(b.Created) {
			return a.Created.After(b.Created)
		}
		return a.Added.After(b.Added)
	})
	return du, nil
}
