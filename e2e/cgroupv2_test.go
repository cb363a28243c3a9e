//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/zosgrid/zos/internal/zostest"
)

// The host runs cgroup v1 controllers; production nodes mostly run pure v2.
// This test boots this Debian's kernel under qemu (TCG: KVM does not work
// here) with cgroup v1 disabled (a pure cgroup2 mount), an initramfs that
// loads the modules, and a root disk holding the static zos and busybox,
// and runs containers with limits there, with user namespaces and the exec
// guard on as by default. Root in the VM has every capability, which root
// on this machine lacks (CAP_SYS_RESOURCE): the VM also grows a running
// container's virtual disk online.

// vmStage1 is the initramfs's /init: it loads the modules and moves to the
// root filesystem on the virtio disk (ext4, which supports the id-mapped
// mounts of container images; runc's pivot_root does not work from an
// initramfs), whose /init is vmStage2.
const vmStage1 = `#!/bin/busybox sh
export PATH=/bin
/bin/busybox --install -s /bin
mount -t devtmpfs dev /dev
for m in /lib/modules/*.ko; do insmod $m || echo "ZOSVM insmod-failed=$m"; done
i=0; while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
mkdir /newroot && mount -t ext4 /dev/vda /newroot || echo "ZOSVM mount-root-failed=yes"
umount /dev
exec switch_root /newroot /init
`

// vmStage2 runs zos containers with limits on the disk's busybox image
// /rootfs. It prints "ZOSVM key=value" lines for the test, then powers off.
const vmStage2 = `#!/bin/busybox sh
export PATH=/bin
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
mount -t cgroup2 cgroup2 /sys/fs/cgroup
echo "ZOSVM v1-mounts=$(grep -c ' cgroup ' /proc/mounts)"
echo "ZOSVM controllers=$(cat /sys/fs/cgroup/cgroup.controllers)"
mount -t tmpfs state /var/lib/zos
Z="zos container --root /var/lib/zos"
$Z run -d --name lim --memory 48M --pids-limit 20 --cpus 0.5 /rootfs -- sleep 300 || echo "ZOSVM run-failed=yes"
for f in memory.max pids.max cpu.max; do echo "ZOSVM $f=$(cat /sys/fs/cgroup/zos/lim/$f)"; done
echo "ZOSVM stats=$($Z stats lim | tr -d '\n ')"
$Z rm -f lim
echo "ZOSVM lim-cgroup-left=$(ls -d /sys/fs/cgroup/zos/lim 2>/dev/null)"
$Z run --name oom --memory 32M /rootfs -- sh -c 'dd if=/dev/zero of=/dev/null bs=128M count=1 && echo survived'
echo "ZOSVM oom-exit=$?"
echo "ZOSVM inspect=$($Z inspect oom | tr -d '\n ')"
$Z rm oom
echo "ZOSVM oom-cgroup-left=$(ls -d /sys/fs/cgroup/zos/oom 2>/dev/null)"
$Z run -d --name disk -v 8M:/data /rootfs -- sleep 300 || echo "ZOSVM disk-run-failed=yes"
$Z exec disk sh -c 'echo kept > /data/f; dd if=/dev/zero of=/data/big bs=1M count=12 2>/dev/null && echo ZOSVM disk-before=fits || echo ZOSVM disk-before=full'
echo "ZOSVM disk-inspect-before=$($Z inspect disk | tr -d '\n ')"
$Z grow disk /data 24M || echo "ZOSVM grow-failed=yes"
$Z exec disk sh -c 'rm /data/big; dd if=/dev/zero of=/data/big bs=1M count=12 2>/dev/null && echo ZOSVM disk-after=fits || echo ZOSVM disk-after=full; echo ZOSVM disk-kept=$(cat /data/f)'
echo "ZOSVM disk-inspect-after=$($Z inspect disk | tr -d '\n ')"
$Z rm -f disk
echo "ZOSVM disk-loop-left=$(cat /sys/block/loop*/loop/backing_file 2>/dev/null)"
echo "ZOSVM done=yes"
poweroff -f
`

