package overlay

import (
	"context"
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

// logf formats only when the level is enabled: yggdrasil logs on busy paths.
func (g logger) logf(level slog.Level, f string, a ...any) {
	if g.l.Enabled(context.Background(), level) {
		g.l.Log(context.Background(), level, "yggdrasil", "msg", fmt.Sprintf(f, a...))
	}
}

func (g logger) logln(level slog.Level, a ...any) {
	if g.l.Enabled(context.Background(), level) {
		g.l.Log(context.Background(), level, "yggdrasil", "msg", msg(a...))
	}
}

func (g logger) Printf(f string, a ...any) { g.logf(slog.LevelDebug, f, a...) }
func (g logger) Println(a ...any)          { g.logln(slog.LevelDebug, a...) }
func (g logger) Infof(f string, a ...any)  { g.logf(slog.LevelDebug, f, a...) }
func (g logger) Infoln(a ...any)           { g.logln(slog.LevelDebug, a...) }
func (g logger) Warnf(f string, a ...any)  { g.logf(slog.LevelWarn, f, a...) }
func (g logger) Warnln(a ...any)           { g.logln(slog.LevelWarn, a...) }
func (g logger) Errorf(f string, a ...any) { g.logf(slog.LevelError, f, a...) }
func (g logger) Errorln(a ...any)          { g.logln(slog.LevelError, a...) }
func (g logger) Debugf(f string, a ...any) { g.logf(slog.LevelDebug, f, a...) }
func (g logger) Debugln(a ...any)          { g.logln(slog.LevelDebug, a...) }
func (g logger) Traceln(a ...any)          {}
