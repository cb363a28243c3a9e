package server

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sys/unix"

	"github.com/zosgrid/zos/internal/zostest"
	"github.com/zosgrid/zos/resp"
	"github.com/zosgrid/zos/zdb"
)

type testServer struct {
	srv  *Server
	db   *zdb.DB
	addr string
	opts zdb.Options
}

func startServer(t *testing.T, o zdb.Options, cfg Config) *testServer {
	t.Helper()
	zostest.CheckLeaks(t)
	if o.DataDir == "" {
		dir := t.TempDir()
		o.DataDir, o.IndexDir = filepath.Join(dir, "data"), filepath.Join(dir, "index")
	}
	db, err := zdb.Open(o)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Port = 0
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(testLog{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	srv, err := New(db, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv(eventLoopEnv) != "" {
		srv.maxBlocking.Store(0) // every waiting client goes to the loop
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		db.Close()
	})
	return &testServer{srv: srv, db: db, addr: srv.Addrs()[0].String(), opts: o}
}

// testLog sends server warnings to the test's log.
type testLog struct{ t *testing.T }

func (l testLog) Write(b []byte) (int, error) {
	l.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

func (ts *testServer) client(t *testing.T) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: ts.addr, Protocol: 2, DisableIdentity: true, PoolSize: 4})
	t.Cleanup(func() { c.Close() })
	return c
}

// conn is one sticky connection, for commands that change session state.
func (ts *testServer) conn(t *testing.T) *redis.Conn {
	c := ts.client(t).Conn()
	t.Cleanup(func() { c.Close() })
	return c
}

var bg = context.Background()

func expect(t *testing.T, cmd redis.Cmder, want string) {
	t.Helper()
	var got string
	switch c := cmd.(type) {
	case *redis.Cmd:
		v, err := c.Result()
		got = render(v, err)
	default:
		got = fmt.Sprint(cmd.Err())
	}
	if got != want {
		a := fmt.Sprint(cmd.Args())
		if len(a) > 200 {
			a = a[:200] + "..."
		}
		t.Fatalf("%s: got %s, want %s", a, got, want)
	}
}

func render(v any, err error) string {
	if err == redis.Nil {
		return "nil"
	}
	if err != nil {
		return "ERR " + err.Error()
	}
	switch x := v.(type) {
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = render(e, nil)
		}
		return "[" + strings.Join(parts, " ") + "]"
	case nil:
		return "nil"
	}
	return fmt.Sprint(v)
}

func do(c interface {
	Do(context.Context, ...any) *redis.Cmd
}, args ...any) *redis.Cmd {
	return c.Do(bg, args...)
}

func TestBasicCommands(t *testing.T) {
	ts := startServer(t, zdb.Options{Mode: zdb.ModeMix}, Config{})
	c := ts.client(t)
	expect(t, do(c, "PING"), "PONG")
	expect(t, do(c, "SET", "k", "v"), "k")   // SET replies with the key
	expect(t, do(c, "SET", "k", "v"), "nil") // identical value: nothing written
	expect(t, do(c, "GET", "k"), "v")
	expect(t, do(c, "se", "k2", "v2"), "k2") // prefix-matched command names
	expect(t, do(c, "g", "k2"), "v2")
	expect(t, do(c, "get", "k2"), "v2")
	expect(t, do(c, "MGET", "k", "nope", "k2"), "[v nil v2]")
	expect(t, do(c, "EXISTS", "k"), "1")
	expect(t, do(c, "EXISTS", "nope"), "0")
	expect(t, do(c, "CHECK", "k"), "1")
	expect(t, do(c, "CHECK", "nope"), "nil")
	expect(t, do(c, "LENGTH", "k2"), "2")
	expect(t, do(c, "LENGTH", "nope"), "nil")
	kt, err := do(c, "KEYTIME", "k").Int64()
	if err != nil || time.Since(time.Unix(kt, 0)) > time.Minute {
		t.Fatalf("keytime %d %v", kt, err)
	}
	expect(t, do(c, "DBSIZE"), "2")
	expect(t, do(c, "DEL", "k"), "OK")
	expect(t, do(c, "DEL", "k"), "ERR Key not found")
	expect(t, do(c, "GET", "k"), "nil")
	expect(t, do(c, "DBSIZE"), "1")
	expect(t, do(c, "FOO"), "ERR Command not supported")
	expect(t, do(c, "GET"), "ERR Unexpected arguments")
	expect(t, do(c, "GET", ""), "ERR Invalid argument")
	expect(t, do(c, "SET", "", "x"), "ERR Invalid argument, key needed")
	expect(t, do(c, "SET", strings.Repeat("k", 256), "x"), "ERR Key too large")
	expect(t, do(c, "SET", "a", "b", "c", "d"), "ERR Unexpected arguments")
	expect(t, do(c, "STOP"), "ERR Unauthorized")
	expect(t, do(c, "KSCAN", "a"), "ERR Command disabled in release code, not yet available")
	expect(t, do(c, "*"), "ERR This is not a valid command")
	tm, err := do(c, "TIME").Slice()
	if err != nil || len(tm) != 2 {
		t.Fatalf("time: %v %v", tm, err)
	}
	info, err := do(c, "INFO").Text()
	if err != nil || !strings.Contains(info, "data_version: 3") || !strings.Contains(info, "index_version: 4") {
		t.Fatalf("info: %q %v", info, err)
	}
	// Admin-only timestamp argument.
	expect(t, do(c, "SET", "old", "v", "1000"), "old")
	expect(t, do(c, "KEYTIME", "old"), "1000")
	expect(t, do(c, "DEL", "old", "1001"), "OK")
	expect(t, do(c, "SET", "old", "v", "soon"), "ERR Invalid argument")
	expect(t, do(c, "DEL", "old", "-1"), "ERR Invalid argument")
	expect(t, do(c, "DEL", "old", "1", "2"), "ERR Unexpected arguments")
}

