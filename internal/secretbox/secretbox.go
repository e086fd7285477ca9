// Package secretbox encrypts secrets at rest with AES-256-GCM under a
// Keyring of one or more keys: Seal uses the primary key, Open any key of
// the ring, so a key can be rotated while older ciphertext stays readable.
//
// A sealed value is the text "enc:v1:<kid>:<base64url(nonce|ciphertext)>",
// where kid (the key id) is the first 8 hex digits of the key's SHA-256.
// Each value is bound to where it is stored (the associated data, e.g.
// "integration/github/secret/apiToken"): a sealed value copied elsewhere
// does not open.
//
// A key file (or PORTICO_SECRETS_KEY) holds one key per line, each the
// standard base64 of 32 random bytes; the first is the primary, the
// others are older keys still read. Blank lines and lines starting with
// '#' are ignored; commas separate keys too.
package secretbox

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Prefix starts every sealed value.
const Prefix = "enc:v1:"

// KeySize is the size of a key in bytes (AES-256).
const KeySize = 32

// Errors callers branch on.
var (
	// ErrUnknownKey: the value was sealed with a key the ring does not hold.
	ErrUnknownKey = errors.New("sealed with a key this keyring does not hold")
	// ErrCorrupt: the value is malformed, was tampered with, or is bound to
	// another place.
	ErrCorrupt = errors.New("sealed value does not authenticate")
	// ErrNoKey: a sealed value was read without any keyring.
	ErrNoKey = errors.New("secret is encrypted but no secrets key was given")
)

// Keyring holds the keys secrets are sealed with. A nil *Keyring seals
// nothing: Seal returns the plain text and Open refuses sealed values.
type Keyring struct {
	keys []key // keys[0] is the primary
}

type key struct {
	id   string
	aead cipher.AEAD
}

// NewKeyring returns a ring of raw 32-byte keys; the first is the primary.
func NewKeyring(keys ...[]byte) (*Keyring, error) {
	if len(keys) == 0 {
		return nil, errors.New("no secrets key")
	}
	r := &Keyring{}
	for i, k := range keys {
		if len(k) != KeySize {
			return nil, fmt.Errorf("key %d: %d bytes, want %d", i+1, len(k), KeySize)
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", i+1, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", i+1, err)
		}
		r.keys = append(r.keys, key{id: KeyID(k), aead: aead})
	}
	return r, nil
}

// ParseKeyring reads the key file format (see the package doc).
func ParseKeyring(text string) (*Keyring, error) {
	var keys [][]byte
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		for _, field := range strings.Split(line, ",") {
			field = strings.TrimSpace(field)
			if field == "" {
				continue
			}
			k, err := base64.StdEncoding.DecodeString(field)
			if err != nil || len(k) != KeySize {
				return nil, fmt.Errorf("line %d: want the base64 of %d random bytes", i+1, KeySize)
			}
			keys = append(keys, k)
		}
	}
	return NewKeyring(keys...)
}

// GenerateKey returns a new random key in the key file format.
func GenerateKey() (string, error) {
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		return "", fmt.Errorf("generate secrets key: %w", err)
	}
	return base64.StdEncoding.EncodeToString(k), nil
}

// KeyID names a key without revealing it: 8 hex digits of its SHA-256.
func KeyID(k []byte) string {
	sum := sha256.Sum256(k)
	return hex.EncodeToString(sum[:4])
}

// Primary returns the id of the key new values are sealed with.
func (r *Keyring) Primary() string {
	if r == nil {
		return ""
	}
	return r.keys[0].id
}

// IDs returns the ids of the ring's keys, primary first.
func (r *Keyring) IDs() []string {
	if r == nil {
		return nil
	}
	out := make([]string, len(r.keys))
	for i, k := range r.keys {
		out[i] = k.id
	}
	return out
}

// Has reports whether the ring holds key id.
func (r *Keyring) Has(id string) bool {
	return r.find(id) != nil
}

func (r *Keyring) find(id string) *key {
	if r == nil {
		return nil
	}
	for i := range r.keys {
		if r.keys[i].id == id {
			return &r.keys[i]
		}
	}
	return nil
}

// Seal encrypts plain with the primary key, bound to where (the place
// the value is stored). A nil ring returns plain unchanged.
func (r *Keyring) Seal(plain, where string) (string, error) {
	if r == nil {
		return plain, nil
	}
	k := r.keys[0]
	nonce := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(plain)+k.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("seal: %w", err)
	}
	out := k.aead.Seal(nonce, nonce, []byte(plain), []byte(where))
	return Prefix + k.id + ":" + base64.RawURLEncoding.EncodeToString(out), nil
}

// Open decrypts a value Seal returned for the same where. A value that is
// not sealed (stored before encryption was configured) is returned as is.
func (r *Keyring) Open(value, where string) (string, error) {
	if !IsSealed(value) {
		return value, nil
	}
	kid, data, ok := strings.Cut(strings.TrimPrefix(value, Prefix), ":")
	if !ok {
		return "", fmt.Errorf("%s: %w", where, ErrCorrupt)
	}
	if r == nil {
		return "", fmt.Errorf("%s (key %s): %w", where, kid, ErrNoKey)
	}
	k := r.find(kid)
	if k == nil {
		return "", fmt.Errorf("%s: key %s: %w", where, kid, ErrUnknownKey)
	}
	raw, err := base64.RawURLEncoding.DecodeString(data)
	if err != nil || len(raw) < k.aead.NonceSize() {
		return "", fmt.Errorf("%s: key %s: %w", where, kid, ErrCorrupt)
	}
	n := k.aead.NonceSize()
	plain, err := k.aead.Open(nil, raw[:n], raw[n:], []byte(where))
	if err != nil {
		return "", fmt.Errorf("%s: key %s: %w", where, kid, ErrCorrupt)
	}
	return string(plain), nil
}

// IsSealed reports whether value is a sealed value (of any key).
func IsSealed(value string) bool { return strings.HasPrefix(value, Prefix) }

// SealedWith returns the id of the key that sealed value ("" when it is
// not sealed).
func SealedWith(value string) string {
	if !IsSealed(value) {
		return ""
	}
	kid, _, _ := strings.Cut(strings.TrimPrefix(value, Prefix), ":")
	return kid
}

// Current reports whether value is sealed with the primary key (a nil
// ring: whether it is plain).
func (r *Keyring) Current(value string) bool {
	return SealedWith(value) == r.Primary()
}

// Census counts stored secrets by the key that sealed them ("" counts
// those stored in plain text).
type Census map[string]int

// Add counts value.
func (c Census) Add(value string) { c[SealedWith(value)]++ }

// Merge adds the counts of o.
func (c Census) Merge(o Census) {
	for k, n := range o {
		c[k] += n
	}
}

// Check reports whether the ring can open every secret counted: none may
// be sealed when the ring is nil, and each sealing key must be in it.
func (r *Keyring) Check(c Census) error {
	var unknown []string
	for kid, n := range c {
		if kid != "" && n > 0 && !r.Has(kid) {
			unknown = append(unknown, kid)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	slices.Sort(unknown)
	if r == nil {
		return fmt.Errorf("%w: stored secrets are sealed with key %s", ErrNoKey, strings.Join(unknown, ", "))
	}
	return fmt.Errorf("stored secrets are sealed with key %s: %w (it holds %s)", strings.Join(unknown, ", "), ErrUnknownKey, strings.Join(r.IDs(), ", "))
}
