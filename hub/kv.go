package hub

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/redis/go-redis/v9"
)

// ErrHubBadBackend means a backend URL could not be used.
var ErrHubBadBackend = errors.New("hub: bad backend URL")

// kv is one namespace of a zdb (or a database of a redis server) reached
// over RESP: GET, SET, EXISTS, DEL.
type kv struct {
	c   *redis.Client
	zdb bool // a 0-db namespace (SCAN gives sizes and write times)
}

// openKV connects to a backend URL:
//
//	zdb://[:password@]host[:port]/namespace   a 0-db namespace (default port 9900);
//	                                          SELECT namespace [password] on every connection
//	redis://[:password@]host[:port]/db        a plain redis database (tests, small setups)
func openKV(ctx context.Context, raw string) (*kv, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %w", ErrHubBadBackend, raw, err)
	}
	// Long timeouts: a 512 KiB block on a busy link, or a SELECT that checks a
	// password hash, can take more than the 3 s default.
	opts := &redis.Options{Protocol: 2, DisableIdentity: true, PoolSize: 16, ReadTimeout: 15 * time.Second, WriteTimeout: 15 * time.Second}
	switch u.Scheme {
	case "zdb":
		host := u.Host
		if u.Port() == "" {
			host += ":9900"
		}
		ns := strings.Trim(u.Path, "/")
		if ns == "" || strings.Contains(ns, "/") {
			return nil, fmt.Errorf("%w: %q: want zdb://host:port/namespace", ErrHubBadBackend, raw)
		}
		pass, _ := u.User.Password()
		opts.Addr = host
		opts.OnConnect = func(ctx context.Context, cn *redis.Conn) error {
			args := []any{"SELECT", ns}
			if pass != "" {
				args = append(args, pass)
			}
			return cn.Do(ctx, args...).Err()
		}
	case "redis":
		opts.Addr = u.Host
		if u.Port() == "" {
			opts.Addr += ":6379"
		}
		if db := strings.Trim(u.Path, "/"); db != "" {
			n, err := strconv.Atoi(db)
			if err != nil {
				return nil, fmt.Errorf("%w: %q: database must be a number", ErrHubBadBackend, raw)
			}
			opts.DB = n
		}
		opts.Password, _ = u.User.Password()
	default:
		return nil, fmt.Errorf("%w: %q: scheme must be zdb or redis", ErrHubBadBackend, raw)
	}
	c := redis.NewClient(opts)
	if err := c.Do(ctx, "PING").Err(); err != nil {
		c.Close()
		return nil, fmt.Errorf("hub: backend %s: %w", u.Redacted(), err)
	}
	return &kv{c: c, zdb: u.Scheme == "zdb"}, nil
}

// get returns the value at k, or (nil, false) if there is none. The value
// must not be modified: it shares the reply's memory.
func (s *kv) get(ctx context.Context, k string) ([]byte, bool, error) {
	b, err := s.c.Do(ctx, "GET", k).Text()
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	// go-redis reads each bulk reply into a buffer of its own and returns
	// it as a string without copying; turning it back into bytes the same
	// way saves copying every served block once more. Nothing writes to
	// values (blocks and .fl parts are immutable, only read and sent).
	return unsafe.Slice(unsafe.StringData(b), len(b)), true, nil
}

func (s *kv) set(ctx context.Context, k string, v []byte) error {
	return s.c.Do(ctx, "SET", k, v).Err()
}

func (s *kv) exists(ctx context.Context, k string) (bool, error) {
	n, err := s.c.Do(ctx, "EXISTS", k).Int()
	return n > 0, err
}

// existsMany checks keys in one pipeline.
func (s *kv) existsMany(ctx context.Context, keys []string) ([]bool, error) {
	cmds := make([]*redis.Cmd, len(keys))
	_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			cmds[i] = p.Do(ctx, "EXISTS", k)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	out := make([]bool, len(keys))
	for i, c := range cmds {
		n, err := c.Int()
		if err != nil {
			return nil, err
		}
		out[i] = n > 0
	}
	return out, nil
}

func (s *kv) del(ctx context.Context, k string) error {
	err := s.c.Do(ctx, "DEL", k).Err()
	if errors.Is(err, redis.Nil) {
		return nil
	}
	return err
}

func (s *kv) close() error { return s.c.Close() }