func TestScanHistoryKeycur(t *testing.T) {
	ts := startServer(t, zdb.Options{Mode: zdb.ModeMix}, Config{})
	c := ts.client(t)
	expect(t, do(c, "SCAN"), "ERR No more data")
	for _, kv := range [][2]string{{"a", "1"}, {"b", "x"}, {"a", "2"}, {"c", "y"}} {
		do(c, "SET", kv[0], kv[1])
	}
	// Walk SCAN through its cursor.
	var keys []string
	reply, err := do(c, "SCAN").Slice()
	for err == nil {
		for _, it := range reply[1].([]any) {
			keys = append(keys, it.([]any)[0].(string))
		}
		reply, err = do(c, "SCAN", reply[0]).Slice()
	}
	if err.Error() != "No more data" || fmt.Sprint(keys) != "[b a c]" {
		t.Fatalf("scan keys %v, end %v", keys, err)
	}
	r, _ := do(c, "RSCAN").Slice()
	if it := r[1].([]any); len(it) != 3 || it[0].([]any)[0] != "c" || it[0].([]any)[1] != int64(1) {
		t.Fatalf("rscan %v", r)
	}
	cur, err := do(c, "KEYCUR", "a").Text()
	if err != nil || len(cur) != zdb.KeyCursorSize {
		t.Fatalf("keycur %q %v", cur, err)
	}
	r, _ = do(c, "SCAN", cur).Slice()
	if it := r[1].([]any); len(it) != 1 || it[0].([]any)[0] != "c" {
		t.Fatalf("scan from keycur %v", r)
	}
	expect(t, do(c, "KEYCUR", "nope"), "ERR Key not found")
	expect(t, do(c, "SCAN", "short"), "ERR Invalid key format")
	h, err := do(c, "HISTORY", "a").Slice()
	if err != nil || h[2] != "2" || h[0] == nil {
		t.Fatalf("history %v %v", h, err)
	}
	h, err = do(c, "HISTORY", "a", h[0]).Slice()
	if err != nil || h[2] != "1" || h[0] != nil {
		t.Fatalf("older history %v %v", h, err)
	}
	expect(t, do(c, "HISTORY", "nope"), "ERR Key not found")
	expect(t, do(c, "HISTORY", "b", "\x00\x00\x00\x00\x00\x00\x00\x00"), "ERR No more history")
	expect(t, do(c, "HISTORY", "b", "\x00\x00\x00\x00\x1d\x00\x00\x00"), "ERR Invalid arguments (invalid key)")
}

