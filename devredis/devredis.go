// Package devredis runs an embedded Redis (miniredis) for `portico dev` and
// persists it under a data directory.
//
// Persistence is Redis-like: a snapshot (catalog.snapshot) plus an
// append-only file (catalog.aof) of the writes made since. Writes are logged
// by a go-redis hook (Server.Hook). Each acknowledged write is in the AOF
// (written to the OS, so it survives kill -9) before the hook returns; the
// AOF is fsynced once a second, which bounds the loss on a machine crash to
// about one second. Close writes a final snapshot, so a graceful stop loses
// nothing. Start loads the snapshot, replays the AOF, then compacts both
// into a fresh snapshot.
//
// Only DB 0 is persisted, with strings, hashes, sets, sorted sets, lists and
// streams (entry IDs and the last generated ID preserved) and key TTLs as
// miniredis holds them.
//
// # Rules for stores
//
// Every store that writes Redis runs on devredis under `portico dev`, so it
// keeps these rules (its package doc says so and points here). Commands
// that break them are refused (by Server.Hook with ErrUnsupportedCommand)
// and never reach miniredis; the table of commands is in rules.go.
//
//   - Every client that writes carries Server.Hook: the hook is what logs a
//     write to the AOF, so a write through another client would be lost on
//     a crash, or replay around it into an inconsistent state. The server
//     refuses writes from connections not dialled through the hook (reads
//     pass, so redis-cli can inspect the data).
//   - No Lua scripts or functions (EVAL, EVALSHA, SCRIPT, FCALL, FUNCTION…):
//     the hook sees the script, not the writes it makes, so it cannot log
//     them as commands.
//   - No blocking pops (BLPOP, BRPOP, BRPOPLPUSH, BLMOVE, BLMPOP, BZPOPMIN,
//     BZPOPMAX, BZMPOP): a hooked write holds the AOF lock from send to
//     append so the log order is the apply order, and a blocked write would
//     stall every writer. Blocking reads (XREAD BLOCK) are fine.
//   - No stream consumer groups (XGROUP, XREADGROUP, XACK, XCLAIM,
//     XAUTOCLAIM, XSETID), HyperLogLog (PFADD, PFMERGE) or hash-field TTLs
//     (HEXPIRE, HSETEX…): the snapshot has no place for their state.
//   - DB 0 only (no SELECT n, MOVE, SWAPDB, COPY … DB n): only DB 0 is
//     snapshotted. No server administration either (RESTORE, MIGRATE,
//     DEBUG, SAVE, SHUTDOWN, REPLICAOF…): devredis owns persistence.
//   - MULTI/EXEC only as one pipeline (TxPipelined, Watch), never as
//     separate commands: the hook logs a transaction as one record, applied
//     entirely or not at all on replay, only when it sees it whole.
//   - Only commands in the table: one without a persistence rule is
//     refused; a store that needs it adds it to rules.go (and to rewrite in
//     hook.go when its effect is not deterministic, as for XADD * or SPOP).
//
// Two properties are not refused but matter to stores: miniredis does not
// expire keys by wall-clock time, so a key with a TTL lives until deleted
// (do not rely on expiry to release a lock); and a WATCH transaction keeps
// its pool connection while it waits for the AOF lock (see Server.write),
// so the client's pool must be larger than the number of concurrent
// transactions.
//
// A store's tests hold it to the command rules on miniredis or
// redis-server by installing a Checker (devredistest.Check does it and
// fails the test on any refusal).
package devredis

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

const (
	snapshotName = "catalog.snapshot"
	aofName      = "catalog.aof"
	lockName     = "catalog.lock"
)

// fsyncInterval is how often a dirty AOF is fsynced.
const fsyncInterval = time.Second

// compactThreshold is the AOF size that triggers a compaction while running.
var compactThreshold int64 = 64 << 20

// ErrClosed is returned for writes made after Close.
var ErrClosed = errors.New("devredis: server closed")

// ErrDataDirInUse is returned by Start when another process (or Server)
// already persists into the data directory.
var ErrDataDirInUse = errors.New("devredis: data dir in use")

// Server is an embedded miniredis whose data survives restarts.
type Server struct {
	dir   string
	lock  *os.File // held until Close
	log   *slog.Logger
	m     *miniredis.Miniredis
	guard *guard
	admin *redis.Client // unlogged client for replay and introspection

	// mu serialises hooked writes (execution and AOF append together),
	// compaction and Close. See Server.write for why execution is inside.
	mu      sync.Mutex
	aof     *os.File
	aofSize int64
	gen     uint64 // generation of the current snapshot and AOF
	dirty   bool   // AOF written since the last fsync
	closed  bool
	broken  error // persistence failure; writes are refused until a compaction succeeds

	stop chan struct{}
	done chan struct{}
}

