package devredis

import (
	"bufio"
	"encoding/binary"
	"errors"
	"hash"
	"hash/crc32"
	"math"
)

// castagnoli is the CRC32 table used by both the snapshot and the AOF.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errCorrupt reports a malformed snapshot or AOF record.
var errCorrupt = errors.New("corrupt data")

// encoder writes the primitive values both file formats are made of:
// unsigned/signed varints, fixed 64-bit words and length-prefixed strings.
// The first write error sticks and is reported by err.
type encoder struct {
	w   *bufio.Writer
	crc hash.Hash32 // optional running checksum of everything written
	buf [binary.MaxVarintLen64]byte
	err error
}

func (e *encoder) write(p []byte) {
	if e.err != nil {
		return
	}
	if e.crc != nil {
		e.crc.Write(p)
	}
	_, e.err = e.w.Write(p)
}

func (e *encoder) byte(b byte) {
	e.buf[0] = b
	e.write(e.buf[:1])
}

func (e *encoder) uvarint(v uint64) {
	e.write(e.buf[:binary.PutUvarint(e.buf[:], v)])
}

func (e *encoder) varint(v int64) {
	e.write(e.buf[:binary.PutVarint(e.buf[:], v)])
}

func (e *encoder) u64(v uint64) {
	binary.LittleEndian.PutUint64(e.buf[:8], v)
	e.write(e.buf[:8])
}

func (e *encoder) float(f float64) { e.u64(math.Float64bits(f)) }

func (e *encoder) str(s string) {
	e.uvarint(uint64(len(s)))
	if e.err != nil {
		return
	}
	if e.crc != nil {
		e.crc.Write([]byte(s))
	}
	_, e.err = e.w.WriteString(s)
}

// decoder reads what encoder wrote from an in-memory buffer. Any read past
// the end or implausible length sets err (errCorrupt) and returns zero values.
type decoder struct {
	b   []byte
	off int
	err error
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = errCorrupt
	}
}

func (d *decoder) byte() byte {
	if d.err != nil || d.off >= len(d.b) {
		d.fail()
		return 0
	}
	v := d.b[d.off]
	d.off++
	return v
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		d.fail()
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b[d.off:])
	if n <= 0 {
		d.fail()
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) u64() uint64 {
	if d.err != nil || len(d.b)-d.off < 8 {
		d.fail()
		return 0
	}
	v := binary.LittleEndian.Uint64(d.b[d.off:])
	d.off += 8
	return v
}

func (d *decoder) float() float64 { return math.Float64frombits(d.u64()) }

func (d *decoder) str() string {
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.b)-d.off) {
		d.fail()
		return ""
	}
	s := string(d.b[d.off : d.off+int(n)])
	d.off += int(n)
	return s
}

// count reads a collection length and checks it is plausible: every element
// takes at least one byte, so a count larger than the remaining input is
// corruption (and must not drive a huge allocation).
func (d *decoder) count() int {
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.b)-d.off) {
		d.fail()
		return 0
	}
	return int(n)
}
