//go:build e2e

package e2e

import (
	"archive/tar"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/zosgrid/zos/internal/zostest"
)

// Images shared by the hub and container tests: built with
// go-containerregistry, pushed to a real registry, imported through a real
// hub, the way a node gets them.

// hubServe starts `zos hub` (converting) on zdb namespaces of a fresh `zos
// zdb` and returns its base URL.
func hubServe(t *testing.T) string {
	t.Helper()
	zdbAddr := hubZdb(t, "hub-blocks", "hub-meta")
	hubAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	hub := startZos(t, "hub", "--listen", hubAddr, "--blocks", "zdb://"+zdbAddr+"/hub-blocks", "--meta", "zdb://"+zdbAddr+"/hub-meta", "--convert")
	waitTCP(t, hub, hubAddr)
	return "http://" + hubAddr
}

// hubFetch downloads user's flist named or tagged ref from the hub into dest.
func hubFetch(t *testing.T, hubURL, user, ref, dest string) {
	t.Helper()
	resp, err := http.Get(hubURL + "/api/v1/flists/" + user + "/" + ref)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("get %s from the hub: %s %v %s", ref, resp.Status, err, b)
	}
	if err := os.WriteFile(dest, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// hubPublish pushes img to the registry reg, imports it into the hub's
// store, signs the flist with keyFile, uploads it with tag and downloads it
// again by tag into dir: the returned .fl reads its blocks from the hub.
func hubPublish(t *testing.T, reg, hubURL, keyFile, tag string, img v1.Image, dir string) string {
	t.Helper()
	ref := reg + "/zos/" + tag
	hubPush(t, ref, img, nil)
	local := filepath.Join(dir, "import-"+strings.ReplaceAll(tag, ":", "-")+".fl")
	mustZos(t, "flist", "import", "--store", "hub+"+hubURL+"?key="+keyFile, "-o", local, ref)
	mustZos(t, "flist", "sign", local, "--key", keyFile)
	mustZos(t, "hub", "upload", local, "--hub", hubURL, "--key", keyFile, "--tag", tag)
	got := filepath.Join(dir, strings.ReplaceAll(tag, ":", "-")+".fl")
	hubFetch(t, hubURL, hubUser(t, keyFile), tag, got)
	return got
}

// containerBusyboxImage is hubBusyboxImage (its config runs `sh -c "cat
// /etc/hostname"` in /opt) with a third layer holding every busybox applet
// as a link in /bin and, in /srv/svc, a zinit-style service that crashes.
func containerBusyboxImage(t *testing.T) v1.Image {
	t.Helper()
	img := hubBusyboxImage(t)
	out, err := exec.Command(zostest.RequiresBinary(t, "busybox"), "--list").Output()
	if err != nil {
		t.Fatalf("busybox --list: %v", err)
	}
	var entries []hubEntry
	for _, applet := range strings.Fields(string(out)) {
		switch applet {
		case "busybox", "sh", "ls", "cat":
			continue // in the base layer
		}
		entries = append(entries, hubEntry{name: "bin/" + applet, typ: tar.TypeSymlink, link: "busybox"})
	}
	entries = append(entries,
		hubEntry{name: "srv/", typ: tar.TypeDir},
		hubEntry{name: "srv/svc/", typ: tar.TypeDir},
		hubEntry{name: "srv/svc/ticker.yaml", body: "exec: sh -c 'echo tick; exit 1'\nrestart: always\n"})
	img, err = mutate.AppendLayers(img, hubLayer(t, entries...))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// debianUser is the non-root user of debianImage.
const debianUser = "app"

// debianImage is a small dynamically linked Debian userland copied from this
// host: libraries and the dynamic loader (as ldd resolves them, with the
// merged-/usr symlinks), dash as /bin/sh, then a layer of coreutils. Its
// config runs `id; pwd; echo $GREETING` as the non-root user in his home directory.
func debianImage(t *testing.T) v1.Image {
	t.Helper()
	shell := []string{"/bin/dash"}
	coreutils := []string{"/bin/cat", "/usr/bin/id", "/bin/ls", "/bin/sleep", "/usr/bin/env", "/bin/chmod"}
	for _, p := range append(shell, coreutils...) {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("building the Debian test image needs %s from the host: %v", p, err)
		}
	}
	// Every layer adds an entry once, in the first layer that needs it.
	seen := map[string]bool{}
	base := &hostTree{t: t, seen: seen}
	for _, lib := range lddDeps(t, append(shell, coreutils...)...) {
		base.add(lib)
	}
	base.entries = append(base.entries,
		hubEntry{name: "etc/", typ: tar.TypeDir},
		hubEntry{name: "etc/passwd", body: "root:x:0:0:root:/root:/bin/sh\n" + debianUser + ":x:1000:1000:test user:/home/" + debianUser + ":/bin/sh\n"},
		hubEntry{name: "etc/group", body: "root:x:0:\n" + debianUser + ":x:1000:\n"},
		hubEntry{name: "home/", typ: tar.TypeDir},
		hubEntry{name: "home/" + debianUser + "/", typ: tar.TypeDir, mode: 0o750, uid: 1000, gid: 1000},
		hubEntry{name: "tmp/", typ: tar.TypeDir, mode: 0o1777},
		hubEntry{name: "root/", typ: tar.TypeDir, mode: 0o700},
	)
	sh := &hostTree{t: t, seen: seen}
	sh.add("/bin/dash")
	sh.entries = append(sh.entries, hubEntry{name: "usr/bin/sh", typ: tar.TypeSymlink, link: "dash"})
	cu := &hostTree{t: t, seen: seen}
	for _, p := range coreutils {
		cu.add(p)
	}
	return hubImage(t, v1.Config{
		Cmd:        []string{"/bin/sh", "-c", `id; pwd; echo "GREETING=$GREETING"`},
		Env:        []string{"PATH=/usr/local/bin:/usr/bin:/bin", "GREETING=hallo from debian"},
		WorkingDir: "/home/" + debianUser,
		User:       debianUser, // a name: resolved from the image's /etc/passwd
	}, hubLayer(t, base.entries...), hubLayer(t, sh.entries...), hubLayer(t, cu.entries...))
}

// lddDeps lists the shared libraries and the dynamic loader of programs, as
// ldd resolves them on this host.
func lddDeps(t *testing.T, programs ...string) []string {
	t.Helper()
	set := map[string]bool{}
	for _, p := range programs {
		out, err := exec.Command("ldd", p).Output()
		if err != nil {
			t.Skipf("ldd %s: %v", p, err)
		}
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Fields(line)
			switch {
			case len(f) >= 3 && f[1] == "=>" && strings.HasPrefix(f[2], "/"):
				set[f[2]] = true
			case len(f) >= 1 && strings.HasPrefix(f[0], "/"):
				set[f[0]] = true // the dynamic loader
			}
		}
	}
	libs := make([]string, 0, len(set))
	for l := range set {
		libs = append(libs, l)
	}
	sort.Strings(libs)
	return libs
}

