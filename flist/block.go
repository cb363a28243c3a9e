package flist

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/golang/snappy"
	"golang.org/x/crypto/blake2b"
)

// BlockSize is the fixed chunk size of every file (rfs hard-codes it too).
const BlockSize = 512 * 1024

// ErrCorruptBlock means a block's bytes do not match its id or key.
var ErrCorruptBlock = errors.New("flist: corrupt block")

// ID identifies a stored block: BLAKE2b-256 of its ciphertext.
type ID [32]byte

// String returns the id in hex (the form stores use in paths).
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// ParseID parses 64 hex digits.
func ParseID(s string) (ID, error) {
	var id ID
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(id) {
		return id, fmt.Errorf("flist: block id must be %d hex digits: %q", 2*len(id), s)
	}
	copy(id[:], b)
	return id, nil
}

// Key is a block's encryption key: BLAKE2b-256 of its plaintext.
type Key [32]byte

// Block is one chunk of a file as recorded in the block table.
type Block struct {
	ID  ID
	Key Key
}

// EncodeBlock turns a plaintext chunk into its stored form and its row.
func EncodeBlock(plain []byte) (Block, []byte, error) {
	var b Block
	b.Key = blake2b.Sum256(plain)
	gcm, err := newGCM(b.Key)
	if err != nil {
		return b, nil, err
	}
	comp := snappy.Encode(nil, plain)
	ct := gcm.Seal(comp[:0:0], b.Key[:12], comp, nil)
	b.ID = blake2b.Sum256(ct)
	return b, ct, nil
}

// CheckID reports whether data hashes to id (a store can check this
// without the key).
func CheckID(id ID, data []byte) bool {
	sum := blake2b.Sum256(data)
	return subtle.ConstantTimeCompare(sum[:], id[:]) == 1
}

// DecodeBlock checks data against b.ID, decrypts and decompresses it, and
// checks the plaintext against b.Key. Any mismatch is ErrCorruptBlock.
func DecodeBlock(b Block, data []byte) ([]byte, error) {
	if !CheckID(b.ID, data) {
		return nil, fmt.Errorf("%w: %s: id mismatch", ErrCorruptBlock, b.ID)
	}
	gcm, err := newGCM(b.Key)
	if err != nil {
		return nil, err
	}
	comp, err := gcm.Open(nil, b.Key[:12], data, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: decrypt: %v", ErrCorruptBlock, b.ID, err)
	}
	n, err := snappy.DecodedLen(comp)
	if err != nil || n > BlockSize {
		return nil, fmt.Errorf("%w: %s: bad snappy length", ErrCorruptBlock, b.ID)
	}
	plain, err := snappy.Decode(nil, comp)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: decompress: %v", ErrCorruptBlock, b.ID, err)
	}
	if !CheckKey(b.Key, plain) {
		return nil, fmt.Errorf("%w: %s: plaintext does not match key", ErrCorruptBlock, b.ID)
	}
	return plain, nil
}

// CheckKey reports whether plain hashes to key.
func CheckKey(key Key, plain []byte) bool {
	sum := blake2b.Sum256(plain)
	return subtle.ConstantTimeCompare(sum[:], key[:]) == 1
}

func newGCM(k Key) (cipher.AEAD, error) {
	c, err := aes.NewCipher(k[:])
	if err != nil {
		return nil, fmt.Errorf("flist: cipher: %w", err)
	}
	g, err := cipher.NewGCM(c)
	if err != nil {
		return nil, fmt.Errorf("flist: gcm: %w", err)
	}
	return g, nil
}

// ContentDigest is the content hash of a file as ExecSet reports it:
// BLAKE2b-256 over the concatenated BLAKE2b-256 of each BlockSize chunk.
// The container runtime computes it over a file on a writable overlay to
// check it against the signed flist.
func ContentDigest(r io.Reader) ([32]byte, error) {
	outer, _ := blake2b.New256(nil)
	buf := make([]byte, BlockSize)
	for {
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			k := blake2b.Sum256(buf[:n])
			outer.Write(k[:])
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return [32]byte{}, fmt.Errorf("flist: content digest: %w", err)
		}
	}
	var d [32]byte
	copy(d[:], outer.Sum(nil))
	return d, nil
}

// DigestOfKeys computes ContentDigest from a file's block list.
func DigestOfKeys(blocks []Block) [32]byte {
	outer, _ := blake2b.New256(nil)
	for _, b := range blocks {
		outer.Write(b.Key[:])
	}
	var d [32]byte
	copy(d[:], outer.Sum(nil))
	return d
}
