package store

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
)

// Sentinel errors. Stores wrap them (fmt.Errorf("...: %w", ErrX)) or return
// typed errors whose Unwrap yields them.
var (
	ErrNotFound        = errors.New("store: key not found")
	ErrVersionConflict = errors.New("store: version conflict")
	ErrAlreadyExists   = errors.New("store: key already exists")
	ErrCompacted       = errors.New("store: revision compacted")
	ErrInvalid         = errors.New("store: invalid request")
	ErrUnavailable     = errors.New("store: unavailable")
	ErrClosed          = errors.New("store: closed")
)

// Conflict types, as in the API's conflict_type.
const (
	ConflictConcurrentModification = "concurrent_modification"
	ConflictDeletedModified        = "deleted_modified"
	ConflictTypeMismatch           = "type_mismatch"
)

// ConflictError reports a failed ExpectedVersion precondition.
// It unwraps to ErrAlreadyExists (expected 0 but the key is live) or
// ErrVersionConflict (anything else).
type ConflictError struct {
	Op       int // index of the failing op in the WriteRequest
	Key      Key
	Expected int64
	// Current is the key's live version (0 if absent, deleted or expired).
	Current int64
	// CurrentEntry is the live entry (nil if absent).
	CurrentEntry *Entry
	Type         string // Conflict* constant
}

func (e *ConflictError) Error() string {
	if e.Expected == 0 {
		return fmt.Sprintf("store: key %s already exists at version %d", e.Key, e.Current)
	}
	return fmt.Sprintf("store: version conflict on %s: expected %d, current %d", e.Key, e.Expected, e.Current)
}

func (e *ConflictError) Unwrap() error {
	if e.Expected == 0 {
		return ErrAlreadyExists
	}
	return ErrVersionConflict
}

// OpError attaches the failing op index to an error (e.g. ErrNotFound when a
// batch deletes an absent key).
type OpError struct {
	Op  int
	Err error
}

func (e *OpError) Error() string { return fmt.Sprintf("op %d: %v", e.Op, e.Err) }
func (e *OpError) Unwrap() error { return e.Err }

// ChainHash links a version to its parent: sha256 over the parent's chain
// hash, the version number, the change type and the version's checksum. A
// tombstone has an empty checksum. The first version's parent chain is "".
// Recomputing the chain detects a modified, removed or reordered version.
func ChainHash(parentChain string, version int64, changeType, checksum string) string {
	h := sha256.New()
	h.Write([]byte(parentChain))
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(version))
	h.Write(b[:])
	h.Write([]byte(changeType))
	h.Write([]byte{0})
	h.Write([]byte(checksum))
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// PrefixEnd returns the smallest string greater than every string with the
// given prefix, or "" if there is none (the prefix is all 0xff bytes). Stores
// use it for range scans.
func PrefixEnd(prefix string) string {
	b := []byte(prefix)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1])
		}
	}
	return ""
}
