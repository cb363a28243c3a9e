package container

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// Errors returned by the runtime.
var (
	ErrContainerNotFound = errors.New("container: no such container")
	ErrContainerExists   = errors.New("container: a container with this name exists")
	ErrContainerRunning  = errors.New("container: container is running")
	ErrInvalidConfig     = errors.New("container: invalid config")
)

// ImageConfig is what an image says about how to run it: the subset of the
// OCI image config (`config` object) a runtime uses.
type ImageConfig struct {
	Entrypoint []string `json:"Entrypoint,omitempty"`
	Cmd        []string `json:"Cmd,omitempty"`
	Env        []string `json:"Env,omitempty"`
	WorkingDir string   `json:"WorkingDir,omitempty"`
	User       string   `json:"User,omitempty"`
}

// RestartPolicy says what the supervisor does when the container's init exits.
type RestartPolicy struct {
	// Name is "no" (default), "always", "unless-stopped" (same as always:
	// a stop by the user is never undone) or "on-failure".
	Name string `json:"name,omitempty"`
	// MaxRetries bounds on-failure restarts; 0 means no bound.
	MaxRetries int `json:"max_retries,omitempty"`
}

// ParseRestartPolicy parses Docker's --restart syntax: no, always,
// unless-stopped, on-failure[:N].
func ParseRestartPolicy(s string) (RestartPolicy, error) {
	name, n, hasN := strings.Cut(s, ":")
	switch name {
	case "", "no", "always", "unless-stopped":
		if hasN {
			return RestartPolicy{}, fmt.Errorf("%w: restart policy %q takes no retry count", ErrInvalidConfig, name)
		}
		if name == "" {
			name = "no"
		}
		return RestartPolicy{Name: name}, nil
	case "on-failure":
		p := RestartPolicy{Name: name}
		if hasN {
			v, err := strconv.Atoi(n)
			if err != nil || v < 0 {
				return RestartPolicy{}, fmt.Errorf("%w: bad retry count %q", ErrInvalidConfig, n)
			}
			p.MaxRetries = v
		}
		return p, nil
	}
	return RestartPolicy{}, fmt.Errorf("%w: unknown restart policy %q (want no, always, unless-stopped, on-failure[:N])", ErrInvalidConfig, s)
}

// Volume is a host directory or a sparse virtual disk mounted into the container.
type Volume struct {
	// Source is a host directory (absolute path). Empty with SizeBytes set
	// means a new virtual disk owned by the container.
	Source string `json:"source,omitempty"`
	// SizeBytes is the size of a virtual disk: a sparse file formatted ext4
	// and loop-mounted, so writes beyond it fail with ENOSPC.
	SizeBytes int64 `json:"size_bytes,omitempty"`
	// Target is the absolute path inside the container.
	Target   string `json:"target"`
	ReadOnly bool   `json:"read_only,omitempty"`
}

// ParseVolume parses HOSTDIR:TARGET[:ro] or SIZE:TARGET (SIZE like 64M, 2G)
// for a new virtual disk.
func ParseVolume(s string) (Volume, error) {
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return Volume{}, fmt.Errorf("%w: volume %q: want HOSTDIR:TARGET[:ro] or SIZE:TARGET", ErrInvalidConfig, s)
	}
	v := Volume{Target: parts[1]}
	if len(parts) == 3 {
		if parts[2] != "ro" && parts[2] != "rw" {
			return Volume{}, fmt.Errorf("%w: volume %q: option must be ro or rw", ErrInvalidConfig, s)
		}
		v.ReadOnly = parts[2] == "ro"
	}
	if strings.HasPrefix(parts[0], "/") {
		v.Source = path.Clean(parts[0])
	} else {
		n, err := ParseBytes(parts[0])
		if err != nil {
			return Volume{}, fmt.Errorf("%w: volume %q: source must be an absolute host path or a size: %v", ErrInvalidConfig, s, err)
		}
		v.SizeBytes = n
	}
	if !path.IsAbs(v.Target) || path.Clean(v.Target) == "/" {
		return Volume{}, fmt.Errorf("%w: volume %q: target must be an absolute path other than /", ErrInvalidConfig, s)
	}
	v.Target = path.Clean(v.Target)
	return v, nil
}