func TestNamespacesAndAuth(t *testing.T) {
	ts := startServer(t, zdb.Options{Mode: zdb.ModeMix}, Config{Admin: "adm"})
	c := ts.conn(t)
	expect(t, do(c, "NSNEW", "ns1"), "ERR Permission denied")
	expect(t, do(c, "AUTH", "bad"), "ERR Access denied")
	// SECURE challenge: sha1("<nonce>:<password>").
	nonce, err := do(c, "AUTH", "SECURE", "CHALLENGE").Text()
	if err != nil || len(nonce) != 16 {
		t.Fatalf("challenge %q %v", nonce, err)
	}
	sum := sha1.Sum([]byte(nonce + ":adm"))
	expect(t, do(c, "AUTH", "SECURE", hex.EncodeToString(sum[:])), "OK")
	expect(t, do(c, "AUTH", "SECURE", hex.EncodeToString(sum[:])), "ERR No CHALLENGE requested, secure authentication not available")
	expect(t, do(c, "NSNEW", "ns1"), "OK")
	expect(t, do(c, "NSNEW", "ns1"), "ERR This namespace is not available")
	expect(t, do(c, "NSNEW", "default"), "ERR This name is not allowed")
	expect(t, do(c, "NSNEW", "a/b"), "ERR This name is not allowed")
	expect(t, do(c, "NSLIST"), "[default ns1]")
	expect(t, do(c, "NSSET", "ns1", "password", "pw"), "OK")
	expect(t, do(c, "NSSET", "ns1", "maxsize", "10"), "OK")
	expect(t, do(c, "NSSET", "ns1", "bogus", "1"), "ERR Invalid property")
	expect(t, do(c, "NSSET", "default", "maxsize", "1"), "ERR Cannot update default namespace")
	expect(t, do(c, "NSSET", "nope", "worm", "1"), "ERR Namespace not found")
	info, _ := do(c, "NSINFO", "ns1").Text()
	for _, want := range []string{"name: ns1", "password: yes", "public: yes", "data_limits_bytes: 10", "mode: userkey"} {
		if !strings.Contains(info, want) {
			t.Fatalf("nsinfo lacks %q:\n%s", want, info)
		}
	}
	expect(t, do(c, "NSINFO", "nope"), "ERR Namespace not found")

	// A second, anonymous client.
	a := ts.conn(t)
	expect(t, do(a, "SELECT", "nope"), "ERR Namespace not found")
	expect(t, do(a, "SELECT", "ns1"), "OK") // public + password: read-only
	expect(t, do(a, "SET", "k", "v"), "ERR Namespace is in read-only mode")
	expect(t, do(a, "SELECT", "ns1", "wrong"), "ERR Access denied")
	expect(t, do(a, "SELECT", "ns1", "pw"), "OK")
	expect(t, do(a, "SET", "k", "0123456789"), "k")
	expect(t, do(a, "SET", "k2", "x"), "ERR No space left on this namespace")
	expect(t, do(a, "FLUSH"), "ERR Flushing public namespace denied")
	expect(t, do(c, "NSSET", "ns1", "public", "0"), "OK")
	b := ts.conn(t)
	expect(t, do(b, "SELECT", "ns1"), "ERR Namespace protected and private")
	// SECURE select needs the clear password, kept only under --compat-passwords.
	nonce, _ = do(b, "AUTH", "SECURE", "CHALLENGE").Text()
	sum = sha1.Sum([]byte(nonce + ":pw"))
	expect(t, do(b, "SELECT", "ns1", "SECURE", hex.EncodeToString(sum[:])), "ERR Access denied (SECURE needs a password kept with --compat-passwords)")
	expect(t, do(a, "FLUSH"), "OK")
	expect(t, do(a, "DBSIZE"), "0")

	expect(t, do(c, "NSSET", "ns1", "worm", "1"), "OK")
	expect(t, do(a, "SET", "w", "1"), "w")
	expect(t, do(a, "SET", "w", "2"), "ERR Namespace is protected by worm mode")
	expect(t, do(a, "DEL", "w"), "ERR Cannot delete a key when namespace is in worm mode")
	expect(t, do(c, "NSSET", "ns1", "lock", "1"), "OK")
	expect(t, do(a, "SET", "x", "1"), "ERR Namespace is temporarily locked (read-only)")
	expect(t, do(a, "GET", "w"), "1")
	expect(t, do(c, "NSSET", "ns1", "freeze", "1"), "OK")
	expect(t, do(a, "GET", "w"), "ERR Namespace is temporarily frozen (read-write disabled)")
	expect(t, do(c, "NSSET", "ns1", "freeze", "0"), "OK")
	expect(t, do(c, "NSSET", "ns1", "lock", "0"), "OK")

	expect(t, do(c, "NSDEL", "default"), "ERR Cannot remove default namespace")
	expect(t, do(c, "NSDEL", "nope"), "ERR This namespace doesn't exists")
	expect(t, do(c, "SELECT", "ns1", "pw"), "OK")
	expect(t, do(c, "NSDEL", "ns1"), "ERR Cannot remove namespace you're currently using.")
	expect(t, do(c, "SELECT", "default"), "OK")
	expect(t, do(c, "NSDEL", "ns1"), "OK")
	// The client still attached to the deleted namespace is told and dropped.
	expect(t, do(a, "GET", "w"), "ERR Your active namespace is not available anymore (probably removed).")
}

func TestProtectDefault(t *testing.T) {
	ts := startServer(t, zdb.Options{Mode: zdb.ModeMix}, Config{Admin: "adm", Protect: true})
	c := ts.conn(t)
	expect(t, do(c, "SET", "k", "v"), "ERR Namespace is in read-only mode")
	expect(t, do(c, "SELECT", "default", "adm"), "OK")
	expect(t, do(c, "SET", "k", "v"), "k")
}

