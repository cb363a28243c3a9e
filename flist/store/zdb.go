package store

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/zosgrid/zos/flist"
)

// Zdb stores blocks in a 0-db namespace (or any RESP server with GET, SET
// and EXISTS), keyed by the raw 32-byte block id, as rfs does.
type Zdb struct {
	c      *redis.Client
	closed atomic.Bool
}

// ZdbConfig says where a zdb store lives.
type ZdbConfig struct {
	Network   string // "tcp" or "unix"
	Addr      string // host:port or socket path
	Namespace string // "" or "default": no SELECT
	Password  string // namespace password (SELECT ns password)
	PoolSize  int    // connections; 0 = 20, like rfs
}

// ParseZdbURL parses zdb://[user[:pass]@]host[:port][/namespace] and
// zdb:///unix/socket.
func ParseZdbURL(raw string) (ZdbConfig, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "zdb" {
		return ZdbConfig{}, fmt.Errorf("%w: %q is not a zdb:// URL", ErrBadURL, redactURL(raw))
	}
	var c ZdbConfig
	if u.Host == "" {
		if u.Path == "" {
			return c, fmt.Errorf("%w: %q has no host or socket", ErrBadURL, redactURL(raw))
		}
		c.Network, c.Addr = "unix", u.Path
	} else {
		port := u.Port()
		if port == "" {
			port = "9900"
		}
		c.Network, c.Addr = "tcp", net.JoinHostPort(u.Hostname(), port)
		c.Namespace = strings.Trim(u.Path, "/")
		if i := strings.LastIndex(c.Namespace, "/"); i >= 0 {
			c.Namespace = c.Namespace[i+1:]
		}
	}
	if p, ok := u.User.Password(); ok {
		c.Password = p
	}
	return c, nil
}

// NewZdb connects lazily to a zdb; connection errors show on first use.
func NewZdb(cfg ZdbConfig) *Zdb {
	pool := cfg.PoolSize
	if pool == 0 {
		pool = 20
	}
	opts := &redis.Options{
		Network:         cfg.Network,
		Addr:            cfg.Addr,
		PoolSize:        pool,
		Protocol:        2,
		DisableIdentity: true,
		MaxRetries:      2,
		// A 512 KiB block over a slow link, or a namespace SELECT that
		// checks a password hash, can take more than go-redis's 3s default.
		ReadTimeout:  15 * time.Second,
		WriteTimeout: 15 * time.Second,
	}
	if cfg.Namespace != "" && cfg.Namespace != "default" {
		ns, pw := cfg.Namespace, cfg.Password
		opts.OnConnect = func(ctx context.Context, cn *redis.Conn) error {
			args := []any{"SELECT", ns}
			if pw != "" {
				args = append(args, pw)
			}
			if err := cn.Do(ctx, args...).Err(); err != nil {
				return fmt.Errorf("store: zdb select namespace %q: %w", ns, err)
			}
			return nil
		}
	}
	return &Zdb{c: redis.NewClient(opts)}
}

// Get implements Store.
func (z *Zdb) Get(ctx context.Context, id flist.ID) ([]byte, error) {
	if z.closed.Load() {
		return nil, ErrClosed
	}
	s, err := z.c.Do(ctx, "GET", id[:]).Text()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("store: zdb get %s: %w", id, err)
	}
	return checkGet(id, []byte(s))
}

// Has implements Store.
func (z *Zdb) Has(ctx context.Context, id flist.ID) (bool, error) {
	if z.closed.Load() {
		return false, ErrClosed
	}
	n, err := z.c.Do(ctx, "EXISTS", id[:]).Int64()
	if err != nil {
		return false, fmt.Errorf("store: zdb exists %s: %w", id, err)
	}
	return n > 0, nil
}

// Missing returns the ids the namespace lacks, pipelining EXISTS in
// batches so a whole batch costs one round trip.
func (z *Zdb) Missing(ctx context.Context, ids []flist.ID) ([]flist.ID, error) {
	if z.closed.Load() {
		return nil, ErrClosed
	}
	var out []flist.ID
	for start := 0; start < len(ids); start += 1000 {
		chunk := ids[start:min(start+1000, len(ids))]
		p := z.c.Pipeline()
		cmds := make([]*redis.Cmd, len(chunk))
		for i, id := range chunk {
			cmds[i] = p.Do(ctx, "EXISTS", id[:])
		}
		if _, err := p.Exec(ctx); err != nil {
			return nil, fmt.Errorf("store: zdb exists (%d ids): %w", len(chunk), err)
		}
		for i, c := range cmds {
			n, err := c.Int64()
			if err != nil {
				return nil, fmt.Errorf("store: zdb exists %s: %w", chunk[i], err)
			}
			if n == 0 {
				out = append(out, chunk[i])
			}
		}
	}
	return out, nil
}

// Set implements Store. zdb replies to SET with the key (or nil when the
// value was already there); any non-error reply is success.
func (z *Zdb) Set(ctx context.Context, id flist.ID, data []byte) error {
	if z.closed.Load() {
		return ErrClosed
	}
	if !flist.CheckID(id, data) {
		return errCorrupt(id)
	}
	if err := z.c.Do(ctx, "SET", id[:], data).Err(); err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("store: zdb set %s: %w", id, err)
	}
	return nil
}

// Close implements Store.
func (z *Zdb) Close() error {
	if z.closed.Swap(true) {
		return nil
	}
	return z.c.Close()
}
