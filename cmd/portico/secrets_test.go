package main

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/portico-dev/portico/core/actions/redisactions"
	"github.com/portico-dev/portico/internal/secretbox"
)

// TestServeRefusesSecretsItCannotOpen starts `portico serve` against a
// Redis that holds encrypted secrets, with no key and with a wrong key:
// both refuse to start, naming the key that sealed them.
func TestServeRefusesSecretsItCannotOpen(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	key, _ := secretbox.GenerateKey()
	keys, err := secretbox.ParseKeyring(key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := redisactions.New(rdb, redisactions.Options{Keyring: keys}).InitSecret(context.Background(), "deploy", "whsec_x"); err != nil {
		t.Fatal(err)
	}
	wrong, _ := secretbox.GenerateKey()
	tests := []struct {
		name, env string
		want      error
	}{
		{"no key", "", secretbox.ErrNoKey},
		{"wrong key", wrong, secretbox.ErrUnknownKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(secretsKeyEnv, tt.env)
			if tt.env == "" {
				os.Unsetenv(secretsKeyEnv)
			}
			cmd := rootCmd()
			cmd.SetArgs([]string{"serve", "--redis-url", "redis://" + mr.Addr(), "--admin-token", "t", "--addr", "127.0.0.1:0"})
			done := make(chan error, 1)
			go func() { done <- cmd.Execute() }()
			select {
			case err := <-done:
				if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), keys.Primary()) {
					t.Fatalf("serve: %v; want %v naming key %s", err, tt.want, keys.Primary())
				}
			case <-time.After(2 * time.Minute):
				t.Fatal("serve started without a key that opens the stored secrets")
			}
		})
	}
}

// TestDevKeyring checks that dev generates its key file once (0600) and
// reads it back after a restart.
func TestDevKeyring(t *testing.T) {
	os.Unsetenv(secretsKeyEnv)
	dir := t.TempDir()
	var sc secretsConfig
	first, err := sc.keyring(dir)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dir + "/secrets.key")
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	again, err := sc.keyring(dir)
	if err != nil || again.Primary() != first.Primary() {
		t.Fatalf("restart: %v %v", again.IDs(), err)
	}
	if none, err := sc.keyring(""); none != nil || err != nil {
		t.Fatalf("serve without a key: %v %v", none, err)
	}
}
