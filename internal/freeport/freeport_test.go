package freeport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"syscall"
	"testing"
	"unsafe"

	"github.com/zosgrid/zos/internal/zostest"
)

// TestListenerSharesReservedPort: a listener with SO_REUSEADDR (what Go's
// net.Listen and the servers we start set) binds the reserved port, again
// after a restart; a second reservation or a listener without SO_REUSEADDR
// is refused; after Release the port can be reserved again.
func TestListenerSharesReservedPort(t *testing.T) {
	r, err := Reserve("127.0.0.1", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	if r.Port() == 0 || r.Addr() != fmt.Sprintf("127.0.0.1:%d", r.Port()) {
		t.Fatalf("reservation %d %q", r.Port(), r.Addr())
	}
	for restart := range 2 {
		l, err := net.Listen("tcp", r.Addr())
		if err != nil {
			t.Fatalf("listen on the reserved port (start %d): %v", restart, err)
		}
		c, err := net.Dial("tcp", r.Addr())
		if err != nil {
			t.Fatalf("dial the listener on the reserved port: %v", err)
		}
		c.Close()
		l.Close()
	}
	if r2, err := Reserve("127.0.0.1", r.Port()); err == nil {
		r2.Release()
		t.Fatal("a reserved port was reserved twice")
	}
	noReuse := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 0) })
		return errors.Join(err, serr)
	}}
	if l, err := noReuse.Listen(context.Background(), "tcp", r.Addr()); err == nil {
		l.Close()
		t.Fatal("a listener without SO_REUSEADDR took the reserved port")
	}
	if err := r.Release(); err != nil {
		t.Fatal(err)
	}
	if err := r.Release(); err != nil {
		t.Fatalf("second release: %v", err)
	}
	r2, err := Reserve("127.0.0.1", r.Port())
	if err != nil {
		t.Fatalf("reserve a released port: %v", err)
	}
	r2.Release()
}

func TestReserveRejectsBadInput(t *testing.T) {
	for _, c := range []struct {
		host string
		port int
	}{{"localhost", 0}, {"", 0}, {"127.0.0.1", -1}, {"127.0.0.1", 70000}} {
		if r, err := Reserve(c.host, c.port); err == nil {
			r.Release()
			t.Errorf("Reserve(%q, %d) succeeded", c.host, c.port)
		}
	}
}

// TestKernelNeverHandsOutReservedPort narrows the kernel's automatic port
// range to two ports in a fresh network namespace and checks both ways the
// kernel picks a port by itself — a listener on port 0 and the local end of
// an outgoing connection — never take the reserved one, while a port merely
// listened on and closed (the racy way) is handed out at once.
func TestKernelNeverHandsOutReservedPort(t *testing.T) {
	zostest.RequiresRoot(t)
	done := make(chan error, 1)
	go func() {
		// The thread enters a namespace of its own and is discarded when the
		// goroutine ends locked, so no other goroutine ever runs in it.
		runtime.LockOSThread()
		done <- inFreshNetns(kernelPicksAroundReservation)
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func kernelPicksAroundReservation() error {
	const low, high = 40000, 40001
	if err := os.WriteFile("/proc/sys/net/ipv4/ip_local_port_range", fmt.Appendf(nil, "%d %d", low, high), 0o644); err != nil {
		return fmt.Errorf("narrow the port range: %w", err)
	}
	// The racy way: the port freed by a closed listener is picked again.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	freed := l.Addr().(*net.TCPAddr).Port
	l.Close()
	l, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	if got := l.Addr().(*net.TCPAddr).Port; got != freed {
		return fmt.Errorf("control: the kernel picked %d after %d was freed; the check below would prove nothing", got, freed)
	}
	l.Close()

	r, err := Reserve("127.0.0.1", 0)
	if err != nil {
		return err
	}
	defer r.Release()
	other := low + high - r.Port()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		got := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if got != other {
			return fmt.Errorf("listen on port 0 got %d; want %d, the only unreserved port", got, other)
		}
	}
	// A listener outside the range; its clients get local ports from it.
	srv, err := net.Listen("tcp", "127.0.0.1:30000")
	if err != nil {
		return err
	}
	defer srv.Close()
	for range 20 {
		c, err := net.Dial("tcp", srv.Addr().String())
		if err != nil {
			return err
		}
		a, err := srv.Accept()
		if err != nil {
			return err
		}
		got := c.LocalAddr().(*net.TCPAddr).Port
		// The server side closes first so that TIME_WAIT stays on port 30000.
		a.Close()
		c.Close()
		if got != other {
			return fmt.Errorf("an outgoing connection got local port %d; want %d", got, other)
		}
	}
	// With the other port taken too, the kernel reports exhaustion rather
	// than take the reserved port.
	c, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		return err
	}
	defer c.Close()
	if c2, err := net.Dial("tcp", srv.Addr().String()); err == nil {
		got := c2.LocalAddr().(*net.TCPAddr).Port
		c2.Close()
		return fmt.Errorf("a second connection got local port %d although the only free one is reserved", got)
	}
	return nil
}

// inFreshNetns runs fn on the calling (locked) thread after moving it into
// a new network namespace with loopback up.
func inFreshNetns(fn func() error) error {
	if err := syscall.Unshare(syscall.CLONE_NEWNET); err != nil {
		return fmt.Errorf("unshare the network namespace: %w", err)
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	var ifr struct {
		name  [syscall.IFNAMSIZ]byte
		flags uint16
		_     [22]byte
	}
	copy(ifr.name[:], "lo")
	ifr.flags = syscall.IFF_UP | syscall.IFF_LOOPBACK | syscall.IFF_RUNNING
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), syscall.SIOCSIFFLAGS, uintptr(unsafe.Pointer(&ifr))); errno != 0 {
		return fmt.Errorf("bring loopback up: %w", errno)
	}
	return fn()
}