func TestCompatPasswordSecureSelect(t *testing.T) {
	ts := startServer(t, zdb.Options{Mode: zdb.ModeMix, CompatPasswords: true}, Config{})
	c := ts.conn(t)
	expect(t, do(c, "NSNEW", "s"), "OK")
	expect(t, do(c, "NSSET", "s", "password", "pw"), "OK")
	expect(t, do(c, "NSSET", "s", "public", "0"), "OK")
	expect(t, do(c, "MASTER"), "Hello, master") // 0-db's greeting
	info, _ := do(c, "NSINFO", "s").Text()
	if !strings.Contains(info, "password_raw: pw") {
		t.Fatalf("master nsinfo lacks password_raw:\n%s", info)
	}
	expect(t, do(c, "SELECT", "s", "SECURE", strings.Repeat("0", 40)), "ERR No CHALLENGE requested, secure authentication not available")
	nonce, _ := do(c, "AUTH", "SECURE", "CHALLENGE").Text()
	sum := sha1.Sum([]byte(nonce + ":pw"))
	expect(t, do(c, "SELECT", "s", "SECURE", hex.EncodeToString(sum[:])), "OK")
}

func TestSeqMode(t *testing.T) {
	ts := startServer(t, zdb.Options{Mode: zdb.ModeMix}, Config{})
	c := ts.conn(t)
	expect(t, do(c, "NSNEW", "q"), "OK")
	expect(t, do(c, "NSSET", "q", "mode", "bad"), "ERR Invalid property value (expected: user, seq)")
	expect(t, do(c, "NSSET", "q", "mode", "seq"), "OK")
	expect(t, do(c, "SELECT", "q"), "OK")
	var ids []string
	for i := 0; i < 3; i++ {
		id, err := do(c, "SET", "", fmt.Sprintf("v%d", i)).Text()
		if err != nil || len(id) != 8 || binary.LittleEndian.Uint64([]byte(id)) != uint64(i) {
			t.Fatalf("seq id %x %v", id, err)
		}
		ids = append(ids, id)
	}
	expect(t, do(c, "NSSET", "q", "mode", "user"), "ERR Cannot change mode of used namespace")
	expect(t, do(c, "GET", ids[1]), "v1")
	expect(t, do(c, "SET", ids[1], "new"), ids[1])
	expect(t, do(c, "GET", ids[1]), "new")
	expect(t, do(c, "SET", "\x09\x00\x00\x00\x00\x00\x00\x00", "x"), "ERR Invalid key, only update authorized")
	expect(t, do(c, "GET", "short"), "nil")
	expect(t, do(c, "DEL", ids[0]), "OK")
	expect(t, do(c, "EXISTS", ids[0]), "0")
	expect(t, do(c, "DBSIZE"), "2")
	info, _ := do(c, "NSINFO", "q").Text()
	if !strings.Contains(info, "mode: sequential") {
		t.Fatalf("nsinfo: %s", info)
	}
	s2 := startServer(t, zdb.Options{Mode: zdb.ModeSeq}, Config{})
	c2 := s2.client(t)
	expect(t, do(c2, "NSSET", "default", "mode", "user"), "ERR This server instance is configured to use a single runtime mode")
}

func TestAdminCommands(t *testing.T) {
	ts := startServer(t, zdb.Options{Mode: zdb.ModeMix}, Config{})
	c := ts.conn(t)
	do(c, "SET", "k", "hello")
	// Like 0-db, only in-place changes (overwrite, delete) make a file dirty.
	expect(t, do(c, "INDEX", "DIRTY"), "[]")
	do(c, "SET", "o", "1")
	do(c, "SET", "o", "2")
	expect(t, do(c, "INDEX", "DIRTY"), "[0]")
	expect(t, do(c, "INDEX", "DIRTY", "RESET"), "OK")
	expect(t, do(c, "INDEX", "DIRTY"), "[]")
	expect(t, do(c, "INDEX", "FOO"), "ERR Unknown INDEX subcommand")
	expect(t, do(c, "DATA", "RAW", "0", "28"), "[k 0 0x"+fmt.Sprintf("%08x", zdb.CRC([]byte("hello")))+" 0 "+fmt.Sprint(mustKeytime(t, c, "k"))+" hello]")
	expect(t, do(c, "DATA", "RAW", "0", "999999"), "ERR EOF")
	expect(t, do(c, "DATA", "RAW", "7", "28"), "ERR Invalid Request") // no data file 7
	expect(t, do(c, "DATA", "FOO"), "ERR Unknown DATA subcommand")
	expect(t, do(c, "NSJUMP"), "OK")
	do(c, "SET", "k2", "v")
	info, _ := do(c, "NSINFO", "default").Text()
	if !strings.Contains(info, "data_current_id: 1") {
		t.Fatalf("after NSJUMP: %s", info)
	}
	expect(t, do(c, "GET", "k"), "hello")
	other := ts.conn(t)
	expect(t, do(other, "PING"), "PONG")
	expect(t, do(c, "RELOAD", strings.Repeat("n", zdb.MaxNamespaceName+1)), "ERR Namespace too long")
	expect(t, do(c, "RELOAD", "default"), "OK")
	expect(t, do(c, "GET", "k2"), "v")
	expect(t, do(other, "GET", "k2"), "v") // other clients follow the reload
	expect(t, do(c, "HOOKS"), "[]")
}

