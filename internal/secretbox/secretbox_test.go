package secretbox_test

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"

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

func newKey(t *testing.T) string {
	t.Helper()
	k, err := secretbox.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestRoundTrip(t *testing.T) {
	k := newKey(t)
	r := ring(t, k)
	raw, _ := base64.StdEncoding.DecodeString(k)
	if r.Primary() != secretbox.KeyID(raw) || len(r.Primary()) != 8 {
		t.Fatalf("primary %q", r.Primary())
	}
	for _, plain := range []string{"", "s3cret", strings.Repeat("x", 10_000), "enc:v1:looks:sealed"} {
		sealed, err := r.Seal(plain, "here")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(sealed, "enc:v1:"+r.Primary()+":") || (plain != "" && strings.Contains(sealed, plain)) {
			t.Fatalf("sealed %q", sealed)
		}
		if again, _ := r.Seal(plain, "here"); again == sealed {
			t.Fatal("two seals of one value are equal (nonce reused)")
		}
		got, err := r.Open(sealed, "here")
		if err != nil || got != plain {
			t.Fatalf("open: %q %v", got, err)
		}
	}
	// Values stored before encryption was configured stay readable.
	if got, err := r.Open("legacy-plain", "here"); err != nil || got != "legacy-plain" {
		t.Fatalf("plain: %q %v", got, err)
	}
}

func TestRotation(t *testing.T) {
	oldKey, newKey := newKey(t), newKey(t)
	old := ring(t, oldKey)
	sealedOld, _ := old.Seal("token", "where")

	rotated := ring(t, newKey, oldKey) // new primary, old still read
	if got, err := rotated.Open(sealedOld, "where"); err != nil || got != "token" {
		t.Fatalf("old ciphertext under the rotated ring: %q %v", got, err)
	}
	sealedNew, _ := rotated.Seal("token", "where")
	if secretbox.SealedWith(sealedNew) != rotated.Primary() || rotated.Primary() == old.Primary() {
		t.Fatalf("new writes sealed with %s, want the new key %s", secretbox.SealedWith(sealedNew), rotated.Primary())
	}
	if rotated.Current(sealedOld) || !rotated.Current(sealedNew) {
		t.Fatal("Current misjudges which values need resealing")
	}
	// The old ring cannot read what the new key sealed, and says which key.
	_, err := old.Open(sealedNew, "where")
	if !errors.Is(err, secretbox.ErrUnknownKey) || !strings.Contains(err.Error(), rotated.Primary()) {
		t.Fatalf("old ring opening a new value: %v", err)
	}
}

func TestTamperAndMisuse(t *testing.T) {
	r := ring(t, newKey(t))
	sealed, _ := r.Seal("token", "integration/a/secret/x")
	prefix, body := sealed[:strings.LastIndex(sealed, ":")+1], sealed[strings.LastIndex(sealed, ":")+1:]
	raw, _ := base64.RawURLEncoding.DecodeString(body)
	raw[len(raw)-1] ^= 1
	flipped := prefix + base64.RawURLEncoding.EncodeToString(raw)
	tests := []struct {
		name, value, where string
		want               error
	}{
		{"flipped bit", flipped, "integration/a/secret/x", secretbox.ErrCorrupt},
		{"moved elsewhere", sealed, "action/b/header/Authorization", secretbox.ErrCorrupt},
		{"truncated", prefix + "AAAA", "integration/a/secret/x", secretbox.ErrCorrupt},
		{"no kid", "enc:v1:garbage", "integration/a/secret/x", secretbox.ErrCorrupt},
		{"wrong key", sealed, "integration/a/secret/x", secretbox.ErrUnknownKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rr := r
			if tt.want == secretbox.ErrUnknownKey {
				rr = ring(t, newKey(t))
			}
			if got, err := rr.Open(tt.value, tt.where); !errors.Is(err, tt.want) || got != "" {
				t.Fatalf("Open = %q, %v; want %v", got, err, tt.want)
			}
		})
	}
	var none *secretbox.Keyring
	if _, err := none.Open(sealed, "integration/a/secret/x"); !errors.Is(err, secretbox.ErrNoKey) {
		t.Fatalf("nil ring: %v", err)
	}
	if got, _ := none.Seal("plain", "x"); got != "plain" {
		t.Fatalf("nil ring seals: %q", got)
	}
}

func TestParseKeyring(t *testing.T) {
	a, b := newKey(t), newKey(t)
	r, err := secretbox.ParseKeyring("# portico secrets keys\n" + a + "\n\n  " + b + "  \n")
	if err != nil || len(r.IDs()) != 2 {
		t.Fatalf("%v %v", r.IDs(), err)
	}
	if r2, err := secretbox.ParseKeyring(a + "," + b); err != nil || r2.Primary() != r.Primary() {
		t.Fatalf("comma separated: %v", err)
	}
	for _, bad := range []string{"", "# only a comment", "not base64!", base64.StdEncoding.EncodeToString([]byte("short"))} {
		if _, err := secretbox.ParseKeyring(bad); err == nil {
			t.Errorf("ParseKeyring(%q) accepted", bad)
		} else if strings.Contains(err.Error(), bad) && bad != "" {
			t.Errorf("error %q repeats the key text", err)
		}
	}
}

func TestCheck(t *testing.T) {
	a := ring(t, newKey(t))
	sealed, _ := a.Seal("x", "w")
	c := secretbox.Census{}
	c.Add("plain")
	c.Add(sealed)
	var none *secretbox.Keyring
	if err := none.Check(secretbox.Census{"": 3}); err != nil {
		t.Fatalf("plain secrets need no key: %v", err)
	}
	if err := none.Check(c); !errors.Is(err, secretbox.ErrNoKey) || !strings.Contains(err.Error(), a.Primary()) {
		t.Fatalf("no key: %v", err)
	}
	other := ring(t, newKey(t))
	if err := other.Check(c); !errors.Is(err, secretbox.ErrUnknownKey) || !strings.Contains(err.Error(), a.Primary()) {
		t.Fatalf("wrong key: %v", err)
	}
	if err := a.Check(c); err != nil {
		t.Fatal(err)
	}
}
