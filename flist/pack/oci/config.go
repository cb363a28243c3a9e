package oci

import (
	"fmt"
	"slices"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// ImageConfig is what a container runtime needs from an image to run it
// the way Docker would. It is stored as JSON in the flist (see flist/pack).
type ImageConfig struct {
	Source       string            `json:"source,omitempty"` // the reference the image came from
	Digest       string            `json:"digest"`           // manifest digest, sha256:hex
	OS           string            `json:"os,omitempty"`
	Architecture string            `json:"architecture,omitempty"`
	Variant      string            `json:"variant,omitempty"`
	Entrypoint   []string          `json:"entrypoint,omitempty"`
	Cmd          []string          `json:"cmd,omitempty"`
	Env          []string          `json:"env,omitempty"`
	WorkingDir   string            `json:"working_dir,omitempty"`
	User         string            `json:"user,omitempty"`
	ExposedPorts []string          `json:"exposed_ports,omitempty"` // sorted, "80/tcp"
	Volumes      []string          `json:"volumes,omitempty"`       // sorted paths
	Labels       map[string]string `json:"labels,omitempty"`
	StopSignal   string            `json:"stop_signal,omitempty"`
}

// ConfigOf reads the configuration of img.
func ConfigOf(img v1.Image) (ImageConfig, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return ImageConfig{}, fmt.Errorf("oci: image config: %w", err)
	}
	d, err := img.Digest()
	if err != nil {
		return ImageConfig{}, fmt.Errorf("oci: image digest: %w", err)
	}
	c := cf.Config
	ic := ImageConfig{
		Digest:       d.String(),
		OS:           cf.OS,
		Architecture: cf.Architecture,
		Variant:      cf.Variant,
		Entrypoint:   c.Entrypoint,
		Cmd:          c.Cmd,
		Env:          c.Env,
		WorkingDir:   c.WorkingDir,
		User:         c.User,
		Labels:       c.Labels,
		StopSignal:   c.StopSignal,
	}
	for p := range c.ExposedPorts {
		ic.ExposedPorts = append(ic.ExposedPorts, p)
	}
	slices.Sort(ic.ExposedPorts)
	for v := range c.Volumes {
		ic.Volumes = append(ic.Volumes, v)
	}
	slices.Sort(ic.Volumes)
	return ic, nil
}
