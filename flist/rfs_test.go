package flist_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/zosgrid/zos/flist"
	"github.com/zosgrid/zos/key"
)

// rfsSchemaSQL is the table layout rfs creates (schema/schema.sql), as a
// format fact: an flist written by rfs has exactly these tables and none
// of ours.
const rfsSchemaSQL = `
CREATE TABLE IF NOT EXISTS inode (ino INTEGER PRIMARY KEY AUTOINCREMENT, parent INTEGER, name VARCHAR(255), size INTEGER, uid INTEGER, gid INTEGER, mode INTEGER, rdev INTEGER, ctime INTEGER, mtime INTEGER);
CREATE INDEX IF NOT EXISTS parents ON inode (parent);
CREATE TABLE IF NOT EXISTS extra (ino INTEGER PRIMARY KEY, data VARCHAR(4096));
CREATE TABLE IF NOT EXISTS block (ino INTEGER, id VARCHAR(32), key VARCHAR(32));
CREATE INDEX IF NOT EXISTS block_ino ON block (ino);
CREATE TABLE IF NOT EXISTS tag (key VARCHAR(10) PRIMARY KEY, value VARCHAR(255));
CREATE TABLE IF NOT EXISTS route (start integer, end integer, url VARCHAR(2048));
`

// TestReadRFSWritten builds an flist the way rfs's writer does (its insert
// statements, symlink target as a blob, hard links as independent copies)
// and checks zos reads, hashes, signs and walks it.
func TestReadRFSWritten(t *testing.T) {
	ctx := context.Background()
	p := filepath.Join(t.TempDir(), "rfs.fl")
	db, err := sql.Open("sqlite", "file:"+p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(rfsSchemaSQL); err != nil {
		t.Fatal(err)
	}
	ins := "insert into inode (parent, name, size, uid, gid, mode, rdev, ctime, mtime) values (?, ?, ?, ?, ?, ?, ?, ?, ?)"
	db.Exec("insert into route (start, end, url) values (?, ?, ?)", 0, 255, "zdb://hub.grid.tf:9900/default")
	db.Exec(ins, 0, "/", 4096, 0, 0, syscall.S_IFDIR|0o755, 0, 1700000000, 1700000000)
	db.Exec(ins, 1, "bin", 4096, 0, 0, syscall.S_IFDIR|0o755, 0, 1700000000, 1700000000)
	db.Exec(ins, 2, "busybox", 5, 0, 0, syscall.S_IFREG|0o755, 0, 1700000000, 1700000000)
	db.Exec(ins, 2, "sh", 7, 0, 0, syscall.S_IFLNK|0o777, 0, 1700000000, 1700000000)
	db.Exec("insert into extra(ino, data) values (?, ?)", 4, []byte("busybox"))
	b, _, _ := flist.EncodeBlock([]byte("hello"))
	db.Exec("insert into block (ino, id, key) values (?, ?, ?)", 3, b.ID[:], b.Key[:])
	db.Exec("insert into tag (key, value) values (?, ?)", "version", "0.1")
	db.Close()

	f, err := flist.Open(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	tree, err := f.Tree(ctx)
	if err != nil {
		t.Fatal(err)
	}
	h0, _ := f.Hash(ctx)
	f.Close()
	var got []string
	tree.Walk(func(path string, in *flist.Inode) error {
		if in.IsSymlink() {
			path += " -> " + string(in.Data)
		}
		got = append(got, path)
		return nil
	})
	if len(got) != 4 || got[2] != "bin/busybox" || got[3] != "bin/sh -> busybox" {
		t.Fatalf("walk = %q", got)
	}
	// Signing adds the zos tables; the (empty) tables must not change the hash.
	k, _ := key.New()
	h1, err := flist.Sign(ctx, p, k)
	if err != nil || h1 != h0 {
		t.Fatalf("sign: %v; hash before %s after %s", err, h0, h1)
	}
	f, _ = flist.Open(ctx, p)
	defer f.Close()
	if _, err := f.Verify(ctx, []key.Public{k.Public()}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.ImageConfig(ctx); err == nil {
		t.Fatal("image config on an rfs flist")
	}
}
