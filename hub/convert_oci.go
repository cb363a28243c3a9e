package hub

import (
	"context"
	"io"
	"strings"

	"github.com/zosgrid/zos/flist"
	"github.com/zosgrid/zos/flist/pack"
	"github.com/zosgrid/zos/flist/pack/oci"
	"github.com/zosgrid/zos/hub/hubapi"
)

// OCIConvert returns the hub's built-in conversion: pull the image (registry
// references only: a hub does not read its own disk on a user's say), flatten
// it and pack it with its blocks going straight into the hub's block
// namespace. publicURL, when set, is saved in the flist as its store route
// (publicURL + /blocks) so mounts find the blocks at the hub.
func (s *Server) OCIConvert(publicURL string) ConvertFunc {
	return func(ctx context.Context, req ConvertRequest, out string, progress func(ConvertProgress)) error {
		src := req.Image
		if !strings.HasPrefix(src, "docker://") {
			src = "docker://" + src
		}
		opts := oci.ImportOptions{
			// NoKeychain: a user's request never pulls with the hub's own
			// registry credentials.
			Source:  oci.SourceOptions{Platform: req.Platform, Username: req.Username, Password: req.Password, NoKeychain: true},
			TempDir: s.cfg.TempDir,
			Progress: func(p oci.Progress) {
				progress(ConvertProgress{Phase: "pull", Done: p.Done, Total: p.Total})
			},
		}
		popts := pack.Options{Store: blockStore{s}, Logger: s.log}
		if publicURL != "" {
			popts.Routes = []flist.Route{{Start: 0, End: 0xff, URL: strings.TrimRight(publicURL, "/") + hubapi.StorePath}}
		}
		_, _, err := oci.Import(ctx, src, opts, func(ctx context.Context, r io.Reader, cfg []byte) error {
			popts.ImageConfig = cfg
			popts.Progress = func(st pack.Stats) {
				progress(ConvertProgress{Phase: "pack", Done: st.Bytes})
			}
			_, err := pack.Tar(ctx, r, out, popts)
			return err
		})
		return err
	}
}