// Start creates dataDir if needed, starts miniredis on 127.0.0.1:0, restores
// the snapshot and AOF found in dataDir, compacts them into a new snapshot
// and starts fsyncing the AOF once a second. A nil logger means slog.Default().
func Start(dataDir string, logger *slog.Logger) (*Server, error) {
	if logger == nil {
		logger = slog.Default()
	}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	lock, err := lockDir(filepath.Join(dataDir, lockName))
	if err != nil {
		return nil, err
	}
	for _, name := range []string{snapshotName + ".tmp", aofName + ".tmp"} {
		if err := os.Remove(filepath.Join(dataDir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			_ = lock.Close()
			return nil, fmt.Errorf("remove leftover %s: %w", name, err)
		}
	}

	g, err := newGuard()
	if err != nil {
		_ = lock.Close()
		return nil, err
	}
	m := miniredis.NewMiniRedis()
	if err := m.StartAddr("127.0.0.1:0"); err != nil {
		_ = lock.Close()
		return nil, fmt.Errorf("start miniredis: %w", err)
	}
	m.Server().SetPreHook(g.preHook)
	s := &Server{
		dir:   dataDir,
		lock:  lock,
		log:   logger,
		m:     m,
		guard: g,
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	s.admin = s.newAdmin()
	if err := s.restore(); err != nil {
		if s.aof != nil {
			_ = s.aof.Close()
		}
		_ = s.admin.Close()
		m.Close()
		_ = lock.Close()
		return nil, err
	}
	go s.loop()
	return s, nil
}

// restore loads the snapshot, replays the AOF and compacts.
func (s *Server) restore() error {
	start := time.Now()
	gen, keys, err := s.loadSnapshot()
	if err != nil {
		return err
	}
	loaded := time.Since(start)

	replayed := 0
	aof, err := readAOF(s.path(aofName))
	switch {
	case errors.Is(err, errNoAOF):
	case err != nil:
		s.log.Error("devredis: unreadable aof, not replayed", "err", err)
		s.preserve(aofName, "corrupt")
	case aof.gen < gen:
		// Normal after a crash between the snapshot rename and the AOF
		// rename of a compaction: the snapshot already holds these writes.
		s.log.Info("devredis: skipping aof of an older snapshot", "aof", aof.gen, "snapshot", gen)
	case aof.gen > gen:
		// The snapshot it continues is missing: replaying it alone would
		// give a partial state. Keep it aside for inspection.
		s.log.Error("devredis: aof belongs to a newer, missing snapshot; not replayed", "aof", aof.gen, "snapshot", gen)
		s.preserve(aofName, "orphaned")
	default:
		if replayed, err = s.replay(aof.records); err != nil {
			return err
		}
		if aof.tailErr != nil {
			s.log.Warn("devredis: aof ends with a torn or corrupt record; replay stopped there",
				"err", aof.tailErr, "records", len(aof.records), "discarded_bytes", aof.size-aof.valid)
			s.preserve(aofName, "corrupt")
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	s.gen = gen
	if err := s.compactLocked(); err != nil {
		return err
	}
	s.log.Info("devredis: restored", "dir", s.dir, "addr", s.m.Addr(), "keys", keys,
		"aof_records", replayed, "snapshot_load", loaded, "total", time.Since(start))
	return nil
}

// replay applies AOF records in order through pipelines.
func (s *Server) replay(records [][][]string) (int, error) {
	ctx := context.Background()
	const batch = 1000
	pipe := s.admin.Pipeline()
	failed := 0
	flush := func() error {
		if pipe.Len() == 0 {
			return nil
		}
		cmds, err := pipe.Exec(ctx)
		for _, c := range cmds {
			if e := c.Err(); e != nil && !errors.Is(e, redis.Nil) {
				if !isRedisError(e) {
					return fmt.Errorf("replay aof: %w", e)
				}
				if failed < 10 {
					s.log.Warn("devredis: aof command failed on replay", "cmd", c.Args(), "err", e)
				}
				failed++
			}
		}
		if err != nil && !isRedisError(err) {
			return fmt.Errorf("replay aof: %w", err)
		}
		return nil
	}
	for _, rec := range records {
		for _, cmd := range rec {
			args := make([]any, len(cmd))
			for i, a := range cmd {
				args[i] = a
			}
			pipe.Do(ctx, args...)
		}
		if pipe.Len() >= batch {
			if err := flush(); err != nil {
				return 0, err
			}
		}
	}
	if err := flush(); err != nil {
		return 0, err
	}
	if failed > 0 {
		s.log.Warn("devredis: aof commands failed on replay", "count", failed)
	}
	return len(records), nil
}

// preserve renames a damaged file aside so compaction does not destroy it.
func (s *Server) preserve(name, why string) {
	to := fmt.Sprintf("%s.%s-%s", name, why, time.Now().UTC().Format("20060102T150405.000000000"))
	if err := os.Rename(s.path(name), s.path(to)); err != nil {
		s.log.Error("devredis: keep damaged file", "file", name, "err", err)
		return
	}
	s.log.Warn("devredis: kept damaged file", "file", to)
}

// newAdmin returns a client whose writes are not logged (replay, restore).
func (s *Server) newAdmin() *redis.Client {
	c := redis.NewClient(&redis.Options{
		Addr:            s.m.Addr(),
		Protocol:        2,
		MaxRetries:      -1, // a retried replay command could apply twice
		DisableIdentity: true,
	})
	c.AddHook(introducer{s.guard})
	return c
}

// Addr returns the host:port miniredis listens on.
func (s *Server) Addr() string { return s.m.Addr() }

// Close stops the fsync loop, writes a final snapshot, truncates the AOF and
// stops miniredis. Writes through the hook fail with ErrClosed afterwards.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.stop)
	<-s.done

	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.compactLocked()
	if err != nil {
		// The AOF of the previous snapshot still holds every write.
		err = fmt.Errorf("final snapshot: %w", err)
		if serr := s.aof.Sync(); serr != nil {
			err = errors.Join(err, fmt.Errorf("sync aof: %w", serr))
		}
	}
	if cerr := s.aof.Close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("close aof: %w", cerr))
	}
	_ = s.admin.Close()
	s.m.Close()
	_ = s.lock.Close()
	return err
}

// loop fsyncs the AOF once a second when it was written, and compacts it
// when it grew large or after a persistence failure.
func (s *Server) loop() {
	defer close(s.done)
	t := time.NewTicker(fsyncInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		s.mu.Lock()
		f, dirty, compact := s.aof, s.dirty, s.broken != nil || s.aofSize > compactThreshold
		s.dirty = false
		s.mu.Unlock()
		if dirty {
			// Outside mu so writers do not wait for the disk. A compaction
			// may close f meanwhile; its content is then in the snapshot.
			if err := f.Sync(); err != nil && !errors.Is(err, os.ErrClosed) {
				s.log.Error("devredis: fsync aof", "err", err)
				s.mu.Lock()
				s.dirty = true
				s.mu.Unlock()
			}
		}
		if compact {
			s.mu.Lock()
			if !s.closed {
				if err := s.compactLocked(); err != nil {
					s.log.Error("devredis: compaction", "err", err)
				}
			}
			s.mu.Unlock()
		}
	}
}

// compactLocked writes a snapshot of the current data as generation gen+1
// and replaces the AOF with an empty one of the same generation. The order
// keeps every crash point recoverable:
//
//  1. new AOF written to catalog.aof.tmp (header only) and fsynced;
//  2. snapshot written to a temporary file, fsynced, renamed, dir fsynced;
//     a crash now leaves the old AOF, whose generation no longer matches,
//     so it is skipped (the snapshot contains its writes);
//  3. catalog.aof.tmp renamed over catalog.aof, dir fsynced.
//
// A failure at step 3 leaves the live AOF unusable, so writes are refused
// (s.broken) until a later compaction succeeds. The caller holds s.mu.
func (s *Server) compactLocked() error {
	gen := s.gen + 1
	tmp := s.path(aofName + ".tmp")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("create aof: %w", err)
	}
	header := aofHeader(gen)
	if _, err := f.Write(header); err != nil {
		_ = f.Close()
		_ = os.Remove(tmp)
		return fmt.Errorf("write aof header: %w", err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		_ = os.Remove(tmp)
		return fmt.Errorf("sync aof: %w", err)
	}
	if _, err := s.writeSnapshot(gen); err != nil {
		_ = f.Close()
		_ = os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, s.path(aofName)); err != nil {
		_ = f.Close()
		_ = os.Remove(tmp)
		s.broken = fmt.Errorf("rename aof: %w", err)
		return s.broken
	}
	if err := syncDir(s.dir); err != nil {
		_ = f.Close()
		s.broken = err
		return err
	}
	if s.aof != nil {
		_ = s.aof.Close()
	}
	s.aof, s.aofSize, s.gen, s.dirty, s.broken = f, int64(len(header)), gen, false, nil
	return nil
}

// appendLocked writes one framed record to the AOF. The write reaches the
// OS before the hook acknowledges the command, so it survives the process
// being killed; the loop fsyncs it within a second. The caller holds s.mu.
func (s *Server) appendLocked(rec []byte) error {
	n, err := s.aof.Write(rec)
	s.aofSize += int64(n)
	s.dirty = true
	if err == nil && n < len(rec) {
		err = io.ErrShortWrite
	}
	if err != nil {
		// A partial record is a torn tail for replay; later records would be
		// lost behind it, so refuse writes until a compaction rewrites the AOF.
		s.broken = fmt.Errorf("append aof: %w", err)
		return s.broken
	}
	return nil
}

func (s *Server) path(name string) string { return filepath.Join(s.dir, name) }
