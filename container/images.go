package container

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/zosgrid/zos/internal/dirlock"
	"golang.org/x/sys/unix"
)

// maxImageDownload bounds an image file fetched by URL: an flist is
// metadata only, its blocks are fetched lazily by the mount.
const maxImageDownload = 256 << 20

// imagesDir holds downloaded images and the mounts of provided images.
func (r *Runtime) imagesDir() string { return filepath.Join(r.root, "images") }

// FetchImage downloads the image file at url (a hub's
// /api/v1/flists/USER/NAME, or any http(s) URL of a .fl) into the image
// directory, named by its SHA-256 so that containers of the same image share
// one file (and one mount), and returns its path. Nothing is trusted yet: the
// caller checks the image.
//
// Until done is called the download is kept from PruneImages; call
// done(true) once a container referencing path was created, or done(false)
// when the attempt was given up: that removes the download, unless another
// container or download holds it (a look at every container's config,
// which a created container makes needless). Only the first call counts.
func (r *Runtime) FetchImage(ctx context.Context, url string) (path string, done func(created bool), err error) {
	hold, err := r.lockImages(unix.LOCK_SH)
	if err != nil {
		return "", nil, err
	}
	path, err = r.fetch(ctx, url)
	if err != nil {
		hold.Close()
		return "", nil, err
	}
	var once sync.Once
	return path, func(created bool) {
		once.Do(func() {
			hold.Close()
			if !created {
				r.dropDownload(path)
			}
		})
	}, nil
}

func (r *Runtime) fetch(ctx context.Context, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", fmt.Errorf("image %s: %w", url, err)
	}
	client := &http.Client{Timeout: 5 * time.Minute}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("image %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return "", fmt.Errorf("image %s: %s: %s", url, resp.Status, strings.TrimSpace(string(msg)))
	}
	tmp, err := os.CreateTemp(r.imagesDir(), ".download-*")
	if err != nil {
		return "", fmt.Errorf("container: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(resp.Body, maxImageDownload+1))
	if err != nil {
		return "", fmt.Errorf("image %s: %w", url, err)
	}
	if n > maxImageDownload {
		return "", fmt.Errorf("image %s: larger than %d bytes, not an flist", url, maxImageDownload)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("container: %w", err)
	}
	dest := filepath.Join(r.imagesDir(), hex.EncodeToString(h.Sum(nil))+".fl")
	if err := os.Rename(tmp.Name(), dest); err != nil {
		return "", fmt.Errorf("container: %w", err)
	}
	return dest, nil
}

// lockImages takes the lock of the downloads: shared while a download
// waits for its container to be created, exclusive to remove downloads.
func (r *Runtime) lockImages(how int) (*os.File, error) {
	f, err := dirlock.Take(r.imagesDir(), 0o711, how)
	if err != nil {
		return nil, fmt.Errorf("container: %w", err)
	}
	return f, nil
}

// isDownload says whether path is an image FetchImage stored: only those
// are ever removed (never an image file the user gave by path).
func (r *Runtime) isDownload(path string) bool {
	name, ok := strings.CutSuffix(filepath.Base(path), ".fl")
	if !ok || filepath.Dir(path) != r.imagesDir() || len(name) != 2*sha256.Size {
		return false
	}
	_, err := hex.DecodeString(name)
	return err == nil
}

// imageRefs returns the images of every container, running or not. It fails
// rather than miss one whose config cannot be read.
func (r *Runtime) imageRefs() (map[string]bool, error) {
	ids, err := r.ids()
	if err != nil {
		return nil, err
	}
	refs := map[string]bool{}
	for _, id := range ids {
		c, err := r.loadConfig(id)
		if errors.Is(err, ErrContainerNotFound) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, err
		}
		refs[c.Image] = true
	}
	return refs, nil
}

// dropDownload removes a downloaded image no container references, when
// no download is in flight (those may be of the same file); otherwise
// PruneImages removes it later.
func (r *Runtime) dropDownload(path string) {
	if !r.isDownload(path) {
		return
	}
	lock, err := r.lockImages(unix.LOCK_EX | unix.LOCK_NB)
	if err != nil {
		return
	}
	defer lock.Close()
	if refs, err := r.imageRefs(); err == nil && !refs[path] {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			r.log.Warn("cannot remove downloaded image", "path", path, "err", err)
		}
	}
}

// PrunedImage is a downloaded image PruneImages removed.
type PrunedImage struct {
	Path  string `json:"path"`
	Bytes int64  `json:"bytes"`
}

// PruneImages removes the downloaded images (see FetchImage) that no
// container, running or stopped, references, and the partial downloads of
// runs that were killed, and returns them. It waits for downloads whose
// container is not created yet (they hold the lock shared, so under the
// exclusive lock every partial download is abandoned).
func (r *Runtime) PruneImages(ctx context.Context) ([]PrunedImage, error) {
	lock, err := r.lockImages(unix.LOCK_EX)
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	refs, err := r.imageRefs()
	if err != nil {
		return nil, fmt.Errorf("container: prune: %w", err)
	}
	ents, err := os.ReadDir(r.imagesDir())
	if err != nil {
		return nil, fmt.Errorf("container: prune: %w", err)
	}
	var out []PrunedImage
	for _, e := range ents {
		p := filepath.Join(r.imagesDir(), e.Name())
		partial := strings.HasPrefix(e.Name(), ".download-")
		if !e.Type().IsRegular() || !(partial || r.isDownload(p)) || refs[p] {
			continue
		}
		if err := ctx.Err(); err != nil {
			return out, err
		}
		info, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		if err := os.Remove(p); err != nil {
			return out, fmt.Errorf("container: prune: %w", err)
		}
		out = append(out, PrunedImage{Path: p, Bytes: info.Size()})
	}
	return out, nil
}
