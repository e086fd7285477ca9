package integrations

// WebhookBuckets is how many webhook rate-limit buckets m holds.
func (m *Manager) WebhookBuckets() int { return m.limiter.Len() }
