package devredis

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/alicebob/miniredis/v2"
)

// Snapshot file format (integers little-endian, uvarint/varint as in
// encoding/binary):
//
//	"PDRSNP01" | generation uint64 | entry* | 0xFF | crc32c(everything before) uint32
//	entry:  tag byte | key | ttl varint (nanoseconds, 0 = none) | value
//	string: value
//	hash:   uvarint n, n × (field, value)
//	set:    uvarint n, n × member
//	zset:   uvarint n, n × (member, float64 bits)
//	list:   uvarint n, n × element
//	stream: last-generated-id, uvarint n, n × (id, uvarint m, m × value)
//
// Strings are uvarint length + bytes. The file is written to a temporary
// name, fsynced and renamed, so it is either the old or the new snapshot.
const snapMagic = "PDRSNP01"

const (
	tagString byte = 1 + iota
	tagHash
	tagSet
	tagZSet
	tagList
	tagStream
	tagEnd byte = 0xFF
)

// streamPlaceholder is the field/value of the entry briefly added while
// restoring a stream whose last generated ID is beyond its last entry.
var streamPlaceholder = []string{"devredis", "placeholder"}

// writeSnapshot dumps DB 0 into a new snapshot of generation gen and
// atomically replaces the current one. The caller holds s.mu so no hooked
// write runs meanwhile.
func (s *Server) writeSnapshot(gen uint64) (int, error) {
	final := s.path(snapshotName)
	tmp := final + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return 0, fmt.Errorf("create snapshot: %w", err)
	}
	defer func() {
		if f != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()

	bw := bufio.NewWriterSize(f, 1<<20)
	crc := crc32.New(castagnoli)
	e := &encoder{w: bw, crc: crc}
	e.write([]byte(snapMagic))
	e.u64(gen)
	n, err := s.dump(e)
	if err != nil {
		return 0, err
	}
	e.byte(tagEnd)
	if e.err != nil {
		return 0, fmt.Errorf("write snapshot: %w", e.err)
	}
	if _, err := bw.Write(binary.LittleEndian.AppendUint32(nil, crc.Sum32())); err != nil {
		return 0, fmt.Errorf("write snapshot: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return 0, fmt.Errorf("write snapshot: %w", err)
	}
	if err := f.Sync(); err != nil {
		return 0, fmt.Errorf("sync snapshot: %w", err)
	}
	err = f.Close()
	f = nil
	if err != nil {
		_ = os.Remove(tmp)
		return 0, fmt.Errorf("close snapshot: %w", err)
	}
	if err := os.Rename(tmp, final); err != nil {
		_ = os.Remove(tmp)
		return 0, fmt.Errorf("rename snapshot: %w", err)
	}
	if err := syncDir(s.dir); err != nil {
		return 0, err
	}
	return n, nil
}

// dump encodes every key of DB 0 and returns how many it wrote.
func (s *Server) dump(e *encoder) (int, error) {
	m := s.m
	n := 0
	for _, k := range m.Keys() {
		typ := m.Type(k)
		ttl := m.TTL(k)
		var err error
		switch typ {
		case "string":
			var v string
			if v, err = m.Get(k); err == nil {
				s.entryHeader(e, tagString, k, ttl)
				e.str(v)
			}
		case "hash":
			var fields []string
			if fields, err = m.HKeys(k); err == nil {
				s.entryHeader(e, tagHash, k, ttl)
				e.uvarint(uint64(len(fields)))
				for _, f := range fields {
					e.str(f)
					e.str(m.HGet(k, f))
				}
			}
		case "set":
			var members []string
			if members, err = m.Members(k); err == nil {
				s.entryHeader(e, tagSet, k, ttl)
				e.uvarint(uint64(len(members)))
				for _, v := range members {
					e.str(v)
				}
			}
		case "zset":
			var scores map[string]float64
			if scores, err = m.SortedSet(k); err == nil {
				members := make([]string, 0, len(scores))
				for v := range scores {
					members = append(members, v)
				}
				sort.Strings(members)
				s.entryHeader(e, tagZSet, k, ttl)
				e.uvarint(uint64(len(members)))
				for _, v := range members {
					e.str(v)
					e.float(scores[v])
				}
			}
		case "list":
			var elems []string
			if elems, err = m.List(k); err == nil {
				s.entryHeader(e, tagList, k, ttl)
				e.uvarint(uint64(len(elems)))
				for _, v := range elems {
					e.str(v)
				}
			}
		case "stream":
			var entries []miniredis.StreamEntry
			if entries, err = m.Stream(k); err == nil {
				var last string
				if last, err = s.lastGeneratedID(k); err != nil {
					return 0, err
				}
				s.entryHeader(e, tagStream, k, ttl)
				e.str(last)
				e.uvarint(uint64(len(entries)))
				for _, en := range entries {
					e.str(en.ID)
					e.uvarint(uint64(len(en.Values)))
					for _, v := range en.Values {
						e.str(v)
					}
				}
			}
		case "":
			continue // expired or deleted meanwhile
		default:
			s.log.Warn("devredis: key type not persisted, skipping", "key", k, "type", typ)
			continue
		}
		if errors.Is(err, miniredis.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("dump %q: %w", k, err)
		}
		n++
		if e.err != nil {
			return 0, fmt.Errorf("write snapshot: %w", e.err)
		}
	}
	return n, nil
}

func (s *Server) entryHeader(e *encoder, tag byte, key string, ttl time.Duration) {
	e.byte(tag)
	e.str(key)
	e.varint(int64(ttl))
}

// lastGeneratedID asks the server for a stream's last generated ID, which
// is past the last entry when trailing entries were deleted. miniredis's
// Go API does not expose it.
func (s *Server) lastGeneratedID(key string) (string, error) {
	res, err := s.admin.Do(context.Background(), "xinfo", "stream", key).Slice()
	if err != nil {
		return "", fmt.Errorf("xinfo stream %q: %w", key, err)
	}
	for i := 0; i+1 < len(res); i += 2 {
		if name, _ := res[i].(string); name == "last-generated-id" {
			id, _ := res[i+1].(string)
			return id, nil
		}
	}
	return "", nil
}

// loadSnapshot restores the snapshot into the (empty) server and returns its
// generation and key count; no snapshot yields generation 0.
func (s *Server) loadSnapshot() (gen uint64, keys int, err error) {
	data, err := os.ReadFile(s.path(snapshotName))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("read snapshot: %w", err)
	}
	if len(data) < len(snapMagic)+8+1+4 || string(data[:len(snapMagic)]) != snapMagic {
		return 0, 0, fmt.Errorf("read snapshot: bad header: %w", errCorrupt)
	}
	body := data[:len(data)-4]
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(data[len(data)-4:]) {
		return 0, 0, fmt.Errorf("read snapshot: checksum mismatch: %w", errCorrupt)
	}
	d := &decoder{b: body, off: len(snapMagic)}
	gen = d.u64()
	for d.err == nil {
		tag := d.byte()
		if tag == tagEnd {
			break
		}
		key := d.str()
		ttl := time.Duration(d.varint())
		if err := s.restoreEntry(d, tag, key); err != nil {
			return 0, 0, fmt.Errorf("restore %q: %w", key, err)
		}
		if d.err == nil && ttl != 0 {
			s.m.SetTTL(key, ttl)
		}
		keys++
	}
	if d.err == nil && d.off != len(body) {
		d.fail()
	}
	if d.err != nil {
		return 0, 0, fmt.Errorf("decode snapshot at offset %d: %w", d.off, d.err)
	}
	return gen, keys, nil
}

