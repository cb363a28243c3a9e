package container

import (
	"log/slog"
	"path/filepath"

	"github.com/zosgrid/zos/container/guard"
)

// startGuard watches the container's overlay and lets only the image's
// programs run: those of policy, or else every executable of lower.
func (r *Runtime) startGuard(c *Config, lower string, policy *ExecPolicy, log *slog.Logger) (guardHandle, error) {
	if policy == nil {
		allowed, err := guard.HashTree(lower)
		if err != nil {
			return nil, err
		}
		policy = &ExecPolicy{Allowed: allowed}
	}
	return guard.Start(filepath.Join(r.dir(c.ID), "rootfs"), policy.Digest, policy.Allowed, log)
}