func mustKeytime(t *testing.T, c *redis.Conn, k string) int64 {
	v, err := do(c, "KEYTIME", k).Int64()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestWait(t *testing.T) {
	ts := startServer(t, zdb.Options{Mode: zdb.ModeMix}, Config{})
	w := ts.conn(t)
	o := ts.conn(t)
	expect(t, do(w, "WAIT", "SET", "10"), "ERR Invalid timeout")
	expect(t, do(w, "WAIT", "XYZ"), "ERR Unknown command to watch")
	expect(t, do(w, "WAIT", "SET", "100"), "ERR Timeout")
	res := make(chan string, 1)
	go func() {
		v, err := do(w, "WAIT", "SET", "10000").Result()
		res <- render(v, err)
	}()
	// Keep setting until the waiter is registered and woken.
	zostest.WaitFor(t, 5*time.Second, func() error {
		do(o, "SET", "k", time.Now().String())
		select {
		case r := <-res:
			if r != "SET" {
				t.Fatalf("wait = %s", r)
			}
			return nil
		default:
			return errors.New("waiter not woken yet")
		}
	})
}

// rawConn talks RESP directly, for pipelining and malformed input.
func rawConn(t *testing.T, addr string) (net.Conn, *resp.Reader) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn, resp.NewReader(conn)
}

func TestPipelineOneBatch(t *testing.T) {
	ts := startServer(t, zdb.Options{Mode: zdb.ModeMix}, Config{})
	conn, r := rawConn(t, ts.addr)
	w := resp.NewWriter(conn)
	const n = 500
	for i := 0; i < n; i++ {
		w.Command([]byte("SET"), []byte(fmt.Sprintf("key:%d", i)), []byte("v"))
		w.Command([]byte("GET"), []byte(fmt.Sprintf("key:%d", i)))
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		v, err := r.ReadValue()
		if err != nil || string(v.Str) != fmt.Sprintf("key:%d", i) {
			t.Fatalf("set reply %d: %v %v", i, v, err)
		}
		v, err = r.ReadValue()
		if err != nil || string(v.Str) != "v" {
			t.Fatalf("get reply %d: %v %v", i, v, err)
		}
	}
}

func TestMalformedInputNeverCrashes(t *testing.T) {
	ts := startServer(t, zdb.Options{Mode: zdb.ModeMix}, Config{})
	// Each gets 0-db's reply (zdbd/redis.c).
	for in, want := range map[string]string{
		"PING\r\n":                  "-Malformed request, array expected",
		"*1\r\n$-1\r\n":             "-Malformed request, array expected",
		"*0\r\n":                    "-Missing arguments",
		"*1025\r\n":                 "-Too many arguments",
		"*1\r\n$99999999\r\n":       "-Payload too big",
		"*2\r\n$3\r\nGET\r\n:5\r\n": "-Malformed query string",
		"\x00\xff\r\n":              "-Malformed request, array expected",
	} {
		conn, _ := rawConn(t, ts.addr)
		conn.Write([]byte(in))
		line, err := bufio.NewReader(conn).ReadString('\n')
		if err != nil || line != want+"\r\n" {
			t.Fatalf("%q: reply %q %v, want %q", in, line, err, want)
		}
	}
	// The server still works.
	expect(t, do(ts.client(t), "PING"), "PONG")
	// A client that vanishes mid-request does not disturb others.
	conn, _ := rawConn(t, ts.addr)
	conn.Write([]byte("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100\r\nabc"))
	conn.Close()
	expect(t, do(ts.client(t), "GET", "k"), "nil")
}

func TestUnixSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "zdb.sock")
	ts := startServer(t, zdb.Options{Mode: zdb.ModeMix}, Config{Socket: sock})
	if ts.addr != sock {
		t.Fatalf("addr %s", ts.addr)
	}
	c := redis.NewClient(&redis.Options{Network: "unix", Addr: sock, Protocol: 2, DisableIdentity: true})
	defer c.Close()
	expect(t, do(c, "SET", "k", "v"), "k")
	expect(t, do(c, "GET", "k"), "v")
}

