package container

import (
	"context"
	"log/slog"
	"path/filepath"

	"github.com/zosgrid/zos/container/guard"
)

// startGuard watches the container's overlay and lets only the lower
// layer's programs run.
func (r *Runtime) startGuard(_ context.Context, c *Config, log *slog.Logger) (guardHandle, error) {
	allowed, err := guard.HashTree(c.Lower)
	if err != nil {
		return nil, err
	}
	return guard.Start(filepath.Join(r.dir(c.ID), "rootfs"), allowed, log)
}
