package supervise

import (
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ErrSeccompUnsupported is returned on architectures without a filter table.
var ErrSeccompUnsupported = errors.New("supervise: seccomp filter not available on this architecture")

// newNSFlags are the clone flags that create namespaces.
const newNSFlags = unix.CLONE_NEWNS | unix.CLONE_NEWCGROUP | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC |
	unix.CLONE_NEWUSER | unix.CLONE_NEWPID | unix.CLONE_NEWNET | unix.CLONE_NEWTIME

// BPF opcodes and seccomp return values.
const (
	bpfLdW  = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
	bpfJeq  = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
	bpfJset = unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K
	bpfRet  = unix.BPF_RET | unix.BPF_K

	retAllow = unix.SECCOMP_RET_ALLOW
	retEPERM = unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
	retNOSYS = unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)

	// offsets in struct seccomp_data
	offNr   = 0
	offArch = 4
	offArg0 = 16
	x32Bit  = 0x40000000
)

// Filter returns the BPF program: syscalls of other ABIs (32-bit, x32) and
// the denied list fail with EPERM, clone with a namespace flag fails with
// EPERM, clone3 fails with ENOSYS (its flags are out of seccomp's reach, and
// libc then falls back to clone), everything else is allowed.
func Filter() ([]unix.SockFilter, error) {
	if auditArch == 0 {
		return nil, ErrSeccompUnsupported
	}
	st := func(code uint16, k uint32) unix.SockFilter { return unix.SockFilter{Code: code, K: k} }
	jeq := func(k uint32, jt, jf uint8) unix.SockFilter {
		return unix.SockFilter{Code: bpfJeq, K: k, Jt: jt, Jf: jf}
	}
	p := []unix.SockFilter{
		st(bpfLdW, offArch),
		jeq(auditArch, 1, 0),
		st(bpfRet, retEPERM),
		st(bpfLdW, offNr),
		{Code: bpfJset, K: x32Bit, Jt: 0, Jf: 1},
		st(bpfRet, retEPERM),
	}
	for _, nr := range deniedNumbers {
		p = append(p, jeq(uint32(nr), 0, 1), st(bpfRet, retEPERM))
	}
	p = append(p,
		jeq(uint32(unix.SYS_CLONE3), 0, 1), st(bpfRet, retNOSYS),
		jeq(uint32(unix.SYS_CLONE), 0, 4),
		st(bpfLdW, offArg0), // low 32 bits of flags (little endian)
		unix.SockFilter{Code: bpfJset, K: newNSFlags, Jt: 0, Jf: 1},
		st(bpfRet, retEPERM),
		st(bpfRet, retAllow),
		st(bpfRet, retAllow),
	)
	return p, nil
}

// ApplySeccomp installs Filter on every thread of this process; children
// inherit it. The caller must have no_new_privs set or CAP_SYS_ADMIN.
func ApplySeccomp() error {
	p, err := Filter()
	if err != nil {
		return err
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("supervise: no_new_privs: %w", err)
	}
	prog := unix.SockFprog{Len: uint16(len(p)), Filter: &p[0]}
	_, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_TSYNC,
		uintptr(unsafe.Pointer(&prog)))
	if errno != 0 {
		return fmt.Errorf("supervise: seccomp: %w", errno)
	}
	return nil
}