func TestMirror(t *testing.T) {
	ts := startServer(t, zdb.Options{Mode: zdb.ModeMix}, Config{})
	conn, r := rawConn(t, ts.addr)
	w := resp.NewWriter(conn)
	w.Command([]byte("MIRROR"))
	w.Flush()
	if v, err := r.ReadValue(); err != nil || string(v.Str) != "Starting mirroring" {
		t.Fatalf("mirror: %v %v", v, err)
	}
	// Written to by other clients with a deadline: never a blocking socket.
	if socketBlocking(t, ts, conn) {
		t.Error("the mirror's socket is in blocking mode")
	}
	expect(t, do(ts.client(t), "SET", "k", "v"), "k")
	v, err := r.ReadValue()
	if err != nil || len(v.Array) != 6 || v.Array[0].Kind != resp.KindInteger || string(v.Array[1].Str) != "default" ||
		v.Array[2].Kind != resp.KindInteger || string(v.Array[3].Str) != "SET" || string(v.Array[5].Str) != "v" {
		t.Fatalf("mirrored: %v %v", v, err)
	}
}

func TestCommandTableOrder(t *testing.T) {
	s, _ := New(nil, Config{})
	for in, want := range map[string]string{"SE": "SET", "S": "SET", "SETX": "SETX", "SCANX": "SCANX", "ns": "NSNEW",
		"NSI": "NSINFO", "": "*", "D": "DATA", "R": "RSCAN", "SETXY": ""} {
		c := s.lookupCommand([]byte(in))
		got := ""
		if c != nil {
			got = c.name
		}
		if got != want {
			t.Errorf("%q resolves to %q, want %q", in, got, want)
		}
	}
}

func TestCompactCommandAndThreshold(t *testing.T) {
	ts := startServer(t, zdb.Options{Mode: zdb.ModeMix, DataSize: 2048},
		Config{AutoCompact: 0.5, CompactInterval: 20 * time.Millisecond})
	c := ts.conn(t)
	val := strings.Repeat("v", 200)
	for i := 0; i < 40; i++ {
		do(c, "SET", fmt.Sprintf("k%d", i), val)
	}
	for i := 0; i < 40; i++ {
		do(c, "DEL", fmt.Sprintf("k%d", i))
	}
	do(c, "SET", "live", "x")
	// A seq namespace too: its ids stay where they are.
	q := ts.conn(t)
	expect(t, do(q, "NSNEW", "q"), "OK")
	expect(t, do(q, "NSSET", "q", "mode", "seq"), "OK")
	expect(t, do(q, "SELECT", "q"), "OK")
	var ids []string
	for i := 0; i < 41; i++ {
		id, _ := do(q, "SET", "", val).Text()
		ids = append(ids, id)
	}
	for _, id := range ids[:40] {
		expect(t, do(q, "DEL", id), "OK")
	}
	qns, _ := ts.db.Namespace("q")
	ns, _ := ts.db.Namespace("default")
	// The automatic threshold compacts the namespace on its own, and disk usage
	// drops: the deleted values are gone from the files. (The dead ratio itself
	// is no test: it can stay high after compaction when what is left is a few
	// tiny records, and a compaction that ran halfway through the deletes must
	// not stop the next one.) Fsyncs on a busy disk can be slow: allow time.
	deleted := int64(40 * len(val))
	zostest.WaitFor(t, 60*time.Second, func() error {
		for _, n := range []*zdb.Namespace{ns, qns} {
			if st := n.Stats(); st.DataSize >= deleted/2 {
				return fmt.Errorf("%s: data files still hold %d bytes after deleting %d bytes of values", n.Name(), st.DataSize, deleted)
			}
		}
		return nil
	})
	expect(t, do(c, "GET", "live"), "x")
	expect(t, do(q, "GET", ids[40]), val)
	r, err := do(q, "COMPACT").Text()
	if err != nil || !strings.HasPrefix(r, "OK files=") {
		t.Fatalf("compact seq: %q %v", r, err)
	}
	r, err = do(c, "COMPACT").Text()
	if err != nil || !strings.HasPrefix(r, "OK files=") {
		t.Fatalf("compact: %q %v", r, err)
	}
	expect(t, do(c, "COMPACT", "nope"), "ERR Namespace not found")
	expect(t, do(c, "GET", "live"), "x")
}

