package flist_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/golang/snappy"
	"golang.org/x/crypto/blake2b"

	"github.com/zosgrid/zos/flist"
	"github.com/zosgrid/zos/key"
)

func TestBlockRoundTripAndFormat(t *testing.T) {
	plain := bytes.Repeat([]byte("zero-os "), 1000)
	b, ct, err := flist.EncodeBlock(plain)
	if err != nil {
		t.Fatal(err)
	}
	// The rfs recipe, spelled out independently.
	if b.Key != flist.Key(blake2b.Sum256(plain)) {
		t.Fatal("key is not BLAKE2b-256(plain)")
	}
	if b.ID != flist.ID(blake2b.Sum256(ct)) {
		t.Fatal("id is not BLAKE2b-256(ciphertext)")
	}
	if len(ct) != len(snappy.Encode(nil, plain))+16 {
		t.Fatal("ciphertext is not snappy-raw + GCM tag")
	}
	got, err := flist.DecodeBlock(b, ct)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("decode: %v", err)
	}
	for i := range []int{0, len(ct) / 2, len(ct) - 1} {
		bad := bytes.Clone(ct)
		bad[i] ^= 1
		if _, err := flist.DecodeBlock(b, bad); !errors.Is(err, flist.ErrCorruptBlock) {
			t.Fatalf("flipped byte %d: %v", i, err)
		}
	}
	// Right id, wrong key: decryption must fail, never return bytes.
	wrong := b
	wrong.Key[0] ^= 1
	if _, err := flist.DecodeBlock(wrong, ct); !errors.Is(err, flist.ErrCorruptBlock) {
		t.Fatalf("wrong key: %v", err)
	}
}

// TestBlockVector pins the encoding: a change here breaks every stored block.
func TestBlockVector(t *testing.T) {
	want, err := os.ReadFile("testdata/block-hello.txt")
	if err != nil {
		t.Fatal(err)
	}
	b, _, _ := flist.EncodeBlock([]byte("hello"))
	got := "id " + b.ID.String() + "\nkey " + flist.ID(b.Key).String() + "\n"
	if got != string(want) {
		t.Fatalf("block vector changed:\n%s\nwant\n%s", got, want)
	}
}

