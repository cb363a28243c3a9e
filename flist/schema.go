package flist

// rfsSchema is rfs's schema/schema.sql, table for table and column for
// column, so that rfs reads what we write.
const rfsSchema = `
CREATE TABLE IF NOT EXISTS inode (
    ino INTEGER PRIMARY KEY AUTOINCREMENT,
    parent INTEGER,
    name VARCHAR(255),
    size INTEGER,
    uid INTEGER,
    gid INTEGER,
    mode INTEGER,
    rdev INTEGER,
    ctime INTEGER,
    mtime INTEGER
);
CREATE INDEX IF NOT EXISTS parents ON inode (parent);
CREATE TABLE IF NOT EXISTS extra (
    ino INTEGER PRIMARY KEY,
    data VARCHAR(4096)
);
CREATE TABLE IF NOT EXISTS block (
    ino INTEGER,
    id VARCHAR(32),
    key VARCHAR(32)
);
CREATE INDEX IF NOT EXISTS block_ino ON block (ino);
CREATE TABLE IF NOT EXISTS tag (
    key VARCHAR(10) PRIMARY KEY,
    value VARCHAR(255)
);
CREATE TABLE IF NOT EXISTS route (
    start integer,
    end integer,
    url VARCHAR(2048)
);
`

// zosSchema holds the tables rfs ignores.
const zosSchema = `
CREATE TABLE IF NOT EXISTS zos_xattr (
    ino INTEGER NOT NULL,
    name TEXT NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (ino, name)
);
CREATE TABLE IF NOT EXISTS zos_hardlink (
    ino INTEGER PRIMARY KEY,
    target INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS zos_meta (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS zos_signature (
    pubkey BLOB PRIMARY KEY,
    signature BLOB NOT NULL
);
`

// rfsTables must exist in any .fl we open.
var rfsTables = []string{"inode", "extra", "block", "tag", "route"}

// MetaImageConfig is the zos_meta key of an OCI image config (JSON).
const MetaImageConfig = "image-config"