func TestHooks(t *testing.T) {
	dir := t.TempDir()
	logf := filepath.Join(dir, "hook.log")
	hook := filepath.Join(dir, "hook.sh")
	if err := os.WriteFile(hook, []byte("#!/bin/sh\necho \"$@\" >> "+logf+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, zdb.Options{Mode: zdb.ModeMix}, Config{Hook: hook})
	c := ts.conn(t)
	expect(t, do(c, "NSNEW", "h"), "OK")
	zostest.WaitFor(t, 5*time.Second, func() error {
		b, _ := os.ReadFile(logf)
		if !strings.Contains(string(b), "ready ") || !strings.Contains(string(b), "namespace-created ") {
			return fmt.Errorf("hook log: %q", b)
		}
		return nil
	})
	hooks, err := do(c, "HOOKS").Slice()
	if err != nil || len(hooks) < 2 {
		t.Fatalf("HOOKS: %v %v", hooks, err)
	}
}

func TestReadyHookFailureStopsStart(t *testing.T) {
	zostest.CheckLeaks(t)
	dir := t.TempDir()
	db, _ := zdb.Open(zdb.Options{DataDir: filepath.Join(dir, "d"), IndexDir: filepath.Join(dir, "i")})
	defer db.Close()
	srv, _ := New(db, Config{Hook: "/bin/false"})
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(context.Background()); err == nil {
		t.Fatal("a failing ready hook must abort start-up")
	}
}

func TestValueLimits(t *testing.T) {
	ts := startServer(t, zdb.Options{Mode: zdb.ModeMix}, Config{})
	c := ts.client(t)
	big := strings.Repeat("x", zdb.MaxValueSize)
	expect(t, do(c, "SET", "big", big), "big")
	if v, err := do(c, "GET", "big").Text(); err != nil || len(v) != zdb.MaxValueSize {
		t.Fatalf("8 MiB value: %d %v", len(v), err)
	}
	// Over the limit: the header alone is refused (the server closes the
	// connection, so send no payload the client would block on).
	conn, _ := rawConn(t, ts.addr)
	conn.Write([]byte("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$8388609\r\n"))
	if line, _ := bufio.NewReader(conn).ReadString('\n'); line != "-Payload too big\r\n" {
		t.Fatalf("oversized value: %q", line)
	}
	args := make([]any, 1025)
	args[0] = "MGET"
	for i := 1; i < len(args); i++ {
		args[i] = "k"
	}
	expect(t, do(c, args...), "ERR Too many arguments")
}

func TestJumpHooks(t *testing.T) {
	dir := t.TempDir()
	logf := filepath.Join(dir, "hook.log")
	hook := filepath.Join(dir, "hook.sh")
	os.WriteFile(hook, []byte("#!/bin/sh\necho \"$@\" >> "+logf+"\n"), 0o755)
	var srv atomic.Pointer[Server] // the engine calls back from the server's goroutines
	ts := startServer(t, zdb.Options{Mode: zdb.ModeMix, OnJump: func(j zdb.Jump) { srv.Load().JumpHook(j) }},
		Config{Hook: hook})
	srv.Store(ts.srv)
	c := ts.conn(t)
	// An overwrite flags the old entry in i0: i0 is dirty.
	expect(t, do(c, "SET", "k", "1"), "k")
	expect(t, do(c, "SET", "k", "2"), "k")
	expect(t, do(c, "INDEX", "DIRTY"), "[0]")
	expect(t, do(c, "NSJUMP"), "OK")
	idx := filepath.Join(ts.opts.IndexDir, "default")
	wantIndex := fmt.Sprintf("jump-index %d %s %s 0\n", ts.srv.instanceID, filepath.Join(idx, "i0"), filepath.Join(idx, "i1"))
	zostest.WaitFor(t, 10*time.Second, func() error {
		b, _ := os.ReadFile(logf)
		if !strings.Contains(string(b), wantIndex) || !strings.Contains(string(b), "jump-data ") ||
			!strings.Contains(string(b), filepath.Join("default", "d0")) {
			return fmt.Errorf("hook log: %q", b)
		}
		return nil
	})
	// The hook succeeded: as in 0-db, the dirty list it got is reset.
	zostest.WaitFor(t, 10*time.Second, func() error {
		if v, err := do(c, "INDEX", "DIRTY").Slice(); err != nil || len(v) != 0 {
			return fmt.Errorf("INDEX DIRTY after the jump-index hook: %v %v", v, err)
		}
		return nil
	})
}

// A read that needs an offloaded data file runs the blocking missing-data
// hook, as 0-db does, and retries once the hook restored the file; when the
// hook cannot, the read fails and the server keeps serving.
func TestMissingDataHook(t *testing.T) {
	dir := t.TempDir()
	o := zdb.Options{Mode: zdb.ModeMix, DataSize: 1024,
		DataDir: filepath.Join(dir, "data"), IndexDir: filepath.Join(dir, "index")}
	db, err := zdb.Open(o)
	if err != nil {
		t.Fatal(err)
	}
	ns, _ := db.Namespace(zdb.DefaultNamespace)
	val := strings.Repeat("v", 700) // one value per data file
	for _, k := range []string{"a", "b", "c"} {
		r, err := ns.Set([]byte(k), []byte(val+k), 0)
		if err != nil {
			t.Fatal(err)
		}
		ns.Commit(r.Seq)
	}
	db.Close()
	// Offload d0 (holds a) to a backup the hook restores from, lose d1 (b).
	backup := filepath.Join(dir, "backup")
	os.Mkdir(backup, 0o700)
	d := filepath.Join(o.DataDir, "default")
	if err := os.Rename(filepath.Join(d, "d0"), filepath.Join(backup, "d0")); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(d, "d1"))
	logf := filepath.Join(dir, "hook.log")
	hook := filepath.Join(dir, "hook.sh")
	os.WriteFile(hook, []byte("#!/bin/sh\necho \"$@\" >> "+logf+"\n"+
		"[ \"$1\" = missing-data ] || exit 0\nexec cp "+backup+"/$(basename \"$3\") \"$3\"\n"), 0o755)
	var srv atomic.Pointer[Server] // the engine calls back from the server's goroutines
	o.MissingData = func(ns, path string) error { return srv.Load().MissingDataHook(ns, path) }
	ts := startServer(t, o, Config{Hook: hook})
	srv.Store(ts.srv)
	c := ts.conn(t)
	expect(t, do(c, "GET", "a"), val+"a")
	expect(t, do(c, "GET", "b"), "ERR Internal Error")
	expect(t, do(c, "GET", "c"), val+"c")
	b, _ := os.ReadFile(logf)
	id := ts.srv.instanceID
	want := fmt.Sprintf("missing-data %d %s\nmissing-data %d %s\n", id, filepath.Join(d, "d0"), id, filepath.Join(d, "d1"))
	if !strings.HasSuffix(string(b), want) {
		t.Fatalf("hook log %q, want it to end with %q", b, want)
	}
	hooks, err := do(c, "HOOKS").Slice()
	if err != nil || len(hooks) < 3 {
		t.Fatalf("HOOKS: %v %v", hooks, err)
	}
	if last := hooks[len(hooks)-1].([]any); last[0] != "missing-data" || last[5] == int64(0) {
		t.Fatalf("last hook run %v, want a failed missing-data", last)
	}
}