func TestContainerCgroupV2InVM(t *testing.T) {
	qemu := zostest.RequiresBinary(t, "qemu-system-x86_64")
	bb := zostest.RequiresBinary(t, "busybox")
	kernel, modDir := vmKernel(t)
	zosPath := zosBin(t)
	for _, p := range []string{bb, zosPath} {
		if !staticELF(t, p) {
			t.Skipf("skipped: %s is not statically linked, the VM has no C library", p)
		}
	}
	mkfs := zostest.RequiresBinary(t, "mkfs.ext4")
	dir := t.TempDir()
	// The initramfs: busybox and the modules of overlayfs (the containers'
	// writable layer), the virtio disk and ext4 (the root filesystem), with
	// what they need, and loop (virtual disks). No FUSE (the image is a
	// directory).
	files := map[string]cpioFile{
		"init":        {mode: 0o755, data: []byte(vmStage1)},
		"bin/busybox": {mode: 0o755, path: bb},
	}
	mods := vmModules(t, modDir, "kernel/fs/overlayfs/overlay.ko", "kernel/drivers/virtio/virtio_pci.ko",
		"kernel/drivers/block/virtio_blk.ko", "kernel/crypto/crc32c_generic.ko", "kernel/fs/ext4/ext4.ko",
		"kernel/drivers/block/loop.ko")
	for i, m := range mods {
		files[fmt.Sprintf("lib/modules/%02d-%s", i, filepath.Base(m))] = cpioFile{mode: 0o644, path: m}
	}
	initrd := filepath.Join(dir, "initrd.cpio")
	writeCpio(t, initrd, files)
	// The root filesystem: zos, busybox, mkfs.ext4 (virtual disks; busybox
	// has none) with its libraries, and a busybox image for containers.
	root := filepath.Join(dir, "root")
	for _, d := range []string{"bin", "rootfs/bin", "dev", "proc", "sys", "tmp", "var/lib/zos"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	copyFile := func(src, dst string, mode os.FileMode) {
		b, err := os.ReadFile(src)
		if err == nil {
			err = os.MkdirAll(filepath.Join(root, filepath.Dir(dst)), 0o755)
		}
		if err == nil {
			err = os.WriteFile(filepath.Join(root, dst), b, mode)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	copyFile(zosPath, "bin/zos", 0o755)
	copyFile(bb, "bin/busybox", 0o755)
	copyFile(bb, "rootfs/bin/busybox", 0o755)
	// The VM has no C library: mkfs.ext4's libraries go at their paths.
	copyFile(mkfs, "bin/mkfs.ext4", 0o755)
	for _, lib := range lddDeps(t, mkfs) {
		copyFile(lib, strings.TrimPrefix(lib, "/"), 0o755)
	}
	for _, a := range []string{"sh", "dd", "sleep", "echo", "rm", "cat"} {
		os.Symlink("busybox", filepath.Join(root, "rootfs", "bin", a))
	}
	if err := os.WriteFile(filepath.Join(root, "init"), []byte(vmStage2), 0o755); err != nil {
		t.Fatal(err)
	}
	disk := filepath.Join(dir, "root.ext4")
	if out, err := exec.Command(mkfs, "-q", "-F", "-d", root, disk, "160M").CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v\n%s", err, out)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, qemu, "-machine", "q35,accel=tcg", "-cpu", "max", "-smp", "2", "-m", "1024",
		"-nographic", "-no-reboot", "-nodefaults", "-serial", "stdio",
		"-kernel", kernel, "-initrd", initrd, "-drive", "file="+disk+",if=virtio,format=raw",
		"-append", "console=ttyS0 panic=-1 rdinit=/init cgroup_no_v1=all systemd.unified_cgroup_hierarchy=1 quiet loglevel=3")
	var console bytes.Buffer
	cmd.Stdout, cmd.Stderr = &console, &console
	start := time.Now()
	err := cmd.Run()
	t.Logf("VM ran for %s", time.Since(start).Round(time.Second))
	defer func() {
		if t.Failed() {
			t.Logf("VM console:\n%s", console.String())
		}
	}()
	if err != nil {
		t.Fatalf("qemu: %v", err)
	}
	got := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)ZOSVM ([a-z.0-9-]+)=(.*?)\r?$`).FindAllStringSubmatch(console.String(), -1) {
		got[m[1]] = m[2]
	}
	if _, ok := got["done"]; !ok {
		t.Fatalf("the VM did not finish its script")
	}
	if got["v1-mounts"] != "0" || !strings.Contains(got["controllers"], "memory") || !strings.Contains(got["controllers"], "pids") {
		t.Errorf("not a pure cgroup v2 machine: v1 mounts %q, controllers %q", got["v1-mounts"], got["controllers"])
	}
	want := map[string]string{
		"memory.max": fmt.Sprint(48 << 20),
		"pids.max":   "20",
		"cpu.max":    "50000 100000",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	var st struct {
		MemoryLimit   uint64 `json:"memory_limit"`
		PidsLimit     uint64 `json:"pids_limit"`
		CgroupVersion int    `json:"cgroup_version"`
	}
	if err := json.Unmarshal([]byte(got["stats"]), &st); err != nil || st.CgroupVersion != 2 || st.MemoryLimit != 48<<20 || st.PidsLimit != 20 {
		t.Errorf("stats in the VM: %+v %v (%q)", st, err, got["stats"])
	}
	var info struct {
		Status struct {
			ExitCode  int  `json:"exit_code"`
			OOMKilled bool `json:"oom_killed"`
		} `json:"status"`
	}
	if err := json.Unmarshal([]byte(got["inspect"]), &info); err != nil || !info.Status.OOMKilled || got["oom-exit"] == "0" {
		t.Errorf("over-limit allocation: exit %s, inspect %+v %v", got["oom-exit"], info.Status, err)
	}
	if regexp.MustCompile(`(?m)^survived\r?$`).MatchString(console.String()) {
		t.Error("the allocation survived the memory limit")
	}
	// The disk grew while the container ran: the same process, and a write
	// that did not fit before fits after.
	var before, after struct {
		Status struct {
			Pid       int       `json:"pid"`
			Restarts  int       `json:"restarts"`
			StartedAt time.Time `json:"started_at"`
		} `json:"status"`
	}
	if err := json.Unmarshal([]byte(got["disk-inspect-before"]), &before); err != nil || before.Status.Pid == 0 {
		t.Errorf("disk container before the grow: %+v %v", before.Status, err)
	}
	if err := json.Unmarshal([]byte(got["disk-inspect-after"]), &after); err != nil || after.Status != before.Status {
		t.Errorf("the disk container restarted while growing: before %+v, after %+v %v", before.Status, after.Status, err)
	}
	if got["disk-before"] != "full" || got["disk-after"] != "fits" || got["disk-kept"] != "kept" {
		t.Errorf("12 MB on an 8 MB disk grown to 24 MB online: before %q, after %q, file kept %q",
			got["disk-before"], got["disk-after"], got["disk-kept"])
	}
	for _, k := range []string{"lim-cgroup-left", "oom-cgroup-left", "run-failed", "mount-root-failed",
		"disk-run-failed", "grow-failed", "disk-loop-left"} {
		if got[k] != "" {
			t.Errorf("%s: %q", k, got[k])
		}
	}
	for k, v := range got {
		if k == "insmod-failed" {
			t.Errorf("insmod failed: %s", v)
		}
	}
}

// vmKernel finds an installed kernel image with its modules; it skips the
// test when there is none (linux-image-amd64 is not installed).
func vmKernel(t *testing.T) (kernel, modDir string) {
	t.Helper()
	images, _ := filepath.Glob("/boot/vmlinuz-*")
	sort.Sort(sort.Reverse(sort.StringSlice(images)))
	for _, k := range images {
		md := filepath.Join("/lib/modules", strings.TrimPrefix(filepath.Base(k), "vmlinuz-"))
		if _, err := os.Stat(filepath.Join(md, "modules.dep")); err == nil {
			if f, err := os.Open(k); err == nil { // readable (Debian makes it 0644)
				f.Close()
				return k, md
			}
		}
	}
	t.Skipf("skipped: needs a kernel image in /boot with its modules (apt-get install linux-image-amd64); found %v", images)
	return "", ""
}

// vmModules lists the module files to load for mod (relative to modDir),
// dependencies first, from modules.dep.
func vmModules(t *testing.T, modDir string, mods ...string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(modDir, "modules.dep"))
	if err != nil {
		t.Fatal(err)
	}
	deps := map[string][]string{}
	for _, line := range strings.Split(string(b), "\n") {
		name, rest, ok := strings.Cut(line, ":")
		if ok {
			deps[name] = strings.Fields(rest)
		}
	}
	for _, mod := range mods {
		if _, ok := deps[mod]; !ok {
			t.Skipf("skipped: kernel in %s has no module %s (built in?)", modDir, mod)
		}
	}
	var order []string
	seen := map[string]bool{}
	var visit func(m string)
	visit = func(m string) {
		if seen[m] {
			return
		}
		seen[m] = true
		for _, d := range deps[m] {
			visit(d)
		}
		order = append(order, filepath.Join(modDir, m))
	}
	for _, mod := range mods {
		visit(mod)
	}
	return order
}

// staticELF says whether the program at path has no ELF interpreter.
func staticELF(t *testing.T, path string) bool {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false
		}
	}
	return true
}

// cpioFile is an initramfs entry: a host file (path), inline data, or a
// symlink; directories are made for every parent.
type cpioFile struct {
	mode uint32
	path string
	data []byte
	link string
}

// writeCpio writes files as a "newc" cpio archive, the initramfs format.
func writeCpio(t *testing.T, dest string, files map[string]cpioFile) {
	t.Helper()
	dirs := map[string]bool{"dev": true}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
		for d := filepath.Dir(n); d != "."; d = filepath.Dir(d) {
			dirs[d] = true
		}
	}
	sort.Strings(names)
	dirList := make([]string, 0, len(dirs))
	for d := range dirs {
		dirList = append(dirList, d)
	}
	sort.Strings(dirList) // parents sort before their children
	var buf bytes.Buffer
	ino := 1
	entry := func(name string, mode uint32, data []byte) {
		fmt.Fprintf(&buf, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
			ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name)+1, 0)
		ino++
		buf.WriteString(name)
		buf.WriteByte(0)
		for buf.Len()%4 != 0 {
			buf.WriteByte(0)
		}
		buf.Write(data)
		for buf.Len()%4 != 0 {
			buf.WriteByte(0)
		}
	}
	for _, d := range dirList {
		entry(d, 0o040755, nil)
	}
	for _, n := range names {
		f := files[n]
		switch {
		case f.link != "":
			entry(n, 0o120000|0o777, []byte(f.link))
		case f.path != "":
			b, err := os.ReadFile(f.path)
			if err != nil {
				t.Fatal(err)
			}
			entry(n, 0o100000|f.mode, b)
		default:
			entry(n, 0o100000|f.mode, f.data)
		}
	}
	entry("TRAILER!!!", 0, nil)
	if err := os.WriteFile(dest, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}
