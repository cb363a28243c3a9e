package container

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestOpenEntrypoint: the program is found through PATH and through the
// image's absolute symlinks, resolved inside the image; a FIFO (which would
// block a reader) and a symlink out of the image are not opened.
func TestOpenEntrypoint(t *testing.T) {
	root := t.TempDir()
	host := t.TempDir()
	for _, d := range []string{"bin", "opt/bin"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	os.WriteFile(filepath.Join(root, "bin/busybox"), []byte("image busybox"), 0o755)
	os.Symlink("/bin/busybox", filepath.Join(root, "bin/echo")) // absolute, as images have
	os.WriteFile(filepath.Join(root, "opt/bin/tool"), []byte("image tool"), 0o755)
	os.WriteFile(filepath.Join(host, "secret"), []byte("host file"), 0o600)
	os.Symlink("../../"+filepath.Join(host, "secret"), filepath.Join(root, "bin/escape"))
	if err := unix.Mkfifo(filepath.Join(root, "bin/fifo"), 0o755); err != nil {
		t.Fatal(err)
	}
	read := func(c Config) string {
		f, err := openEntrypoint(root, &c)
		if err != nil {
			return ""
		}
		defer f.Close()
		b, _ := io.ReadAll(f)
		return string(b)
	}
	for _, tc := range []struct {
		name string
		c    Config
		want string
	}{
		{"absolute symlink", Config{Entrypoint: []string{"/bin/echo", "hi"}}, "image busybox"},
		{"PATH of the image", Config{Cmd: []string{"echo"}}, "image busybox"},
		{"PATH from the env", Config{Cmd: []string{"tool"}, Env: []string{"PATH=/opt/bin"}}, "image tool"},
		{"symlink out of the image", Config{Cmd: []string{"/bin/escape"}}, ""},
		{"fifo", Config{Cmd: []string{"/bin/fifo"}}, ""},
		{"relative", Config{Cmd: []string{"bin/echo"}}, ""},
	} {
		if got := read(tc.c); got != tc.want {
			t.Errorf("%s: read %q, want %q", tc.name, got, tc.want)
		}
	}
}
