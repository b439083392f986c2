package build

import (
	"context"
	"fmt"
	"maps"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/berthsh/berth/pkg/store"
)

// writeImage stores the stage's image as an OCI image under the tags.
func (b *builder) writeImage(ctx context.Context, st *stageState) (Result, error) {
	cf := st.cf.DeepCopy()
	cf.Config = st.cb.Config
	if len(b.opts.Labels) > 0 {
		cf.Config.Labels = maps.Clone(cf.Config.Labels)
		if cf.Config.Labels == nil {
			cf.Config.Labels = map[string]string{}
		}
		maps.Copy(cf.Config.Labels, b.opts.Labels)
	}
	cf.Config.Hostname, cf.Config.Domainname = "", ""
	cf.Created = v1.Time{Time: b.epoch}
	cf.Author = st.author
	cf.Container, cf.DockerVersion = "", ""
	cf.OS, cf.Architecture, cf.Variant = st.platform.OS, st.platform.Architecture, st.platform.Variant
	cf.OSVersion, cf.OSFeatures = st.platform.OSVersion, st.platform.OSFeatures
	cf.History = st.history
	cf.RootFS = v1.RootFS{Type: "layers", DiffIDs: []v1.Hash{}}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	adds := make([]mutate.Addendum, 0, len(st.layers))
	for _, l := range st.layers {
		layer, err := b.s.Layer(ctx, l.desc, l.diffID)
		if err != nil {
			return Result{}, fmt.Errorf("layer %s: %w", l.desc.Digest, err)
		}
		adds = append(adds, mutate.Addendum{Layer: layer, MediaType: ociLayerType(l.desc.MediaType)})
		cf.RootFS.DiffIDs = append(cf.RootFS.DiffIDs, l.diffID)
	}
	img, err := mutate.Append(img, adds...)
	if err != nil {
		return Result{}, err
	}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return Result{}, err
	}
	id, err := img.ConfigName()
	if err != nil {
		return Result{}, err
	}
	stored, err := b.s.WriteImage(ctx, img, store.WriteOptions{Names: b.opts.Tags})
	if err != nil {
		return Result{}, err
	}
	return Result{Image: stored, ID: id}, nil
}

// ociLayerType is the OCI media type of a layer blob.
func ociLayerType(mt types.MediaType) types.MediaType {
	switch mt {
	case types.DockerLayer, "":
		return types.OCILayer
	case types.DockerUncompressedLayer:
		return types.OCIUncompressedLayer
	case types.DockerForeignLayer:
		return types.OCIRestrictedLayer
	}
	return mt
}
