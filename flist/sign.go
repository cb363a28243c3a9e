package flist

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/zosgrid/zos/key"
)

const signatureDomain = "zos-flist-signature-v1\x00"

var (
	// ErrUnsigned means the flist carries no signature at all.
	ErrUnsigned = errors.New("flist: flist is not signed")
	// ErrUntrusted means no valid signature by a trusted key was found.
	ErrUntrusted = errors.New("flist: no valid signature by a trusted key")
)

func signedMessage(h Hash) []byte {
	return append([]byte(signatureDomain), h[:]...)
}

// Verified is the result of a successful trust check: the metadata hash and
// the trusted keys that signed it.
type Verified struct {
	Hash    Hash
	Signers []key.Public
}

// Verify checks the flist's signatures against trusted keys. It succeeds if
// at least one trusted key made a valid signature over the current hash.
// With no trusted keys it fails: callers that accept unsigned flists must
// say so explicitly (the CLI's --insecure) and not call Verify.
func (f *FList) Verify(ctx context.Context, trusted []key.Public) (Verified, error) {
	h, err := f.Hash(ctx)
	if err != nil {
		return Verified{}, err
	}
	sigs, err := f.Signatures(ctx)
	if err != nil {
		return Verified{}, err
	}
	if len(sigs) == 0 {
		return Verified{Hash: h}, ErrUnsigned
	}
	msg := signedMessage(h)
	v := Verified{Hash: h}
	for _, s := range sigs {
		pub := key.Public(s.PublicKey)
		for _, t := range trusted {
			if t == pub && pub.Verify(msg, s.Sig) {
				v.Signers = append(v.Signers, pub)
			}
		}
	}
	if len(v.Signers) == 0 {
		return v, fmt.Errorf("%w (hash %s, %d signature(s))", ErrUntrusted, h, len(sigs))
	}
	return v, nil
}

// ValidSigners returns every key whose signature verifies over the current
// hash (trusted or not), for inspect.
func (f *FList) ValidSigners(ctx context.Context) ([]key.Public, []key.Public, error) {
	h, err := f.Hash(ctx)
	if err != nil {
		return nil, nil, err
	}
	sigs, err := f.Signatures(ctx)
	if err != nil {
		return nil, nil, err
	}
	var good, bad []key.Public
	for _, s := range sigs {
		pub := key.Public(s.PublicKey)
		if pub.Verify(signedMessage(h), s.Sig) {
			good = append(good, pub)
		} else {
			bad = append(bad, pub)
		}
	}
	return good, bad, nil
}

// Sign adds (or replaces) priv's signature in the .fl file at path and
// returns the hash it signed.
func Sign(ctx context.Context, path string, priv key.Private) (Hash, error) {
	f, err := open(ctx, path, false)
	if err != nil {
		return Hash{}, err
	}
	defer f.Close()
	if _, err := f.db.ExecContext(ctx, zosSchema); err != nil {
		return Hash{}, fmt.Errorf("flist: sign: %w", err)
	}
	f.tables["zos_signature"] = true
	if _, err := f.Tree(ctx); err != nil {
		return Hash{}, fmt.Errorf("flist: refusing to sign: %w", err)
	}
	h, err := f.Hash(ctx)
	if err != nil {
		return Hash{}, err
	}
	pub := priv.Public()
	if _, err := f.db.ExecContext(ctx, "insert or replace into zos_signature (pubkey, signature) values (?, ?)", pub[:], priv.Sign(signedMessage(h))); err != nil {
		return Hash{}, fmt.Errorf("flist: sign: %w", err)
	}
	return h, nil
}

// SetTags changes tags in the .fl file at path (an empty value deletes the
// tag). Tags are part of the signed metadata, so existing signatures no
// longer verify; SetTags removes them and returns how many it removed.
func SetTags(ctx context.Context, path string, tags map[string]string) (int, error) {
	f, err := open(ctx, path, false)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	tx, err := f.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("flist: tag: %w", err)
	}
	defer tx.Rollback()
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k == "" {
			return 0, fmt.Errorf("flist: tag: empty key")
		}
		if tags[k] == "" {
			_, err = tx.ExecContext(ctx, "delete from tag where key = ?", k)
		} else {
			_, err = tx.ExecContext(ctx, "insert or replace into tag (key, value) values (?, ?)", k, tags[k])
		}
		if err != nil {
			return 0, fmt.Errorf("flist: tag: %w", err)
		}
	}
	removed := 0
	if f.tables["zos_signature"] {
		res, err := tx.ExecContext(ctx, "delete from zos_signature")
		if err != nil {
			return 0, fmt.Errorf("flist: tag: %w", err)
		}
		n, _ := res.RowsAffected()
		removed = int(n)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("flist: tag: %w", err)
	}
	return removed, nil
}

// ExecEntry is one executable file of the signed metadata.
type ExecEntry struct {
	Path   string
	Digest [32]byte // ContentDigest of the file
}

// ExecSet returns every regular file with an execute bit and its content
// digest, sorted by path. Because it is derived from the metadata, it is
// covered by the metadata hash and thus by the signatures.
func (t *Tree) ExecSet() []ExecEntry {
	var out []ExecEntry
	t.Walk(func(p string, in *Inode) error {
		if in.IsRegular() && in.Mode&0o111 != 0 {
			out = append(out, ExecEntry{Path: "/" + p, Digest: DigestOfKeys(t.Blocks[in.Ino])})
		}
		return nil
	})
	return out
}
