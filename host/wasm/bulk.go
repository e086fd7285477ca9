package wasm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// The bulk channel (see pdk/wasm): Extism's go-pdk reads and writes host
// memory 8 bytes per host call, which made large inputs and outputs the
// slowest part of a call (~3 MB/s). A guest built with pdk/wasm exports
// bulkExport; the host calls it once on a new instance and from then on
// passes payloads of bulkMin bytes or more through the instance's WASI
// stdin and stdout, which copy straight into and out of guest memory, and
// only a small marker through Extism.
const (
	bulkExport = "portico_bulk_v1"
	bulkMagic  = "\xffPBULK" // no JSON document starts with 0xff
	bulkMin    = 512
	// maxBulkOut caps what a guest writes to stdout during one call; a
	// plugin printing without end cannot grow the host's memory.
	maxBulkOut = 64 << 20
)

// errBulk reports a marker whose payload is not there.
var errBulk = errors.New("wasm: bulk payload missing")

// bulk holds one instance's stdin (what the host hands over) and stdout
// (what the guest hands back). An instance serves one call at a time, so
// neither needs a lock.
type bulk struct {
	in  bytes.Buffer
	out cappedBuffer
}

// reset empties both directions at the start of a call.
func (b *bulk) reset() {
	b.in.Reset()
	b.out.buf.Reset()
}

// give hands p to the guest: a large p goes to its stdin and the marker is
// returned in its place.
func (b *bulk) give(p []byte) []byte {
	if len(p) < bulkMin || len(p) > 1<<31 {
		return p
	}
	b.in.Write(p)
	m := make([]byte, len(bulkMagic)+4)
	copy(m, bulkMagic)
	binary.LittleEndian.PutUint32(m[len(bulkMagic):], uint32(len(p)))
	return m
}

// receive returns p, or the payload it marks: the last n bytes the guest
// wrote to its stdout (whatever it printed before is dropped).
func (b *bulk) receive(p []byte) ([]byte, error) {
	if len(p) != len(bulkMagic)+4 || string(p[:len(bulkMagic)]) != bulkMagic {
		return p, nil
	}
	n := int(binary.LittleEndian.Uint32(p[len(bulkMagic):]))
	out := b.out.buf.Bytes()
	if n > len(out) {
		return nil, fmt.Errorf("%w: marker of %d bytes, %d written", errBulk, n, len(out))
	}
	payload := bytes.Clone(out[len(out)-n:])
	b.out.buf.Reset()
	return payload, nil
}

// cappedBuffer is a guest's stdout: writes past maxBulkOut fail.
type cappedBuffer struct{ buf bytes.Buffer }

func (c *cappedBuffer) Write(p []byte) (int, error) {
	if c.buf.Len()+len(p) > maxBulkOut {
		return 0, fmt.Errorf("wasm: stdout over %d bytes in one call", maxBulkOut)
	}
	return c.buf.Write(p)
}
