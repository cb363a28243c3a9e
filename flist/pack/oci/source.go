package oci

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Errors of opening an image.
var (
	// ErrOCINoPlatform means a multi-arch index has no image for the platform.
	ErrOCINoPlatform = errors.New("oci: no image for platform")
	// ErrOCIUnauthorized means the registry (or its token server) refused the
	// credentials, or wants some and got none.
	ErrOCIUnauthorized = errors.New("unauthorized: the registry refused the credentials or needs some")
)

// Kind says where an image comes from.
type Kind string

// The three kinds of source.
const (
	KindRegistry Kind = "registry"
	KindTarball  Kind = "docker-archive"
	KindLayout   Kind = "oci-layout"
)

// SourceOptions tune how an image is opened. The zero value opens public
// registry images for the node's own platform.
type SourceOptions struct {
	// Platform such as "linux/amd64" or "linux/arm64/v8"; empty means the
	// platform this binary runs on.
	Platform string
	// Username and Password for basic auth (registry token auth is negotiated
	// with them too). Empty means the docker config keychain
	// ($DOCKER_CONFIG/config.json, else ~/.docker/config.json), then anonymous.
	Username, Password string
	// NoKeychain never reads the local docker config: empty credentials mean
	// anonymous. A service pulling on behalf of others (the hub) sets it, so
	// it does not lend them its own registry credentials.
	NoKeychain bool
	// Insecure allows plain HTTP to any registry (loopback and private
	// addresses use plain HTTP anyway).
	Insecure bool
	// Transport for registry requests; nil means http.DefaultTransport.
	Transport http.RoundTripper
}

// Source is an opened image, before any layer is downloaded.
type Source struct {
	Kind  Kind
	Ref   string // what the user asked for
	Image v1.Image
}

// ParsePlatform parses "os/arch[/variant]"; empty means this machine's.
func ParsePlatform(s string) (v1.Platform, error) {
	if s == "" {
		return v1.Platform{OS: "linux", Architecture: runtime.GOARCH}, nil
	}
	p, err := v1.ParsePlatform(s)
	if err != nil || p.OS == "" || p.Architecture == "" {
		return v1.Platform{}, fmt.Errorf("oci: platform %q: want os/arch[/variant]", s)
	}
	return *p, nil
}

// Open resolves src to one image. src is a registry reference
// ("localhost:5000/app:1.2", "docker.io/library/busybox@sha256:..."), a
// `docker save` tarball (a file, or "docker-archive:FILE[:TAG]") or an OCI
// image layout directory (a directory with an oci-layout file, or
// "oci:DIR[:REF]" where REF matches the org.opencontainers.image.ref.name
// annotation). A multi-arch index is narrowed to opts.Platform.
func Open(ctx context.Context, src string, opts SourceOptions) (*Source, error) {
	plat, err := ParsePlatform(opts.Platform)
	if err != nil {
		return nil, err
	}
	switch {
	case strings.HasPrefix(src, "docker-archive:"):
		file, tag := splitRef(strings.TrimPrefix(src, "docker-archive:"))
		return openTarball(src, file, tag)
	case strings.HasPrefix(src, "oci:"):
		dir, ref := splitRef(strings.TrimPrefix(src, "oci:"))
		return openLayout(src, dir, ref, plat)
	case strings.HasPrefix(src, "docker://"):
		return openRemote(ctx, src, strings.TrimPrefix(src, "docker://"), plat, opts)
	}
	if st, err := os.Stat(src); err == nil {
		if st.IsDir() {
			return openLayout(src, src, "", plat)
		}
		return openTarball(src, src, "")
	}
	if strings.HasPrefix(src, "/") || strings.HasPrefix(src, ".") {
		return nil, fmt.Errorf("oci: %s: no such file or directory", src)
	}
	return openRemote(ctx, src, src, plat, opts)
}

// splitRef splits "path:ref" where path may itself contain no colon.
func splitRef(s string) (string, string) {
	if i := strings.LastIndex(s, ":"); i > 0 && !strings.Contains(s[i:], "/") {
		if _, err := os.Stat(s); err != nil {
			return s[:i], s[i+1:]
		}
	}
	return s, ""
}

func openTarball(src, file, tag string) (*Source, error) {
	var t *name.Tag
	if tag != "" {
		pt, err := name.NewTag(tag)
		if err != nil {
			return nil, fmt.Errorf("oci: %s: tag: %w", src, err)
		}
		t = &pt
	}
	img, err := tarball.ImageFromPath(file, t)
	if err != nil {
		return nil, fmt.Errorf("oci: %s: not a docker-save tarball: %w", src, err)
	}
	return &Source{Kind: KindTarball, Ref: src, Image: img}, nil
}