func TestContentDigest(t *testing.T) {
	data := bytes.Repeat([]byte{7}, flist.BlockSize+10)
	d, err := flist.ContentDigest(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	b1, _, _ := flist.EncodeBlock(data[:flist.BlockSize])
	b2, _, _ := flist.EncodeBlock(data[flist.BlockSize:])
	if d != flist.DigestOfKeys([]flist.Block{b1, b2}) {
		t.Fatal("ContentDigest differs from DigestOfKeys")
	}
}

func writeSample(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	p := filepath.Join(t.TempDir(), "s.fl")
	w, err := flist.Create(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := w.AddInode(ctx, flist.Inode{Name: "/", Mode: syscall.S_IFDIR | 0o755})
	etc, _ := w.AddInode(ctx, flist.Inode{Parent: root, Name: "etc", Mode: syscall.S_IFDIR | 0o755})
	f, _ := w.AddInode(ctx, flist.Inode{Parent: etc, Name: "hosts", Size: 5, Mode: syscall.S_IFREG | 0o755, Mtime: 42})
	w.AddInode(ctx, flist.Inode{Parent: root, Name: "link", Mode: syscall.S_IFLNK | 0o777, Data: []byte("etc/hosts")})
	b, _, _ := flist.EncodeBlock([]byte("hello"))
	w.AddBlocks(ctx, f, []flist.Block{b})
	w.SetTag(ctx, "version", "1")
	w.AddRoute(ctx, flist.Route{Start: 0, End: 255, URL: "dir:///tmp/store"})
	w.AddXattr(ctx, f, flist.Xattr{Name: "user.a", Value: []byte("b")})
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRFSSchema checks the rfs tables column for column.
func TestRFSSchema(t *testing.T) {
	p := writeSample(t)
	db, err := sql.Open("sqlite", "file:"+p+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	want := map[string]string{
		"inode": "ino INTEGER,parent INTEGER,name VARCHAR(255),size INTEGER,uid INTEGER,gid INTEGER,mode INTEGER,rdev INTEGER,ctime INTEGER,mtime INTEGER",
		"extra": "ino INTEGER,data VARCHAR(4096)",
		"block": "ino INTEGER,id VARCHAR(32),key VARCHAR(32)",
		"tag":   "key VARCHAR(10),value VARCHAR(255)",
		"route": "start INTEGER,end INTEGER,url VARCHAR(2048)",
	}
	for table, cols := range want {
		rows, err := db.Query("select name, type from pragma_table_info(?) order by cid", table)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for rows.Next() {
			var n, ty string
			rows.Scan(&n, &ty)
			got = append(got, n+" "+ty)
		}
		rows.Close()
		if strings.Join(got, ",") != cols {
			t.Errorf("table %s columns = %s\nwant %s", table, strings.Join(got, ","), cols)
		}
	}
	var typ string
	db.QueryRow("select typeof(id) from block").Scan(&typ)
	if typ != "blob" {
		t.Errorf("block ids stored as %s, want blob (as rfs)", typ)
	}
	var jm string
	db.QueryRow("pragma journal_mode").Scan(&jm)
	if jm != "delete" {
		t.Errorf("journal mode %s", jm)
	}
}

func TestReadBack(t *testing.T) {
	ctx := context.Background()
	f, err := flist.Open(ctx, writeSample(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tree, err := f.Tree(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	tree.Walk(func(p string, in *flist.Inode) error { paths = append(paths, p); return nil })
	if strings.Join(paths, ",") != ",etc,etc/hosts,link" {
		t.Fatalf("walk = %q", paths)
	}
	routes, _ := f.Routes(ctx)
	tags, _ := f.Tags(ctx)
	if len(routes) != 1 || routes[0].URL != "dir:///tmp/store" || tags["version"] != "1" {
		t.Fatalf("routes %v tags %v", routes, tags)
	}
	ex := tree.ExecSet()
	if len(ex) != 1 || ex[0].Path != "/etc/hosts" {
		t.Fatalf("exec set %+v", ex)
	}
	if d, _ := flist.ContentDigest(strings.NewReader("hello")); d != ex[0].Digest {
		t.Fatal("exec digest does not match the content")
	}
}

func TestSignVerify(t *testing.T) {
	ctx := context.Background()
	p := writeSample(t)
	alice, _ := key.New()
	mallory, _ := key.New()
	open := func() *flist.FList {
		f, err := flist.Open(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	if _, err := open().Verify(ctx, []key.Public{alice.Public()}); !errors.Is(err, flist.ErrUnsigned) {
		t.Fatalf("unsigned flist: %v", err)
	}
	h0, _ := open().Hash(ctx)
	h, err := flist.Sign(ctx, p, mallory)
	if err != nil || h != h0 {
		t.Fatalf("sign: %v (hash changed by adding the signature: %v)", err, h != h0)
	}
	if _, err := open().Verify(ctx, []key.Public{alice.Public()}); !errors.Is(err, flist.ErrUntrusted) {
		t.Fatalf("untrusted signer accepted: %v", err)
	}
	flist.Sign(ctx, p, alice)
	v, err := open().Verify(ctx, []key.Public{alice.Public()})
	if err != nil || v.Hash != h0 || len(v.Signers) != 1 {
		t.Fatalf("trusted signer refused: %v", err)
	}
	// Tampering with the metadata (outside our API) breaks the signature.
	db, _ := sql.Open("sqlite", "file:"+p)
	db.Exec("update inode set mode = mode | 2048 where name = 'hosts'")
	db.Close()
	if _, err := open().Verify(ctx, []key.Public{alice.Public()}); !errors.Is(err, flist.ErrUntrusted) {
		t.Fatalf("tampered flist accepted: %v", err)
	}
	// SetTags drops signatures it invalidates.
	flist.Sign(ctx, p, alice)
	n, err := flist.SetTags(ctx, p, map[string]string{"description": "x"})
	if err != nil || n != 2 {
		t.Fatalf("SetTags removed %d signatures: %v", n, err)
	}
	if sigs, _ := open().Signatures(ctx); len(sigs) != 0 {
		t.Fatal("signatures left after a tag change")
	}
}

func TestHashCoversEveryTable(t *testing.T) {
	ctx := context.Background()
	for _, q := range []string{
		"update inode set uid = 1 where ino = 3",
		"update extra set data = 'other' where ino = 4",
		"update block set key = zeroblob(32)",
		"update tag set value = '2'",
		"update route set url = 'dir:///elsewhere'",
		"update zos_xattr set value = 'c'",
		"insert into zos_meta (key, value) values ('k', 'v')",
		"insert into zos_hardlink (ino, target) values (5, 3)",
	} {
		p := writeSample(t)
		f, _ := flist.Open(ctx, p)
		h0, _ := f.Hash(ctx)
		f.Close()
		db, _ := sql.Open("sqlite", "file:"+p)
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
		db.Close()
		f, _ = flist.Open(ctx, p)
		h1, _ := f.Hash(ctx)
		f.Close()
		if h0 == h1 {
			t.Errorf("hash unchanged by %q", q)
		}
	}
}

func TestOpenRejects(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cases := map[string]func(p string){
		"garbage": func(p string) { os.WriteFile(p, []byte("not sqlite at all"), 0o644) },
		"empty-db": func(p string) {
			db, _ := sql.Open("sqlite", "file:"+p)
			db.Exec("create table x (a)")
			db.Close()
		},
		"no-root": func(p string) {
			b, _ := os.ReadFile(writeSample(t))
			os.WriteFile(p, b, 0o644)
			db, _ := sql.Open("sqlite", "file:"+p)
			db.Exec("delete from inode where ino = 1")
			db.Close()
		},
	}
	for name, mk := range cases {
		p := filepath.Join(dir, name+".fl")
		mk(p)
		if f, err := flist.Open(ctx, p); err == nil {
			f.Close()
			t.Errorf("%s: opened", name)
		}
	}
	tamper := map[string]string{
		"bad-parent": "update inode set parent = 99 where ino = 3",
		"dup-name":   "update inode set name = 'etc' where ino = 4",
		"slash-name": "update inode set name = 'a/b' where ino = 4",
		"dotdot":     "update inode set name = '..' where ino = 4",
		"short-id":   "update block set id = x'0102'",
		"size":       "update inode set size = 9999999 where ino = 3",
		"self-root":  "update inode set parent = 1 where ino = 1",
	}
	for name, q := range tamper {
		p := writeSample(t)
		db, _ := sql.Open("sqlite", "file:"+p)
		db.Exec(q)
		db.Close()
		f, err := flist.Open(ctx, p)
		if err != nil {
			continue
		}
		if _, err := f.Tree(ctx); !errors.Is(err, flist.ErrInvalid) {
			t.Errorf("%s: Tree = %v; want ErrInvalid", name, err)
		}
		f.Close()
	}
}

// FuzzOpen feeds corrupt .fl files to Open, Tree, Hash: errors are fine,
// panics and hangs are not.
func FuzzOpen(f *testing.F) {
	dir := f.TempDir()
	ctx := context.Background()
	seed := filepath.Join(dir, "seed.fl")
	{
		w, _ := flist.Create(ctx, seed)
		root, _ := w.AddInode(ctx, flist.Inode{Name: "/", Mode: syscall.S_IFDIR | 0o755})
		fi, _ := w.AddInode(ctx, flist.Inode{Parent: root, Name: "f", Size: 5, Mode: syscall.S_IFREG | 0o644})
		b, _, _ := flist.EncodeBlock([]byte("hello"))
		w.AddBlocks(ctx, fi, []flist.Block{b})
		w.Commit()
	}
	b, _ := os.ReadFile(seed)
	f.Add(b)
	f.Add([]byte("SQLite format 3\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "f.fl")
		os.WriteFile(p, data, 0o644)
		fl, err := flist.Open(ctx, p)
		if err != nil {
			return
		}
		defer fl.Close()
		fl.Hash(ctx)
		fl.Signatures(ctx)
		fl.Routes(ctx)
		if tree, err := fl.Tree(ctx); err == nil {
			tree.Walk(func(string, *flist.Inode) error { return nil })
			tree.ExecSet()
		}
	})
}