// restoreEntry decodes one value and writes it with miniredis's Go API,
// which is several times faster than replaying commands over the network.
func (s *Server) restoreEntry(d *decoder, tag byte, key string) error {
	m := s.m
	switch tag {
	case tagString:
		v := d.str()
		if d.err != nil {
			return nil
		}
		return m.Set(key, v)
	case tagHash:
		fv := make([]string, 2*d.count())
		for i := range fv {
			fv[i] = d.str()
		}
		if d.err == nil && len(fv) > 0 {
			m.HSet(key, fv...)
		}
	case tagSet:
		members := make([]string, d.count())
		for i := range members {
			members[i] = d.str()
		}
		if d.err == nil && len(members) > 0 {
			_, err := m.SAdd(key, members...)
			return err
		}
	case tagZSet:
		n := d.count()
		for i := 0; i < n && d.err == nil; i++ {
			member := d.str()
			score := d.float()
			if d.err == nil {
				if _, err := m.ZAdd(key, score, member); err != nil {
					return err
				}
			}
		}
	case tagList:
		elems := make([]string, d.count())
		for i := range elems {
			elems[i] = d.str()
		}
		if d.err == nil && len(elems) > 0 {
			_, err := m.RPush(key, elems...)
			return err
		}
	case tagStream:
		last := d.str()
		n := d.count()
		lastEntry := ""
		for i := 0; i < n && d.err == nil; i++ {
			id := d.str()
			values := make([]string, d.count())
			for j := range values {
				values[j] = d.str()
			}
			if d.err != nil {
				break
			}
			if _, err := m.XAdd(key, id, values); err != nil {
				return fmt.Errorf("xadd %s: %w", id, err)
			}
			lastEntry = id
		}
		if d.err == nil && last != "" && (lastEntry == "" || streamIDLess(lastEntry, last)) {
			// Re-create the last generated ID (trailing entries were deleted,
			// or the stream is empty) so new IDs keep increasing.
			if _, err := m.XAdd(key, last, streamPlaceholder); err != nil {
				return fmt.Errorf("xadd %s: %w", last, err)
			}
			if err := s.admin.XDel(context.Background(), key, last).Err(); err != nil {
				return fmt.Errorf("xdel %s: %w", last, err)
			}
		}
	default:
		d.fail()
	}
	return nil
}

// streamIDLess reports whether stream ID a sorts before b ("ms-seq").
func streamIDLess(a, b string) bool {
	pa, pb := parseStreamID(a), parseStreamID(b)
	if pa[0] != pb[0] {
		return pa[0] < pb[0]
	}
	return pa[1] < pb[1]
}

func parseStreamID(id string) [2]uint64 {
	ms, seq, _ := strings.Cut(id, "-")
	a, _ := strconv.ParseUint(ms, 10, 64)
	b, _ := strconv.ParseUint(seq, 10, 64)
	return [2]uint64{a, b}
}

// syncDir fsyncs a directory so renames and creations in it are durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync dir: %w", err)
	}
	return nil
}
