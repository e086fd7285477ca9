package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/spf13/pflag"

	"github.com/portico-dev/portico/internal/secretbox"
)

// secretsKeyEnv holds the secrets keys themselves (the key file format),
// for deployments that pass secrets through the environment.
const secretsKeyEnv = "PORTICO_SECRETS_KEY"

// secretsConfig is where a process finds the keys that seal secrets at
// rest (integration secrets, signing secrets, webhook headers).
type secretsConfig struct {
	keyFile string
}

// register adds --secrets-key-file (PORTICO_SECRETS_KEY_FILE via bindEnv).
func (c *secretsConfig) register(fs *pflag.FlagSet, extra string) {
	fs.StringVar(&c.keyFile, "secrets-key-file", "", "file of the keys that encrypt secrets at rest: one base64 32-byte key a line, "+
		"the first encrypts, the others are still read (rotation); or the keys themselves in "+secretsKeyEnv+extra)
}

// keyring loads the keys: the key file, else PORTICO_SECRETS_KEY, else
// (devDir set) <devDir>/secrets.key, generated when absent. nil means no
// key: secrets are stored in plain text.
func (c *secretsConfig) keyring(devDir string) (*secretbox.Keyring, error) {
	env, inEnv := os.LookupEnv(secretsKeyEnv)
	switch {
	case c.keyFile != "" && inEnv:
		return nil, fmt.Errorf("give the secrets keys once: --secrets-key-file or %s, not both", secretsKeyEnv)
	case c.keyFile != "":
		raw, err := os.ReadFile(c.keyFile)
		if err != nil {
			return nil, fmt.Errorf("--secrets-key-file: %w", err)
		}
		keys, err := secretbox.ParseKeyring(string(raw))
		if err != nil {
			return nil, fmt.Errorf("--secrets-key-file %s: %w", c.keyFile, err)
		}
		return keys, nil
	case inEnv:
		keys, err := secretbox.ParseKeyring(env)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", secretsKeyEnv, err)
		}
		return keys, nil
	case devDir != "":
		return devKeyring(filepath.Join(devDir, "secrets.key"))
	}
	return nil, nil
}

// devKeyring reads the dev key file, creating it (0600) with a new key
// when absent.
func devKeyring(path string) (*secretbox.Keyring, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		key, gerr := secretbox.GenerateKey()
		if gerr != nil {
			return nil, gerr
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("create data dir: %w", err)
		}
		raw = []byte("# Portico secrets keys: the first encrypts, the others are still read.\n" + key + "\n")
		if err := os.WriteFile(path, raw, 0o600); err != nil {
			return nil, fmt.Errorf("write secrets key: %w", err)
		}
		fmt.Fprintf(os.Stderr, "secrets key: generated in %s\n", path)
	} else if err != nil {
		return nil, fmt.Errorf("read secrets key: %w", err)
	}
	keys, err := secretbox.ParseKeyring(string(raw))
	if err != nil {
		return nil, fmt.Errorf("secrets key %s: %w", path, err)
	}
	return keys, nil
}

// secretStore is a store that keeps secrets.
type secretStore interface {
	SecretCensus(ctx context.Context) (secretbox.Census, error)
	ResealSecrets(ctx context.Context) (int, error)
}

// prepareSecrets refuses to start when keys cannot open every stored
// secret (none given while secrets are encrypted, or none of the keys
// that sealed them), then seals again with the primary key what is stored
// in plain text or under an older key.
func prepareSecrets(ctx context.Context, log *slog.Logger, keys *secretbox.Keyring, stores ...secretStore) error {
	census := secretbox.Census{}
	for _, s := range stores {
		c, err := s.SecretCensus(ctx)
		if err != nil {
			return fmt.Errorf("read stored secrets: %w", err)
		}
		census.Merge(c)
	}
	if err := keys.Check(census); err != nil {
		if keys == nil {
			return fmt.Errorf("%w: start with --secrets-key-file or %s", err, secretsKeyEnv)
		}
		return fmt.Errorf("%w: add that key to the key file (after the primary) to read them", err)
	}
	if keys == nil {
		if census[""] > 0 {
			log.Warn("no secrets key: secrets are stored in plain text", "secrets", census[""], "see", "--secrets-key-file")
		}
		return nil
	}
	n := 0
	for _, s := range stores {
		m, err := s.ResealSecrets(ctx)
		if err != nil {
			return fmt.Errorf("encrypt stored secrets with key %s: %w", keys.Primary(), err)
		}
		n += m
	}
	if n > 0 {
		log.Info("encrypted stored secrets with the primary key", "key", keys.Primary(), "rewritten", n)
	}
	return nil
}
