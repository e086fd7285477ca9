package devredis

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
)

// AOF file format (all integers little-endian):
//
//	header: "PDRAOF01" | generation uint64 | crc32c(magic+generation) uint32
//	record: payload length uint32 | crc32c(payload) uint32 | payload
//	payload: uvarint #commands, then per command uvarint #args and per arg
//	         uvarint length + bytes
//
// One record holds every write of one command, pipeline or MULTI/EXEC
// transaction, so replay applies it entirely or (torn or corrupt) not at
// all. The generation ties the AOF to the snapshot it continues: an AOF
// whose generation differs from the snapshot's is left over from an
// interrupted compaction and already contained in the snapshot.
const (
	aofMagic        = "PDRAOF01"
	aofHeaderSize   = len(aofMagic) + 8 + 4
	frameHeaderSize = 8
	maxRecordSize   = 1 << 30
)

// aofHeader returns the header of an AOF continuing snapshot generation gen.
func aofHeader(gen uint64) []byte {
	b := make([]byte, 0, aofHeaderSize)
	b = append(b, aofMagic...)
	b = binary.LittleEndian.AppendUint64(b, gen)
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// encodeRecord frames cmds as one AOF record.
func encodeRecord(cmds [][]string) []byte {
	size := binary.MaxVarintLen64
	for _, c := range cmds {
		size += binary.MaxVarintLen64
		for _, a := range c {
			size += binary.MaxVarintLen64 + len(a)
		}
	}
	b := make([]byte, frameHeaderSize, frameHeaderSize+size)
	b = binary.AppendUvarint(b, uint64(len(cmds)))
	for _, c := range cmds {
		b = binary.AppendUvarint(b, uint64(len(c)))
		for _, a := range c {
			b = binary.AppendUvarint(b, uint64(len(a)))
			b = append(b, a...)
		}
	}
	payload := b[frameHeaderSize:]
	binary.LittleEndian.PutUint32(b[0:4], uint32(len(payload)))
	binary.LittleEndian.PutUint32(b[4:8], crc32.Checksum(payload, castagnoli))
	return b
}

// decodeRecord parses a record payload (without its frame header).
func decodeRecord(payload []byte) ([][]string, error) {
	d := decoder{b: payload}
	cmds := make([][]string, d.count())
	for i := range cmds {
		args := make([]string, d.count())
		for j := range args {
			args[j] = d.str()
		}
		if d.err == nil && len(args) == 0 {
			d.fail()
		}
		cmds[i] = args
	}
	if d.err == nil && d.off != len(payload) {
		d.fail()
	}
	return cmds, d.err
}

// aofContents is what readAOF found in an AOF file.
type aofContents struct {
	gen     uint64       // generation from the header
	records [][][]string // intact records, in order
	valid   int64        // bytes up to the end of the last intact record
	size    int64        // file size
	tailErr error        // why reading stopped before size, if it did
}

// errNoAOF reports that there is no AOF file.
var errNoAOF = errors.New("no aof")

// readAOF reads the AOF at path. A torn or corrupt record stops the read:
// the records before it are returned with tailErr describing the damage. A
// missing file yields errNoAOF; an unreadable header is an error.
func readAOF(path string) (*aofContents, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errNoAOF
	}
	if err != nil {
		return nil, fmt.Errorf("read aof: %w", err)
	}
	if len(data) < aofHeaderSize || string(data[:len(aofMagic)]) != aofMagic ||
		crc32.Checksum(data[:aofHeaderSize-4], castagnoli) != binary.LittleEndian.Uint32(data[aofHeaderSize-4:]) {
		return nil, fmt.Errorf("read aof header: %w", errCorrupt)
	}
	c := &aofContents{
		gen:  binary.LittleEndian.Uint64(data[len(aofMagic):]),
		size: int64(len(data)),
	}
	off := aofHeaderSize
	for off < len(data) {
		if len(data)-off < frameHeaderSize {
			c.tailErr = fmt.Errorf("torn record header at offset %d", off)
			break
		}
		n := int(binary.LittleEndian.Uint32(data[off:]))
		sum := binary.LittleEndian.Uint32(data[off+4:])
		if n > maxRecordSize || n > len(data)-off-frameHeaderSize {
			c.tailErr = fmt.Errorf("torn record at offset %d (length %d, %d bytes left)", off, n, len(data)-off-frameHeaderSize)
			break
		}
		payload := data[off+frameHeaderSize : off+frameHeaderSize+n]
		if crc32.Checksum(payload, castagnoli) != sum {
			c.tailErr = fmt.Errorf("checksum mismatch in record at offset %d", off)
			break
		}
		cmds, err := decodeRecord(payload)
		if err != nil {
			c.tailErr = fmt.Errorf("decode record at offset %d: %w", off, err)
			break
		}
		c.records = append(c.records, cmds)
		off += frameHeaderSize + n
	}
	c.valid = int64(off)
	return c, nil
}