// socketBlocking says whether the server's end of conn is in blocking mode.
func socketBlocking(t *testing.T, ts *testServer, conn net.Conn) bool {
	t.Helper()
	ts.srv.mu.Lock()
	defer ts.srv.mu.Unlock()
	for c := range ts.srv.conns {
		if c.conn.RemoteAddr().String() != conn.LocalAddr().String() {
			continue
		}
		var flags int
		var err error
		if cerr := c.raw.Control(func(fd uintptr) { flags, err = unix.FcntlInt(fd, unix.F_GETFL, 0) }); cerr != nil {
			err = cerr
		}
		if err != nil {
			t.Fatal(err)
		}
		return flags&unix.O_NONBLOCK == 0
	}
	t.Fatalf("no server connection for %s", conn.LocalAddr())
	return false
}

func ping(t *testing.T, conn net.Conn, r *resp.Reader) {
	t.Helper()
	w := resp.NewWriter(conn)
	w.Command([]byte("PING"))
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if v, err := r.ReadValue(); err != nil || string(v.Str) != "PONG" {
		t.Fatalf("ping: %v %v", v, err)
	}
}

// TestReadModeFollowsClientCount: a connection waits in a blocking read
// while there are no more clients than maxBlocking, in the poller beyond
// (checked before each wait), and Close still ends a blocked read.
func TestReadModeFollowsClientCount(t *testing.T) {
	ts := startServer(t, zdb.Options{Mode: zdb.ModeMix}, Config{})
	ts.srv.maxBlocking.Store(1)
	waitMode := func(conn net.Conn, blocking bool) {
		t.Helper()
		zostest.WaitFor(t, 5*time.Second, func() error {
			if socketBlocking(t, ts, conn) != blocking {
				return fmt.Errorf("server socket of %s: blocking=%v, want %v", conn.LocalAddr(), !blocking, blocking)
			}
			return nil
		})
	}
	a, ra := rawConn(t, ts.addr)
	ping(t, a, ra)
	waitMode(a, true)

	b, rb := rawConn(t, ts.addr)
	ping(t, b, rb)
	waitMode(b, false)
	ping(t, a, ra) // a's next wait sees two clients
	waitMode(a, false)

	b.Close()
	zostest.WaitFor(t, 5*time.Second, func() error {
		if n := ts.srv.nconn.Load(); n != 1 {
			return fmt.Errorf("%d connections", n)
		}
		return nil
	})
	ping(t, a, ra)
	waitMode(a, true)

	// Closing the descriptor does not wake a read blocked in the kernel.
	closed := make(chan struct{})
	go func() { ts.srv.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return: a blocked read was not woken")
	}
	if _, err := ra.ReadValue(); err == nil {
		t.Error("the connection is still open after Close")
	}
}
