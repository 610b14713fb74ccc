package raftstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"maps"
	"slices"
)

// The stable file holds the StableStore's keys and values. It is small
// (raft keeps three keys in it) and replaced whole, with
// vfs.WriteFileAtomic, on every Set, so a crash leaves the old file or the
// new one and never a torn one: any damage is corruption.
//
//	+------------------+-------------+-----------+-------+-----+-------------+
//	| magic "goatrkvs" | version u32 | count u32 | entry | ... | CRC-32C u32 |
//	+------------------+-------------+-----------+-------+-----+-------------+
//	 0                  8             12          16
//
//	entry
//	+----------------+------------------+-----+-------+
//	| key length u32 | value length u32 | key | value |
//	+----------------+------------------+-----+-------+
//
// Integers are little-endian; keys are in increasing byte order, each
// once; the CRC covers every byte before it. The file's size is at most
// MaxFrame.
const (
	stableMagic   = "goatrkvs"
	stableVersion = 1
)

// encodeStable returns the stable file holding kv.
func encodeStable(kv map[string][]byte) []byte {
	b := []byte(stableMagic)
	b = binary.LittleEndian.AppendUint32(b, stableVersion)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(kv)))
	for _, k := range slices.Sorted(maps.Keys(kv)) {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(k)))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(kv[k])))
		b = append(b, k...)
		b = append(b, kv[k]...)
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// stableSize returns the size of the stable file holding kv.
func stableSize(kv map[string][]byte) int {
	n := 20
	for k, v := range kv {
		n += 8 + len(k) + len(v)
	}
	return n
}

// decodeStable returns the keys and values of a stable file. It never
// panics; the values are copies.
func decodeStable(b []byte) (map[string][]byte, error) {
	if len(b) < 20 || string(b[:8]) != stableMagic {
		return nil, errors.New("not a raftstore stable file")
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, errors.New("checksum mismatch")
	}
	if v := binary.LittleEndian.Uint32(b[8:]); v != stableVersion {
		return nil, fmt.Errorf("%w: stable file version %d", ErrVersion, v)
	}
	count := binary.LittleEndian.Uint32(b[12:])
	rest := body[16:]
	if uint64(count) > uint64(len(rest))/8 {
		return nil, fmt.Errorf("%d entries in %d bytes", count, len(rest))
	}
	kv := make(map[string][]byte, count)
	prev := ""
	for i := range count {
		if len(rest) < 8 {
			return nil, fmt.Errorf("entry %d: truncated", i)
		}
		kl, vl := uint64(binary.LittleEndian.Uint32(rest)), uint64(binary.LittleEndian.Uint32(rest[4:]))
		if kl+vl > uint64(len(rest)-8) {
			return nil, fmt.Errorf("entry %d: lengths %d+%d over the %d bytes left", i, kl, vl, len(rest)-8)
		}
		k := string(rest[8 : 8+kl])
		if i > 0 && k <= prev {
			return nil, fmt.Errorf("entry %d: key %q out of order", i, k)
		}
		kv[k], prev = bytes.Clone(rest[8+kl:8+kl+vl]), k
		if kv[k] == nil {
			kv[k] = []byte{}
		}
		rest = rest[8+kl+vl:]
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%d bytes after the last entry", len(rest))
	}
	return kv, nil
}

// readStable returns the stable file's keys and values, and whether the
// file exists.
func (s *Store) readStable() (map[string][]byte, bool, error) {
	b, err := s.fs.ReadFile(s.stablePath)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string][]byte{}, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read %s: %w", s.stablePath, err)
	}
	kv, err := decodeStable(b)
	switch {
	case errors.Is(err, ErrVersion):
		return nil, true, fmt.Errorf("%s: %w", s.stablePath, err)
	case err != nil:
		return nil, true, fmt.Errorf("%w: %s: %w", ErrCorrupt, s.stablePath, err)
	}
	return kv, true, nil
}

// Set implements raft.StableStore: it stores a copy of val under key,
// durably, before it returns. Set and SetUint64 share one namespace.
func (s *Store) Set(key, val []byte) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if err := s.writable(); err != nil {
		return err
	}
	kv := maps.Clone(s.kv)
	kv[string(key)] = append([]byte{}, val...)
	if stableSize(kv) > MaxFrame {
		return fmt.Errorf("%w: stable file of %d bytes", ErrTooLarge, stableSize(kv))
	}
	if err := s.writeFile(s.stablePath, encodeStable(kv)); err != nil {
		return err
	}
	s.mu.Lock()
	s.kv = kv
	s.mu.Unlock()
	return nil
}

// Get implements raft.StableStore. It returns a copy of the value set for
// key, or ErrKeyNotFound, whose message "not found" is the one raft looks
// for, as raft's own InmemStore does.
func (s *Store) Get(key []byte) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	v, ok := s.kv[string(key)]
	if !ok {
		return nil, ErrKeyNotFound
	}
	return bytes.Clone(v), nil
}

// SetUint64 implements raft.StableStore: it stores val under key as 8
// bytes, big-endian, like Set.
func (s *Store) SetUint64(key []byte, val uint64) error {
	return s.Set(key, binary.BigEndian.AppendUint64(nil, val))
}

// GetUint64 implements raft.StableStore. A key never set reads as 0 with
// a nil error, as in raft's InmemStore and the StableStore documentation;
// a key set by Set to a value that is not 8 bytes is ErrNotUint64.
func (s *Store) GetUint64(key []byte) (uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, ErrClosed
	}
	v, ok := s.kv[string(key)]
	switch {
	case !ok:
		return 0, nil
	case len(v) != 8:
		return 0, fmt.Errorf("%w: key %q holds %d bytes", ErrNotUint64, key, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}
