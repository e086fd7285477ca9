package actions

import "context"

// WatchRun watches a run's record for new revisions (see Store.WatchRun):
// watch first, then read with GetRun, and re-read on every signal.
func (s *Service) WatchRun(ctx context.Context, id string) (changed <-chan struct{}, stop func(), err error) {
	return s.store.WatchRun(ctx, id)
}