// hostTree collects layer entries that copy host files with the directories
// and symlinks on their path (so /lib64/ld-linux-x86-64.so.2 arrives as the
// same chain of links as on the host).
type hostTree struct {
	t       *testing.T
	seen    map[string]bool
	entries []hubEntry
}

func (h *hostTree) emit(e hubEntry) {
	key := strings.TrimSuffix(e.name, "/")
	if h.seen[key] {
		return
	}
	h.seen[key] = true
	h.entries = append(h.entries, e)
}

// add copies the host file at the absolute path p, following symlinks.
func (h *hostTree) add(p string) {
	h.t.Helper()
	parts := strings.Split(strings.Trim(filepath.Clean(p), "/"), "/")
	cur := "/"
	for i, part := range parts {
		next := filepath.Join(cur, part)
		fi, err := os.Lstat(next)
		if err != nil {
			h.t.Fatal(err)
		}
		name := strings.TrimPrefix(next, "/")
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			link, err := os.Readlink(next)
			if err != nil {
				h.t.Fatal(err)
			}
			h.emit(hubEntry{name: name, typ: tar.TypeSymlink, link: link})
			target := link
			if !filepath.IsAbs(link) {
				target = filepath.Join(cur, link)
			}
			h.add(filepath.Join(append([]string{target}, parts[i+1:]...)...))
			return
		case fi.IsDir():
			h.emit(hubEntry{name: name + "/", typ: tar.TypeDir, mode: int64(fi.Mode().Perm())})
			cur = next
		case fi.Mode().IsRegular() && i == len(parts)-1:
			b, err := os.ReadFile(next)
			if err != nil {
				h.t.Fatal(err)
			}
			h.emit(hubEntry{name: name, body: string(b), mode: int64(fi.Mode().Perm())})
		default:
			h.t.Fatalf("%s: not a directory, symlink or regular file", next)
		}
	}
}