func openLayout(src, dir, ref string, plat v1.Platform) (*Source, error) {
	if _, err := os.Stat(filepath.Join(dir, "oci-layout")); err != nil {
		return nil, fmt.Errorf("oci: %s: not an OCI image layout (no oci-layout file)", src)
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("oci: %s: %w", src, err)
	}
	img, err := pickFromIndex(idx, ref, plat)
	if err != nil {
		return nil, fmt.Errorf("oci: %s: %w", src, err)
	}
	return &Source{Kind: KindLayout, Ref: src, Image: img}, nil
}

// pickFromIndex walks an index (and nested indexes) for the image that
// matches plat (and ref, when given). An image with no platform in its
// descriptor matches when it is the only candidate.
func pickFromIndex(idx v1.ImageIndex, ref string, plat v1.Platform) (v1.Image, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var unplatformed []v1.Hash
	for _, d := range im.Manifests {
		if ref != "" && d.Annotations["org.opencontainers.image.ref.name"] != ref {
			continue
		}
		if d.MediaType.IsIndex() {
			child, err := idx.ImageIndex(d.Digest)
			if err != nil {
				return nil, err
			}
			if img, err := pickFromIndex(child, "", plat); err == nil {
				return img, nil
			}
			continue
		}
		if !d.MediaType.IsImage() {
			continue
		}
		if d.Platform == nil {
			unplatformed = append(unplatformed, d.Digest)
			continue
		}
		if d.Platform.Satisfies(plat) {
			return idx.Image(d.Digest)
		}
	}
	if len(unplatformed) == 1 {
		img, err := idx.Image(unplatformed[0])
		if err != nil {
			return nil, err
		}
		cf, err := img.ConfigFile()
		if err != nil {
			return nil, err
		}
		if p := cf.Platform(); p == nil || p.Satisfies(plat) {
			return img, nil
		}
	}
	if ref != "" {
		return nil, fmt.Errorf("%w %s with ref %q", ErrOCINoPlatform, plat, ref)
	}
	return nil, fmt.Errorf("%w %s", ErrOCINoPlatform, plat)
}

func openRemote(ctx context.Context, src, ref string, plat v1.Platform, opts SourceOptions) (*Source, error) {
	var nopts []name.Option
	if opts.Insecure {
		nopts = append(nopts, name.Insecure)
	}
	r, err := name.ParseReference(ref, nopts...)
	if err != nil {
		return nil, fmt.Errorf("oci: %q is not a file, a directory or an image reference: %w", src, err)
	}
	ropts := []remote.Option{remote.WithContext(ctx), remote.WithPlatform(plat)}
	switch {
	case opts.Username != "" || opts.Password != "":
		ropts = append(ropts, remote.WithAuth(&authn.Basic{Username: opts.Username, Password: opts.Password}))
	case opts.NoKeychain:
		ropts = append(ropts, remote.WithAuth(authn.Anonymous))
	default:
		ropts = append(ropts, remote.WithAuthFromKeychain(authn.DefaultKeychain))
	}
	if opts.Transport != nil {
		ropts = append(ropts, remote.WithTransport(opts.Transport))
	}
	desc, err := remote.Get(r, ropts...)
	var terr *transport.Error
	if errors.As(err, &terr) && (terr.StatusCode == http.StatusUnauthorized || terr.StatusCode == http.StatusForbidden) {
		// Say what to do about it; the registry's own words follow.
		return nil, fmt.Errorf("oci: %s: %w: %w", src, ErrOCIUnauthorized, err)
	}
	if err != nil && strings.Contains(err.Error(), "private or link-local address") {
		// go-containerregistry's guard against token realms that point
		// into a private network: say how to live with it.
		return nil, fmt.Errorf("oci: %s: %w (the registry's token server must be its own host:port, or be named by a host name rather than a private IP address)", src, err)
	}
	if err != nil {
		return nil, fmt.Errorf("oci: %s: %w", src, err)
	}
	var img v1.Image
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return nil, fmt.Errorf("oci: %s: %w", src, err)
		}
		img, err = pickFromIndex(idx, "", plat)
		if err != nil {
			return nil, fmt.Errorf("oci: %s: %w", src, err)
		}
	} else {
		img, err = desc.Image()
		if err != nil {
			return nil, fmt.Errorf("oci: %s: %w", src, err)
		}
	}
	return &Source{Kind: KindRegistry, Ref: src, Image: img}, nil
}
