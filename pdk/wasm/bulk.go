//go:build wasip1

package wasm

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
)

// The bulk channel. Extism's go-pdk moves bytes between the host's memory
// and the guest's 8 at a time, through a host call each: a megabyte costs
// well over 100 ms in a loop-protected guest, which made resync pages and
// webhook bodies of real APIs the slowest part of a sync. WASI's stdin and
// stdout copy straight into and out of the guest's memory instead, so a
// host that offers it (by calling the portico_bulk_v1 export once on a new
// instance) passes large inputs and outputs through them: the host writes
// the bytes to the instance's stdin and hands over a bulk marker; the
// guest writes large outputs to stdout and returns a marker. Anything the
// plugin itself prints to stdout before a bulk write is dropped by the
// host, which takes the last n bytes.

// bulkMin: smaller payloads are cheaper through Extism's memory.
const bulkMin = 512

// bulkMagic starts a marker (no JSON document starts with 0xff); the
// payload's length follows as 4 little-endian bytes.
const bulkMagic = "\xffPBULK"

var bulkOn bool

//go:wasmexport portico_bulk_v1
func enableBulk() int32 {
	bulkOn = true
	return 0
}

// fromBulk returns b, or the payload it marks read from stdin.
func fromBulk(b []byte) ([]byte, error) {
	if len(b) != len(bulkMagic)+4 || string(b[:len(bulkMagic)]) != bulkMagic {
		return b, nil
	}
	buf := make([]byte, binary.LittleEndian.Uint32(b[len(bulkMagic):]))
	if _, err := io.ReadFull(os.Stdin, buf); err != nil {
		return nil, fmt.Errorf("read bulk input: %w", err)
	}
	return buf, nil
}

// toBulk writes a large b to stdout and returns its marker; small ones, or
// all when the host did not offer the channel, are returned as they are.
func toBulk(b []byte) []byte {
	if !bulkOn || len(b) < bulkMin {
		return b
	}
	if _, err := os.Stdout.Write(b); err != nil {
		return b // the host refused it (its cap): go through Extism's memory
	}
	m := make([]byte, len(bulkMagic)+4)
	copy(m, bulkMagic)
	binary.LittleEndian.PutUint32(m[len(bulkMagic):], uint32(len(b)))
	return m
}
