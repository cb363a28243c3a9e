package overlay

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
)

type netIP = net.IP

func addrOf(ip net.IP) netip.Addr {
	a, _ := netip.AddrFromSlice(ip)
	return a.Unmap()
}

// logger adapts slog to the logger interface yggdrasil-go takes. Yggdrasil
// logs at info what we consider debug detail.
type logger struct{ l *slog.Logger }

func msg(args ...any) string { return strings.TrimSpace(fmt.Sprintln(args...)) }

func (g logger) Printf(f string, a ...any) { g.l.Debug(fmt.Sprintf(f, a...)) }
func (g logger) Println(a ...any)          { g.l.Debug(msg(a...)) }
func (g logger) Infof(f string, a ...any)  { g.l.Debug(fmt.Sprintf(f, a...)) }
func (g logger) Infoln(a ...any)           { g.l.Debug(msg(a...)) }
func (g logger) Warnf(f string, a ...any)  { g.l.Warn(fmt.Sprintf(f, a...)) }
func (g logger) Warnln(a ...any)           { g.l.Warn(msg(a...)) }
func (g logger) Errorf(f string, a ...any) { g.l.Error(fmt.Sprintf(f, a...)) }
func (g logger) Errorln(a ...any)          { g.l.Error(msg(a...)) }
func (g logger) Debugf(f string, a ...any) { g.l.Debug(fmt.Sprintf(f, a...)) }
func (g logger) Debugln(a ...any)          { g.l.Debug(msg(a...)) }
func (g logger) Traceln(a ...any)          {}