// ParseBytes parses a size such as 512, 64k, 100M, 2G (powers of 1024).
func ParseBytes(s string) (int64, error) {
	s = strings.TrimSpace(strings.ToLower(s))
	s = strings.TrimSuffix(s, "b")
	mult := int64(1)
	if s != "" {
		switch s[len(s)-1] {
		case 'k':
			mult = 1 << 10
		case 'm':
			mult = 1 << 20
		case 'g':
			mult = 1 << 30
		case 't':
			mult = 1 << 40
		}
		if mult != 1 {
			s = s[:len(s)-1]
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("%w: bad size %q", ErrInvalidConfig, s)
	}
	if v > (1<<62)/mult {
		return 0, fmt.Errorf("%w: size %q too large", ErrInvalidConfig, s)
	}
	return v * mult, nil
}

// Config describes one container. The zero value of each field is a safe
// default; image defaults fill what the user left empty (see Resolve).
type Config struct {
	ID    string `json:"id"`
	Image string `json:"image"`
	// Lower is the read-only lower layer of the root filesystem (a
	// directory image). Empty means Image is served by the runtime's
	// ImageProvider, with ImageArgs (e.g. trust keys, stores).
	Lower     string   `json:"lower,omitempty"`
	ImageArgs []string `json:"image_args,omitempty"`

	Entrypoint []string `json:"entrypoint,omitempty"`
	Cmd        []string `json:"cmd,omitempty"`
	Env        []string `json:"env,omitempty"`
	WorkDir    string   `json:"workdir,omitempty"`
	User       string   `json:"user,omitempty"`
	Hostname   string   `json:"hostname,omitempty"`

	CPUs        float64 `json:"cpus,omitempty"`
	MemoryBytes int64   `json:"memory_bytes,omitempty"`
	// PidsLimit bounds tasks (processes and threads) in the container;
	// zos init, a Go program, uses about 8 of them.
	PidsLimit int64 `json:"pids_limit,omitempty"`

	// NetNS is the path of a network namespace to join; empty means a fresh,
	// empty one (loopback only).
	NetNS   string        `json:"netns,omitempty"`
	Volumes []Volume      `json:"volumes,omitempty"`
	Restart RestartPolicy `json:"restart"`

	// NoUserNS runs container root as host root (not recommended).
	NoUserNS bool `json:"no_userns,omitempty"`
	// NoInit runs the entrypoint as PID 1 instead of `zos init`.
	NoInit bool `json:"no_init,omitempty"`
	// ExecVerify denies executing any file of the root filesystem whose
	// content is not in the image.
	ExecVerify bool `json:"exec_verify,omitempty"`
	// Services is a directory inside the container holding zinit-style
	// YAML units for `zos init` (empty: run the entrypoint).
	Services string `json:"services,omitempty"`

	// Corex, with Services, makes zos init serve its HTTP API (list,
	// start, stop, restart services, logs, websocket terminal) on this
	// address inside the container's network namespace, authenticated by
	// the token in <root>/c/<id>/corex.token.
	Corex string `json:"corex,omitempty"`

	// LogMaxBytes rotates the log at this size (default 8 MiB); LogKeep
	// rotated files are kept (default 3).
	LogMaxBytes int64 `json:"log_max_bytes,omitempty"`
	LogKeep     int   `json:"log_keep,omitempty"`

	// IDBase is the first host uid/gid container root maps to; assigned by
	// the runtime when the container is created.
	IDBase uint32 `json:"id_base,omitempty"`
}

// idRE is compiled on first use: package init runs in every start of the
// zos binary (each container start runs it three times), and the bounded
// repetition makes a large program.
var idRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$`) })

// ValidateID says whether id is usable as a container name (and a path component).
func ValidateID(id string) error {
	if !idRE().MatchString(id) {
		return fmt.Errorf("%w: name %q must be 1-63 letters, digits, '_', '.' or '-', starting with a letter or digit", ErrInvalidConfig, id)
	}
	return nil
}

// Resolve fills the fields the user left empty from the image config, the
// way Docker does: --entrypoint replaces the image's entrypoint and drops its
// cmd; a user cmd replaces the image's cmd; env from the image comes first.
func (c *Config) Resolve(img ImageConfig) {
	if c.Entrypoint == nil {
		c.Entrypoint = img.Entrypoint
		if c.Cmd == nil {
			c.Cmd = img.Cmd
		}
	}
	c.Env = append(append([]string{}, img.Env...), c.Env...)
	if c.WorkDir == "" {
		c.WorkDir = img.WorkingDir
	}
	if c.User == "" {
		c.User = img.User
	}
}

// Args is the command line the container runs.
func (c *Config) Args() []string {
	return append(append([]string{}, c.Entrypoint...), c.Cmd...)
}

// Validate checks the config without side effects.
func (c *Config) Validate() error {
	if err := ValidateID(c.ID); err != nil {
		return err
	}
	if c.Lower == "" && c.Image == "" {
		return fmt.Errorf("%w: no image", ErrInvalidConfig)
	}
	if c.Lower != "" && !path.IsAbs(c.Lower) {
		return fmt.Errorf("%w: lower layer %q must be an absolute path", ErrInvalidConfig, c.Lower)
	}
	if len(c.Args()) == 0 && c.Services == "" {
		return fmt.Errorf("%w: nothing to run: the image has no entrypoint or cmd and none was given", ErrInvalidConfig)
	}
	if c.WorkDir != "" && !path.IsAbs(c.WorkDir) {
		return fmt.Errorf("%w: workdir %q must be absolute", ErrInvalidConfig, c.WorkDir)
	}
	if err := checkUser(c.User); err != nil {
		return err
	}
	if c.CPUs < 0 || c.MemoryBytes < 0 || c.PidsLimit < 0 {
		return fmt.Errorf("%w: limits must not be negative", ErrInvalidConfig)
	}
	if c.MemoryBytes != 0 && c.MemoryBytes < 4<<20 {
		return fmt.Errorf("%w: memory limit below 4 MiB", ErrInvalidConfig)
	}
	if _, err := ParseRestartPolicy(c.Restart.Name); err != nil && c.Restart.Name != "" {
		return err
	}
	seen := map[string]bool{}
	for _, v := range c.Volumes {
		if seen[v.Target] {
			return fmt.Errorf("%w: two volumes at %s", ErrInvalidConfig, v.Target)
		}
		seen[v.Target] = true
		if v.Source == "" && v.SizeBytes < 1<<20 {
			return fmt.Errorf("%w: virtual disk at %s must be at least 1 MiB", ErrInvalidConfig, v.Target)
		}
	}
	if c.Corex != "" && c.Services == "" {
		return fmt.Errorf("%w: corex needs services", ErrInvalidConfig)
	}
	for _, e := range c.Env {
		if !strings.Contains(e, "=") {
			return fmt.Errorf("%w: env %q is not KEY=VALUE", ErrInvalidConfig, e)
		}
	}
	return nil
}

// parseUser accepts "", "uid" or "uid:gid" (numeric: nothing is read from
// the image); resolveUser also takes names.
func parseUser(s string) (uid, gid int, err error) {
	if s == "" {
		return 0, 0, nil
	}
	u, g, hasG := strings.Cut(s, ":")
	uid, err = strconv.Atoi(u)
	if err != nil || uid < 0 || uid > 65535 {
		return 0, 0, fmt.Errorf("%w: user %q: want numeric uid[:gid] below 65536", ErrInvalidConfig, s)
	}
	gid = uid
	if hasG {
		gid, err = strconv.Atoi(g)
		if err != nil || gid < 0 || gid > 65535 {
			return 0, 0, fmt.Errorf("%w: user %q: want numeric uid[:gid] below 65536", ErrInvalidConfig, s)
		}
	}
	return uid, gid, nil
}
