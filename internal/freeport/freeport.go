package freeport

import (
	"errors"
	"fmt"
	"net/netip"
	"syscall"
)

// Reservation keeps one TCP port reserved until Release.
type Reservation struct {
	fd   int
	addr netip.AddrPort
}

// Reserve reserves port on host (an IP address); port 0 asks the kernel for
// any free port. It fails if anything else is bound to the port, even a
// socket in TIME_WAIT or another reservation.
func Reserve(host string, port int) (*Reservation, error) {
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return nil, fmt.Errorf("reserve a port: host %q is not an IP address: %w", host, err)
	}
	if port < 0 || port > 65535 {
		return nil, fmt.Errorf("reserve a port: %d is out of range", port)
	}
	ip = ip.Unmap()
	family := syscall.AF_INET
	var sa syscall.Sockaddr = &syscall.SockaddrInet4{Port: port, Addr: ip.As4()}
	if ip.Is6() {
		family = syscall.AF_INET6
		sa = &syscall.SockaddrInet6{Port: port, Addr: ip.As16()}
	}
	fd, err := syscall.Socket(family, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("reserve a port: %w", err)
	}
	// Bind without SO_REUSEADDR so that the bind fails (or port 0 skips
	// the port) while any other socket holds it, then set SO_REUSEADDR so
	// that the child's listener may share it. The kernel checks the flag
	// of every socket on the port when the child binds and listens, and
	// lets a listener join a port whose other sockets all set it and do
	// not listen; it never picks such a port for port 0 or for the local
	// end of a connection.
	if err := syscall.Bind(fd, sa); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("reserve %s: %w", netip.AddrPortFrom(ip, uint16(port)), err)
	}
	if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("reserve a port: SO_REUSEADDR: %w", err)
	}
	bound, err := syscall.Getsockname(fd)
	if err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("reserve a port: %w", err)
	}
	switch b := bound.(type) {
	case *syscall.SockaddrInet4:
		port = b.Port
	case *syscall.SockaddrInet6:
		port = b.Port
	default:
		syscall.Close(fd)
		return nil, errors.New("reserve a port: socket bound to a non-IP address")
	}
	return &Reservation{fd: fd, addr: netip.AddrPortFrom(ip, uint16(port))}, nil
}

// Port is the reserved port number.
func (r *Reservation) Port() int { return int(r.addr.Port()) }

// Addr is host:port, ready for a --listen flag.
func (r *Reservation) Addr() string { return r.addr.String() }

// Release gives the port back. It is safe to call more than once.
func (r *Reservation) Release() error {
	if r.fd < 0 {
		return nil
	}
	err := syscall.Close(r.fd)
	r.fd = -1
	return err
}
