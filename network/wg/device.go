package wg

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"

	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun"

	"github.com/zosgrid/zos/network/internal/netnsx"
)

// DefaultMTU leaves room for the WireGuard header inside a 1500-byte underlay.
const DefaultMTU = 1420

// DeviceConfig says where a device lives.
type DeviceConfig struct {
	// TunName is the interface name of the TUN (at most 15 bytes).
	TunName string
	// TunNS is the namespace path the TUN is created in ("" = ours).
	TunNS string
	// SocketNS is the namespace path the UDP socket lives in ("" = ours).
	// wireguard-go rebinds from its own goroutines when the TUN goes down
	// and up again, and those run in the process's namespace: a process
	// that must survive that should itself live in SocketNS.
	SocketNS string
	// Socket is the path of the UAPI Unix socket to serve.
	Socket string
	// MTU of the TUN; 0 means DefaultMTU.
	MTU    int
	Logger *slog.Logger
}

// Device is a running wireguard-go device serving its UAPI.
type Device struct {
	cfg  DeviceConfig
	dev  *device.Device
	ln   net.Listener
	log  *slog.Logger
	wg   sync.WaitGroup
	once sync.Once
}

// Start creates the TUN inside cfg.TunNS, starts a wireguard-go device on it
// whose sockets are opened in cfg.SocketNS, and serves the UAPI on cfg.Socket.
// The device has no key and no peers until configured through the UAPI.
func Start(cfg DeviceConfig) (*Device, error) {
	if cfg.TunName == "" || len(cfg.TunName) > 15 {
		return nil, fmt.Errorf("wg: bad interface name %q", cfg.TunName)
	}
	if cfg.MTU == 0 {
		cfg.MTU = DefaultMTU
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "wg", "tun", cfg.TunName)

	var tdev tun.Device
	if err := netnsx.Do(cfg.TunNS, func() error {
		var err error
		tdev, err = tun.CreateTUN(cfg.TunName, cfg.MTU)
		return err
	}); err != nil {
		return nil, fmt.Errorf("wg: create tun %s: %w", cfg.TunName, err)
	}
	if cfg.TunNS != "" {
		tdev = nsTUN{Device: tdev, ns: cfg.TunNS}
	}
	d := &Device{cfg: cfg, log: log}
	wlog := &device.Logger{
		Verbosef: func(string, ...any) {},
		Errorf: func(format string, args ...any) {
			log.Debug("wireguard-go", "msg", fmt.Sprintf(format, args...))
		},
	}
	if err := netnsx.Do(cfg.SocketNS, func() error {
		d.dev = device.NewDevice(tdev, conn.NewDefaultBind(), wlog)
		return d.dev.Up()
	}); err != nil {
		if d.dev != nil {
			d.dev.Close()
		} else {
			tdev.Close()
		}
		return nil, fmt.Errorf("wg: device up: %w", err)
	}
	os.Remove(cfg.Socket)
	ln, err := net.Listen("unix", cfg.Socket)
	if err != nil {
		d.dev.Close()
		return nil, fmt.Errorf("wg: listen uapi: %w", err)
	}
	if err := os.Chmod(cfg.Socket, 0o600); err != nil {
		ln.Close()
		d.dev.Close()
		return nil, fmt.Errorf("wg: uapi socket: %w", err)
	}
	d.ln = ln
	d.wg.Add(1)
	go d.serve()
	return d, nil
}

func (d *Device) serve() {
	defer d.wg.Done()
	for {
		c, err := d.ln.Accept()
		if err != nil {
			return
		}
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			// A listen_port change rebinds the UDP socket on this thread,
			// so it must be in the socket namespace.
			err := netnsx.Do(d.cfg.SocketNS, func() error {
				d.dev.IpcHandle(c)
				return nil
			})
			if err != nil {
				d.log.Warn("uapi request failed", "err", err)
				c.Close()
			}
		}()
	}
}

// Done is closed when the device stops, for example because its TUN was
// deleted together with its namespace.
func (d *Device) Done() <-chan struct{} { return d.dev.Wait() }

// Close stops the device and removes the UAPI socket.
func (d *Device) Close() error {
	d.once.Do(func() {
		d.ln.Close()
		d.dev.Close()
		os.Remove(d.cfg.Socket)
	})
	d.wg.Wait()
	return nil
}

// Run starts a device and blocks until ctx ends or the device stops.
func Run(ctx context.Context, cfg DeviceConfig) error {
	d, err := Start(cfg)
	if err != nil {
		return err
	}
	defer d.Close()
	select {
	case <-ctx.Done():
		return nil
	case <-d.Done():
		return errors.New("wg: device stopped")
	}
}

// Socket is the path of the device's UAPI socket.
func (d *Device) Socket() string { return d.cfg.Socket }

// nsTUN is a TUN living in another namespace than this process. wireguard-go
// reads the MTU with an ioctl by interface name from whichever thread asks,
// which would look the name up in this process's namespace: it would fail
// (and the device would assume 1420 whatever the TUN's MTU) or, worse, read
// an unrelated interface of the same name. Everything else it does goes
// through the TUN's file descriptor or a netlink socket opened at creation,
// in the right namespace.
type nsTUN struct {
	tun.Device
	ns string
}

// MTU reads the TUN's MTU inside its namespace.
func (t nsTUN) MTU() (int, error) {
	var mtu int
	err := netnsx.Do(t.ns, func() error {
		var err error
		mtu, err = t.Device.MTU()
		return err
	})
	return mtu, err
}
