package redisactions_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/portico-dev/portico/core/actions"
	"github.com/portico-dev/portico/core/actions/redisactions"
	"github.com/portico-dev/portico/devredis/devredistest"
	"github.com/portico-dev/portico/internal/secretbox"
)

func ring(t *testing.T, keys ...string) *secretbox.Keyring {
	t.Helper()
	r, err := secretbox.ParseKeyring(strings.Join(keys, "\n"))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestSecretsAtRest stores signing secrets and webhook headers in plain
// text (as before encryption), then with a key, through a rotation, and
// checks that every value stays readable, that the startup pass reseals
// all of them with the primary key, and that Redis never holds a value
// once sealed.
func TestSecretsAtRest(t *testing.T) {
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: miniredis.RunT(t).Addr()})
	defer rdb.Close()
	devredistest.Check(t, rdb)
	const sign, hdr, stepHdr = "whsec_plain", "Bearer ci-plain", "Bearer step-plain"
	dump := func() string {
		var b strings.Builder
		for _, k := range rdb.Keys(ctx, "*").Val() {
			if rdb.Type(ctx, k).Val() == "hash" {
				fmt.Fprintln(&b, rdb.HGetAll(ctx, k).Val())
			} else if rdb.Type(ctx, k).Val() == "string" {
				fmt.Fprintln(&b, rdb.Get(ctx, k).Val())
			}
		}
		return b.String()
	}
	check := func(s *redisactions.Store) error {
		if v, err := s.Secret(ctx, "deploy"); err != nil || v != sign {
			return fmt.Errorf("signing secret %q %v", v, err)
		}
		for _, ref := range []actions.HeaderRef{
			{Action: "deploy", ActionVersion: 1, Step: actions.WebhookStep},
			{Action: "deploy", ActionVersion: 2, Step: actions.WebhookStep},
			{Action: "x", Workflow: "flow", WorkflowVersion: 1, Step: "undo"},
		} {
			h, err := s.WebhookHeaders(ctx, ref)
			if err != nil {
				return err
			}
			if want := map[bool]string{true: stepHdr, false: hdr}[ref.Workflow != ""]; h["Authorization"] != want {
				return fmt.Errorf("%+v: %v", ref, h)
			}
		}
		return nil
	}

	legacy := redisactions.New(rdb, redisactions.Options{})
	if _, err := legacy.InitSecret(ctx, "deploy", sign); err != nil {
		t.Fatal(err)
	}
	for _, url := range []string{"https://ci/v1", "https://ci/v2"} {
		a := &actions.Action{Identifier: "deploy", Blueprint: "service", Operation: actions.OperationDay2,
			Invocation: actions.Invocation{Type: actions.InvokeWebhook, URL: url, Headers: map[string]string{"Authorization": hdr}}}
		if _, _, err := legacy.PutAction(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	w := &actions.Workflow{Identifier: "flow", Steps: []actions.Step{{ID: "s", Type: actions.StepSleep, Duration: "1s",
		OnFailure: []actions.Step{{ID: "undo", Type: actions.StepWebhook, URL: "https://ci/undo", Headers: map[string]string{"Authorization": stepHdr}}}}}}
	if _, _, err := legacy.PutWorkflow(ctx, w); err != nil {
		t.Fatal(err)
	}

	oldKey, _ := secretbox.GenerateKey()
	newKey, _ := secretbox.GenerateKey()
	first := redisactions.New(rdb, redisactions.Options{Keyring: ring(t, oldKey)})
	if err := check(first); err != nil {
		t.Fatalf("plain text under a key: %v", err)
	}
	if c, _ := first.SecretCensus(ctx); c[""] != 4 {
		t.Fatalf("census %v, want 4 plain values", c)
	}
	if n, err := first.ResealSecrets(ctx); err != nil || n != 4 {
		t.Fatalf("reseal: %d %v", n, err)
	}
	for _, v := range []string{sign, hdr, stepHdr} {
		if strings.Contains(dump(), v) {
			t.Fatalf("Redis still holds %q", v)
		}
	}
	if err := check(first); err != nil {
		t.Fatalf("sealed: %v", err)
	}
	// A PUT of the same plain values is unchanged (no new version).
	if _, created, err := first.PutWorkflow(ctx, w); err != nil || created {
		t.Fatalf("re-put: %v %v", created, err)
	}
	if got, _ := first.GetWorkflow(ctx, "flow", 0); got.Version != 1 {
		t.Fatalf("re-put of the same headers made version %d", got.Version)
	}

	rotated := redisactions.New(rdb, redisactions.Options{Keyring: ring(t, newKey, oldKey)})
	if err := check(rotated); err != nil {
		t.Fatalf("old ciphertext after rotation: %v", err)
	}
	if n, err := rotated.ResealSecrets(ctx); err != nil || n != 4 {
		t.Fatalf("reseal after rotation: %d %v", n, err)
	}
	if c, _ := rotated.SecretCensus(ctx); c[ring(t, newKey).Primary()] != 4 || len(c) != 1 {
		t.Fatalf("census after rotation %v", c)
	}
	if err := check(redisactions.New(rdb, redisactions.Options{Keyring: ring(t, newKey)})); err != nil {
		t.Fatalf("new key alone: %v", err)
	}
	if _, err := redisactions.New(rdb, redisactions.Options{}).Secret(ctx, "deploy"); !errors.Is(err, secretbox.ErrNoKey) {
		t.Fatalf("no key: %v", err)
	}
	if _, err := redisactions.New(rdb, redisactions.Options{Keyring: ring(t, oldKey)}).GetAction(ctx, "deploy", 0); !errors.Is(err, secretbox.ErrUnknownKey) {
		t.Fatalf("old key: %v", err)
	}
}
