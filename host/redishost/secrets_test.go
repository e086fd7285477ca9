package redishost_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/portico-dev/portico/devredis/devredistest"
	"github.com/portico-dev/portico/host/integrations"
	"github.com/portico-dev/portico/host/redishost"
	"github.com/portico-dev/portico/internal/secretbox"
)

func keyring(t *testing.T, keys ...string) *secretbox.Keyring {
	t.Helper()
	r, err := secretbox.ParseKeyring(strings.Join(keys, "\n"))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func genKey(t *testing.T) string {
	t.Helper()
	k, err := secretbox.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestSecretsAtRest walks an installation's secrets through the life of
// a deployment: plain text from before encryption, the first key, a
// rotation, and the errors of a missing or wrong key.
func TestSecretsAtRest(t *testing.T) {
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: miniredis.RunT(t).Addr()})
	defer rdb.Close()
	devredistest.Check(t, rdb)
	const token = "tok-plain-1234"
	raw := func() string { return rdb.Get(ctx, "portico|plugins|inst|gh").Val() }
	read := func(s *redishost.Store) (string, error) {
		inst, err := s.Installation(ctx, "gh")
		if err != nil {
			return "", err
		}
		if all, err := s.Installations(ctx); err != nil || len(all) != 1 || all[0].Spec.Secrets["apiToken"] != inst.Spec.Secrets["apiToken"] {
			t.Fatalf("Installations: %v %v", all, err)
		}
		return inst.Spec.Secrets["apiToken"], nil
	}

	// Before encryption: plain text, readable by a store with a key.
	plain := redishost.New(rdb, redishost.Options{})
	inst := &integrations.Installation{ID: "gh", Spec: integrations.Spec{Plugin: "github", Secrets: integrations.Secrets{"apiToken": token}}}
	if err := plain.PutInstallation(ctx, inst); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(raw(), token) {
		t.Fatal("without a key the secret is stored as written")
	}
	oldKey, newKey := genKey(t), genKey(t)
	first := redishost.New(rdb, redishost.Options{Keyring: keyring(t, oldKey)})
	if got, err := read(first); err != nil || got != token {
		t.Fatalf("legacy plain text: %q %v", got, err)
	}
	if c, _ := first.SecretCensus(ctx); c[""] != 1 {
		t.Fatalf("census %v", c)
	}

	// The startup pass seals it; the caller's value stays plain.
	if n, err := first.ResealSecrets(ctx); err != nil || n != 1 {
		t.Fatalf("reseal: %d %v", n, err)
	}
	if strings.Contains(raw(), token) || !strings.Contains(raw(), secretbox.Prefix+keyring(t, oldKey).Primary()) {
		t.Fatalf("stored: %s", raw())
	}
	if inst.Spec.Secrets["apiToken"] != token {
		t.Fatal("PutInstallation changed the caller's secrets")
	}
	if got, err := read(first); err != nil || got != token {
		t.Fatalf("sealed: %q %v", got, err)
	}
	if n, _ := first.ResealSecrets(ctx); n != 0 {
		t.Fatalf("a second pass rewrote %d", n)
	}

	// Rotation: the new key first, the old one still read; writes and
	// the pass use the new key.
	rotated := redishost.New(rdb, redishost.Options{Keyring: keyring(t, newKey, oldKey)})
	if got, err := read(rotated); err != nil || got != token {
		t.Fatalf("old ciphertext after rotation: %q %v", got, err)
	}
	if n, err := rotated.ResealSecrets(ctx); err != nil || n != 1 {
		t.Fatalf("reseal after rotation: %d %v", n, err)
	}
	newID := keyring(t, newKey).Primary()
	if c, _ := rotated.SecretCensus(ctx); c[newID] != 1 || len(c) != 1 {
		t.Fatalf("census after rotation %v, want all under %s", c, newID)
	}

	// Once resealed, the new key alone reads it; the old key, or none,
	// fails naming the key.
	if got, err := read(redishost.New(rdb, redishost.Options{Keyring: keyring(t, newKey)})); err != nil || got != token {
		t.Fatalf("new key alone: %q %v", got, err)
	}
	if _, err := read(redishost.New(rdb, redishost.Options{Keyring: keyring(t, oldKey)})); !errors.Is(err, secretbox.ErrUnknownKey) || !strings.Contains(err.Error(), newID) {
		t.Fatalf("old key: %v", err)
	}
	if _, err := read(redishost.New(rdb, redishost.Options{})); !errors.Is(err, secretbox.ErrNoKey) {
		t.Fatalf("no key: %v", err)
	}

	// Tampering: a sealed value moved to another installation does not open.
	stolen := strings.Replace(raw(), `"id":"gh"`, `"id":"evil"`, 1)
	rdb.Set(ctx, "portico|plugins|inst|evil", stolen, 0)
	if _, err := rotated.Installation(ctx, "evil"); !errors.Is(err, secretbox.ErrCorrupt) {
		t.Fatalf("moved ciphertext: %v", err)
	}
}
