package standin

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
)

// SignatureHeader is the header PagerDuty V3 webhooks carry their
// signatures in.
const SignatureHeader = "X-PagerDuty-Signature"

// Sign returns the X-PagerDuty-Signature value PagerDuty sends for body
// under secret: "v1=<hex HMAC-SHA256(secret, body)>".
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "v1=" + hex.EncodeToString(m.Sum(nil))
}
